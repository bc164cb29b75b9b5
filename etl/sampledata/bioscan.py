"""The BIOSCAN-1M tree: `cropped_256/part<N>/` folders of images and one JSON-LD metadata array beside them."""

from __future__ import annotations

import json
import random
from pathlib import Path

from etl.sampledata.expected import Expected
from etl.sampledata.fixtures import BIOSCAN_FIXTURES, NC, BioscanImage
from etl.sampledata.images import HostileImages, jpeg
from etl.sampledata.species import Species

FOLDER = "bioscan"
IMAGES = "cropped_256"
METADATA = "BIOSCAN_Insect_Dataset_metadata.jsonld"
SIZES = [(341, 256), (256, 256), (256, 384), (300, 256)]


def write(rng: random.Random, root: Path, species: list[Species], target: int, hostile: HostileImages,
          expected: Expected) -> None:
    """Write about `target` BIOSCAN images of the insect species under `root`/bioscan, hostile ones and metadata."""
    bioscan_root = root / FOLDER / IMAGES
    bioscan_root.mkdir(parents=True, exist_ok=True)
    files = _choose_images(rng, species, target)
    records = _write_parts(rng, bioscan_root, files, expected)
    expected.fixtures["bioscan_files"] = [row.image_file for row in BIOSCAN_FIXTURES]
    _write_hostile(rng, bioscan_root, hostile, records, expected)
    _write_metadata(root / FOLDER / METADATA, records)


def _choose_images(rng: random.Random, species: list[Species], target: int) -> list[BioscanImage]:
    """The worked examples, then images of random insects labelled to a random depth, to `target` in all."""
    insect_species = [s for s in species if s.in_bioscan]
    files = list(BIOSCAN_FIXTURES)
    next_file = 3_000_000
    while len(files) < target:
        item = rng.choice(insect_species)
        next_file += rng.randint(1, 50)
        depth = rng.random()
        genus = item.ranks[5] if depth > 0.6 else NC
        binomial = item.binomial if depth > 0.85 else NC
        family = item.ranks[4] if depth > 0.1 else NC
        if rng.random() < 0.8:
            name = f"{next_file}.jpg"
        else:
            name = f"BIOUG{rng.randint(10000, 99999)}-{rng.choice('ABCDEFGH')}{rng.randint(1, 12):02d}.jpg"
        if any(name == existing.image_file for existing in files):
            continue
        files.append(BioscanImage(name, item.ranks[3], family, genus, binomial))
    return files


def _write_parts(rng: random.Random, bioscan_root: Path, files: list[BioscanImage],
                 expected: Expected) -> list[dict[str, str]]:
    """Write the images into parts of at most a third of them each (at least 10); return their records."""
    records: list[dict[str, str]] = []
    part_size = max(10, len(files) // 3)
    for number, image in enumerate(files):
        part = number // part_size + 1
        folder = bioscan_root / f"part{part}"
        folder.mkdir(exist_ok=True)
        (folder / image.image_file).write_bytes(jpeg(rng, rng.choice(SIZES)))
        expected.catalogued["bioscan"] += 1
        records.append(_record(rng, number, image, part))
    return records


def _write_hostile(rng: random.Random, bioscan_root: Path, hostile: HostileImages, records: list[dict[str, str]],
                   expected: Expected) -> None:
    """Broken bytes, an image with no metadata record, a record with no image, and a folder not named part<N>."""
    for kind in ("truncated", "zero-byte", "cmyk"):
        data, fatal = hostile[kind]
        name = f"BIOUG{90000 + len(expected.hostile['bioscan'])}-H01.jpg"
        (bioscan_root / "part1" / name).write_bytes(data)
        expected.hostile["bioscan"].append(f"part1/{name}:{kind}")
        records.append(_record(rng, len(records), BioscanImage(name, "Diptera", "Phoridae", "Megaselia", NC), 1))
        if fatal:
            expected.rejected["bioscan"].append([f"part1/{name}", fatal])
        else:
            expected.catalogued["bioscan"] += 1
    (bioscan_root / "part2").mkdir(exist_ok=True)
    (bioscan_root / "part2" / "9999999.jpg").write_bytes(jpeg(rng, (256, 256)))
    expected.rejected["bioscan"].append(["part2/9999999.jpg", "no record for this image_file"])
    records.append(_record(rng, len(records), BioscanImage("8888888.jpg", "Diptera", NC, NC, NC), 2))
    expected.rejected["bioscan"].append([f"{METADATA}:8888888.jpg", "has no image file"])
    # A record without image_file, as malformed records come: rejected by the reader, the rest loads.
    records.append({k: v for k, v in _record(rng, len(records), BioscanImage("x.jpg", "Diptera", NC, NC, NC), 2)
                    .items() if k != "image_file"})
    (bioscan_root / "notes").mkdir()
    expected.rejected["bioscan"].append(["notes/", "folder name is not part<N>"])


def _write_metadata(path: Path, records: list[dict[str, str]]) -> None:
    """The metadata as BIOSCAN ships it: a JSON array, one record per line."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[\n")
        handle.write(",\n".join(json.dumps(record, ensure_ascii=False) for record in records))
        handle.write("\n]\n")


def _record(rng: random.Random, number: int, image: BioscanImage, part: int) -> dict[str, str]:
    """One metadata record; the ranks BIOSCAN leaves empty are `not_classified`."""
    name, order, family, genus, species = image
    return {
        "processid": f"BIOUG{number:07d}", "sampleid": f"S{number:07d}", "name": species if species != NC else genus,
        "phylum": "Arthropoda", "class": "Insecta", "order": order, "family": family,
        "subfamily": NC, "tribe": NC, "genus": genus, "species": species, "subspecies": NC,
        "uri": f"BOLD:A{rng.randrange(10**6):06d}", "nucraw": "ACGT" * 4, "image_file": name,
        "chunk_number": str(part), "large_diptera_family": NC, "medium_diptera_family": NC,
        "small_diptera_family": NC, "large_insect_order": order, "medium_insect_order": order,
        "small_insect_order": order,
    }
