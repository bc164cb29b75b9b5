"""The EOL media cargo archive: `.tar.gz` archives of `<content id>_<page id>_eol-full-size-copy.jpg` members.

EOL's pages come from the Dynamic Hierarchy built here (the worked examples' chains, then one chain per
synthetic EOL species), so the archives and `taxon.tab` agree on every page id.
"""

from __future__ import annotations

import gzip
import io
import random
import tarfile
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from etl.sampledata.expected import Expected
from etl.sampledata.fixtures import EOL_FIXTURE_CHAINS, EOL_FIXTURE_PAGES
from etl.sampledata.images import HostileImages, jpeg
from etl.sampledata.references import DynamicHierarchy
from etl.sampledata.species import KINGDOMS, Species

ROOT = "eol/media_cargo_archive"
FIXED_MTIME = 1_600_000_000
SIZES = [(800, 600), (600, 800), (1024, 683), (640, 640)]
# Pages whose images the rare-species lists name (two of each, see references.py) get at least this many images.
RARE_PAGES, RARE_PAGE_IMAGES = (1000090, 49672921), 4


@dataclass
class EolWritten:
    """What the reference files need to know of the EOL part: its taxon.tab rows, species and images by page."""

    taxon_rows: list[dict[str, str]]
    page_species: dict[int, Species]
    images: dict[int, list[str]]


class _Member(NamedTuple):
    """An archive member to be: its JPEG is made from its own seed only when its archive is written, so a large
    collection never holds its EOL images in memory."""

    name: str
    size: tuple[int, int]
    seed: int


class _ContentIds:
    """EOL content ids: one increasing sequence through the media, hostile and truncated archives."""

    def __init__(self, start: int) -> None:
        self.last = start

    def after(self, gap: int) -> int:
        self.last += gap
        return self.last


def write(rng: random.Random, root: Path, species: list[Species], target: int, hostile: HostileImages,
          expected: Expected) -> EolWritten:
    """Write about `target` EOL images under `root`/eol/media_cargo_archive, and the hostile and cut archives."""
    eol_root = root / ROOT
    eol_root.mkdir(parents=True, exist_ok=True)
    dh, pages, page_species = _pages(rng, species)
    content_ids = _ContentIds(10_000_000)
    images = _write_media(rng, eol_root, pages, target, content_ids, expected)
    species_pages = list(page_species)
    _write_hostile(rng, eol_root, hostile, species_pages, content_ids, expected)
    _write_cut(rng, eol_root, species_pages, content_ids, expected)
    (eol_root / "notes.md").write_text("downloaded 2023\n")
    expected.rejected["eol"].append(["notes.md", "not a .tar.gz archive"])
    expected.fixtures["eol_pages"] = {str(page): images.get(page, []) for page in EOL_FIXTURE_PAGES}
    return EolWritten(dh.rows, page_species, images)


def _pages(rng: random.Random, species: list[Species]) -> tuple[DynamicHierarchy, list[int], dict[int, Species]]:
    """The DH (fixture chains, then a chain per EOL species), every page with images, and each species' page."""
    page_counter = iter(range(2_000_001, 9_000_000))
    dh = DynamicHierarchy(lambda: next(page_counter))
    for chain in EOL_FIXTURE_CHAINS:
        dh.add(chain)
    pages: list[int] = list(EOL_FIXTURE_PAGES)
    page_species: dict[int, Species] = {}
    synonyms = dict(KINGDOMS)
    for item in species:
        if not item.in_eol:
            continue
        kingdom, phylum, cls, order, family, genus, epithet = item.ranks
        chain = [(synonyms[kingdom], "kingdom"), (phylum, "phylum"), (cls, "class"), (order, "order"),
                 (family, "family"), (genus, "genus"), (f"{genus} {epithet}", "species")]
        if rng.random() < 0.1:
            del chain[3]  # a gap in the hierarchy (no order), for the upgrade to fill
        page_id = dh.add(chain)
        assert page_id is not None  # every species step gets a page
        page = int(page_id)
        pages.append(page)
        page_species[page] = item
    return dh, pages, page_species


def _write_media(rng: random.Random, eol_root: Path, pages: list[int], target: int, content_ids: _ContentIds,
                 expected: Expected) -> dict[int, list[str]]:
    """Spread about `target` images over the pages, shuffled into archives of a quarter each; return page → names."""
    per_page = max(1, target // len(pages))
    members: list[_Member] = []
    images: dict[int, list[str]] = {}
    for page in pages:
        for _ in range(per_page if page not in RARE_PAGES else max(per_page, RARE_PAGE_IMAGES)):
            name = f"{content_ids.after(rng.randint(1, 999))}_{page}_eol-full-size-copy.jpg"
            members.append(_Member(name, rng.choice(SIZES), rng.getrandbits(64)))
            images.setdefault(page, []).append(name)
    rng.shuffle(members)
    archive_size = max(5, len(members) // 4)
    archives = [members[start:start + archive_size] for start in range(0, len(members), archive_size)]
    for number, archive in enumerate(archives, start=1):
        _write_archive(eol_root / f"media_{number:04d}.tar.gz",
                       ((member.name, jpeg(random.Random(member.seed), member.size)) for member in archive))
        expected.catalogued["eol"] += len(archive)
    return images


def _write_hostile(rng: random.Random, eol_root: Path, hostile: HostileImages, species_pages: list[int],
                   content_ids: _ContentIds, expected: Expected) -> None:
    """`hostile.tar.gz`: broken images, a member that is not an image, and one named as the HF release names."""
    members = []
    for kind in ("cmyk", "exif-rotated", "truncated", "palette-transparency", "zero-byte"):
        content_id = content_ids.after(1)
        page = rng.choice(species_pages)
        name = f"{content_id}_{page}_eol-full-size-copy.jpg"
        data, fatal = hostile[kind]
        members.append((name, data))
        expected.hostile["eol"].append(f"hostile.tar.gz:{name}:{kind}")
        if fatal:
            expected.rejected["eol"].append([f"hostile.tar.gz:{name}", fatal])
        else:
            expected.catalogued["eol"] += 1
    members.append(("readme.txt", b"not an image\n"))
    expected.rejected["eol"].append(["hostile.tar.gz:readme.txt", "member name is not"])
    hf_name = f"{uuid.UUID(int=rng.getrandbits(128), version=4)}.jpg"
    members.append((hf_name, hostile["cmyk"][0]))
    expected.rejected["eol"].append([f"hostile.tar.gz:{hf_name}", "Hugging Face release form"])
    _write_archive(eol_root / "hostile.tar.gz", members)


def _write_cut(rng: random.Random, eol_root: Path, species_pages: list[int], content_ids: _ContentIds,
               expected: Expected) -> None:
    """A truncated archive: members wholly inside the readable part are catalogued, the archive is rejected."""
    members = []
    for _ in range(6):
        content_id = content_ids.after(1)
        page = rng.choice(species_pages)
        members.append((f"{content_id}_{page}_eol-full-size-copy.jpg", jpeg(rng, (640, 480))))
    expected.catalogued["eol"] += _write_truncated_archive(eol_root / "media_9999.tar.gz", members)
    expected.rejected["eol"].append(["media_9999.tar.gz", "truncated or unreadable archive"])


# ---------------------------------------------------------------------------------------------- tar files


def _tar_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    # A fixed time and owner: the same seed must give the same archive bytes.
    info.size, info.mtime, info.mode = size, FIXED_MTIME, 0o644
    info.uname = info.gname = "eol"
    return info


def _tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members:
            archive.addfile(_tar_info(name, len(data)), io.BytesIO(data))
    return buffer.getvalue()


def _write_archive(path: Path, members: Iterable[tuple[str, bytes]]) -> None:
    """Write members into a .tar.gz as they come (streamed: one member in memory at a time)."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w|", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members:
            archive.addfile(_tar_info(name, len(data)), io.BytesIO(data))


def _write_truncated_archive(path: Path, members: list[tuple[str, bytes]]) -> int:
    """Write a .tar.gz cut in half; return how many members lie wholly in what can still be decompressed."""
    tar = _tar_bytes(members)
    compressed = gzip.compress(tar, mtime=0)
    cut = compressed[: len(compressed) // 2]
    path.write_bytes(cut)
    readable = len(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut))
    complete, offset = 0, 0
    for _, data in members:
        end = offset + 512 + len(data)
        if end <= readable:
            complete += 1
        offset = end + (-len(data)) % 512
    return complete
