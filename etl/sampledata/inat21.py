"""The iNat21 train tree: one folder per class (`NNNNN_Kingdom_…_Genus_epithet`) of `<uuid>.jpg` photographs."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

from etl.sampledata.expected import Expected
from etl.sampledata.fixtures import INAT_FIXTURE_CLASSES
from etl.sampledata.images import HostileImages, jpeg
from etl.sampledata.species import Species

ROOT = "inat21/train"
SIZES = [(500, 375), (375, 500), (500, 333), (400, 400)]


def _uuid_name(rng: random.Random) -> str:
    """A file name as iNat21 gives one: a version-4 UUID drawn from the stream, `.jpg`."""
    return f"{uuid.UUID(int=rng.getrandbits(128), version=4)}.jpg"


def write_classes(rng: random.Random, root: Path, species: list[Species], target: int,
                  expected: Expected) -> list[str]:
    """Write the class folders under `root`/inat21/train and their photographs; return the class folder names.

    The worked-example classes come first, then one class per synthetic iNat species, each with a class index
    the fixtures have not taken.
    """
    inat_root = root / ROOT
    inat_root.mkdir(parents=True, exist_ok=True)
    inat_classes = list(INAT_FIXTURE_CLASSES)
    used_indices = {int(name[:5]) for name in inat_classes}
    index = 1
    for item in species:
        if not item.in_inat:
            continue
        while index in used_indices:
            index += 1
        used_indices.add(index)
        inat_classes.append(f"{index:05d}_" + "_".join(item.ranks))
    per_class = max(1, target // len(inat_classes))
    for class_name in inat_classes:
        folder = inat_root / class_name
        folder.mkdir()
        for _ in range(per_class):
            name = _uuid_name(rng)
            (folder / name).write_bytes(jpeg(rng, rng.choice(SIZES)))
            expected.catalogued["inat21"] += 1
    expected.fixtures["inat21_classes"] = INAT_FIXTURE_CLASSES
    return inat_classes


def write_hostile(rng: random.Random, root: Path, class_name: str, hostile: HostileImages,
                  expected: Expected) -> None:
    """Put the hostile files into one class folder, plus stray files and a folder with too few ranks."""
    inat_root = root / ROOT
    hostile_folder = inat_root / class_name
    for kind, (data, fatal) in hostile.items():
        name = _uuid_name(rng)
        (hostile_folder / name).write_bytes(data)
        expected.hostile["inat21"].append(f"{class_name}/{name}:{kind}")
        if fatal:
            expected.rejected["inat21"].append([f"{class_name}/{name}", fatal])
        else:
            expected.catalogued["inat21"] += 1
    (hostile_folder / "notes.txt").write_text("field notes\n")
    expected.rejected["inat21"].append([f"{class_name}/notes.txt", "file name is not <uuid>.jpg"])
    (inat_root / "README.txt").write_text("iNat21 train\n")
    expected.rejected["inat21"].append(["README.txt", "not a class folder"])
    bad_folder = inat_root / "09999_Animalia_Chordata"
    bad_folder.mkdir()
    name = _uuid_name(rng)
    (bad_folder / name).write_bytes(jpeg(rng, (200, 150)))
    expected.rejected["inat21"].append(["09999_Animalia_Chordata/", "expected 7 ranks"])
