"""A release-shaped fixture made from a sample collection: what the published TreeOfLife-10M ships.

`write(collection, seed)` reads the collection's files (not the catalog) and writes, under
`collection/release/`:

* `metadata/mapping.sqlite` — the four tables `eol(content_id, page_id, evobio10m_id)`,
  `inat21(filename, cls_name, cls_num, evobio10m_id)`, `bioscan(part, filename, evobio10m_id)`,
  `split(evobio10m_id, is_val, is_train_small)`, each image with a random uuid4 as the original gave;
* `metadata/catalog.csv` — the 17 published columns, train_small rows repeating train rows, names in display
  case as the release wrote them (iNat21 from the class folder, BIOSCAN from its metadata, EOL from the
  Dynamic Hierarchy; `common` is the scientific name: the fixture knows no vernaculars);
* `dataset/EOL/image_set_NN.tar.gz` — the EOL images of the synthetic species as `<treeoflife_id>.jpg`;
* `release.json` — what a reproduction must find (computed here, not by the pipeline).

Deliberate mess: a few EOL images are in the map and the catalog but not in the archives (the release could not
republish them), one archive member is an id the map lacks, hostile iNat21/BIOSCAN files are on disk but not in
the map, and `MALFORMED_MAPPING` / `MALFORMED_CATALOG` rows are added, each with the reject reason it must get.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import sqlite3
import tarfile
import uuid
from pathlib import Path

from etl.sampledata.eol import ROOT as EOL_ROOT
from etl.sampledata.fixtures import EOL_FIXTURE_PAGES

RELEASE_DIR = "release"
CATALOG_HEADER = ("split", "treeoflife_id", "eol_content_id", "eol_page_id", "bioscan_part", "bioscan_filename",
                  "inat21_filename", "inat21_cls_name", "inat21_cls_num", "kingdom", "phylum", "class", "order",
                  "family", "genus", "species", "common")
MISSING_EOL_IMAGES = 3
VAL_SHARE, TRAIN_SMALL_SHARE = 0.15, 0.3
# (what is wrong, the reject reason it must get); the rows themselves are made in `_malformed`.
MALFORMED_MAPPING = (("duplicate id", "duplicate treeoflife_id"), ("identity twice", "identity mapped twice"),
                     ("bad content id", "must both be integers"), ("split value", "unknown split value"),
                     ("split without source", "names no source"))
MALFORMED_CATALOG = (("split value", "unknown split value"), ("no source", "names no source"),
                     ("duplicate row", "duplicate treeoflife_id"))
FIXED_MTIME = 1_600_000_000
RANKS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")


def write(collection: str | Path, seed: int = 0) -> dict:
    """Write the release fixture of the sample collection at `collection` into `collection/release`; returns
    what `release.json` holds."""
    root = Path(collection)
    out = root / RELEASE_DIR
    (out / "metadata").mkdir(parents=True, exist_ok=True)
    (out / "dataset" / "EOL").mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"release {seed}")
    hostile = _hostile_paths(root)
    images = [*_inat21(root, hostile), *_bioscan(root, hostile), *_eol(root)]
    for image in images:
        image["treeoflife_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        roll = rng.random()
        image["split"] = "val" if roll < VAL_SHARE else "train"
        image["train_small"] = image["split"] == "train" and rng.random() < TRAIN_SMALL_SHARE
    eol_images = [image for image in images if image["source"] == "eol"]
    missing = {image["treeoflife_id"] for image in rng.sample(eol_images, min(MISSING_EOL_IMAGES, len(eol_images)))}
    stray = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    _write_archives(root, out / "dataset" / "EOL", eol_images, missing, stray)
    _write_mapping(out / "metadata" / "mapping.sqlite", images, rng)
    _write_catalog(out / "metadata" / "catalog.csv", images, rng)
    expected = {
        "splits": {image["treeoflife_id"]: [image["split"], image["train_small"]] for image in images},
        "missing_images": sorted(missing),
        "not_in_map": stray,
        "mapping_rejects": [reason for _, reason in MALFORMED_MAPPING],
        "catalog_rejects": [reason for _, reason in MALFORMED_CATALOG],
        "hostile_on_disk": sorted(hostile),
    }
    (out / "release.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return expected


# ============================================================================================== images


def _hostile_paths(root: Path) -> set[str]:
    """Paths (as `source:relative path`) of the collection's hostile files, which the release leaves out."""
    found = json.loads((root / "expected.json").read_text())
    paths: set[str] = set()
    for source, entries in found["hostile"].items():
        paths.update(f"{source}:{entry.rsplit(':', 1)[0]}" for entry in entries)
    for source, entries in found["rejected"].items():
        paths.update(f"{source}:{path}" for path, _ in entries)
    return paths


def _inat21(root: Path, hostile: set[str]) -> list[dict]:
    images = []
    for folder in sorted((root / "inat21" / "train").iterdir()):
        parts = folder.name.split("_")
        if not folder.is_dir() or len(parts) != 8:
            continue
        for file in sorted(folder.iterdir()):
            if f"inat21:{folder.name}/{file.name}" in hostile or not file.name.endswith(".jpg"):
                continue
            names = dict(zip(RANKS, [*parts[1:7], parts[7].lower()], strict=True))
            images.append({"source": "inat21", "inat21_filename": file.name,
                           "inat21_cls_name": "_".join(parts[1:]), "inat21_cls_num": int(parts[0]), **names})
    return images


def _bioscan(root: Path, hostile: set[str]) -> list[dict]:
    records = json.loads((root / "bioscan" / "BIOSCAN_Insect_Dataset_metadata.jsonld").read_text())
    by_file = {record["image_file"]: record for record in records if "image_file" in record}
    images = []
    for folder in sorted((root / "bioscan" / "cropped_256").iterdir()):
        if not folder.is_dir() or not folder.name.startswith("part") or not folder.name[4:].isdigit():
            continue
        for file in sorted(folder.iterdir()):
            record = by_file.get(file.name)
            if record is None or f"bioscan:{folder.name}/{file.name}" in hostile:
                continue
            ranks = ["Animalia", "Arthropoda", "Insecta", *(
                "" if record[r] == "not_classified" else record[r] for r in ("order", "family", "genus"))]
            words = [] if record["species"] == "not_classified" else record["species"].split(" ")
            # The binomial less its genus word, lower case as the old `cap()` left it (`sp. 12abc`).
            species = " ".join(words[1:] if len(words) > 1 else words).lower()
            images.append({"source": "bioscan", "bioscan_part": int(folder.name[4:]), "bioscan_filename": file.name,
                           **dict(zip(RANKS, [*ranks, species], strict=True))})
    return images


def _eol(root: Path) -> list[dict]:
    """The EOL images of the synthetic species' pages (the worked examples' pages are left out of the release)."""
    names = _dh_names(root / "eol" / "dh21" / "taxon.tab")
    images = []
    for archive in sorted((root / EOL_ROOT).glob("media_*.tar.gz")):
        if archive.name == "media_9999.tar.gz":  # the truncated one
            continue
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                content, page, _ = member.name.split("_", 2)
                if int(page) in EOL_FIXTURE_PAGES or int(page) not in names:
                    continue
                images.append({"source": "eol", "eol_content_id": int(content), "eol_page_id": int(page),
                               "archive": archive.name, "member": member.name, **names[int(page)]})
    return sorted(images, key=lambda image: (image["eol_content_id"], image["eol_page_id"]))


def _dh_names(taxon_tab: Path) -> dict[int, dict[str, str]]:
    """Page id → seven display-cased ranks from the Dynamic Hierarchy's parent chain (Metazoa is Animalia)."""
    rows = {}
    with open(taxon_tab, encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            rows[row["taxonID"]] = row
    kingdoms = {"Metazoa": "Animalia", "Archaeplastida": "Plantae", "Chloroplastida": "Plantae"}
    names: dict[int, dict[str, str]] = {}
    for row in rows.values():
        if not row["eolID"].isdigit() or row["taxonRank"] != "species":
            continue
        ranks = dict.fromkeys(RANKS, "")
        node: dict | None = row
        while node is not None:
            if node["taxonRank"] in RANKS and node["eolID"]:
                ranks[node["taxonRank"]] = node["canonicalName"]
            node = rows.get(node["parentNameUsageID"])
        ranks["kingdom"] = kingdoms.get(ranks["kingdom"], ranks["kingdom"])
        ranks["species"] = ranks["species"].split(" ")[-1].lower()
        if all(ranks.values()):
            names[int(row["eolID"])] = ranks
    return names


# ============================================================================================== files


def _write_archives(root: Path, folder: Path, eol_images: list[dict], missing: set[str], stray: str) -> None:
    """The present EOL images as `<treeoflife_id>.jpg`, in two archives, plus one member the map lacks."""
    present = [image for image in eol_images if image["treeoflife_id"] not in missing]
    data: dict[str, bytes] = {}
    for archive_name in sorted({image["archive"] for image in present}):
        with tarfile.open(root / EOL_ROOT / archive_name, "r:gz") as tar:
            for member in tar.getmembers():
                handle = tar.extractfile(member)
                if handle is not None:
                    data[member.name] = handle.read()
    half = (len(present) + 1) // 2
    for number, chunk in enumerate((present[:half], present[half:]), start=1):
        members = [(f"{image['treeoflife_id']}.jpg", data[image["member"]]) for image in chunk]
        if number == 2 and present:
            members.append((f"{stray}.jpg", data[present[0]["member"]]))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, payload in members:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(payload), FIXED_MTIME, 0o644
                tar.addfile(info, io.BytesIO(payload))
        (folder / f"image_set_{number:02d}.tar.gz").write_bytes(gzip.compress(buffer.getvalue(), mtime=0))


def _write_mapping(path: Path, images: list[dict], rng: random.Random) -> None:
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE eol (content_id INTEGER, page_id INTEGER, evobio10m_id TEXT)")
        connection.execute("CREATE TABLE inat21 (filename TEXT, cls_name TEXT, cls_num INTEGER, evobio10m_id TEXT)")
        connection.execute("CREATE TABLE bioscan (part INTEGER, filename TEXT, evobio10m_id TEXT)")
        connection.execute("CREATE TABLE split (evobio10m_id TEXT, is_val INTEGER, is_train_small INTEGER)")
        for image in images:
            tol_id = image["treeoflife_id"]
            if image["source"] == "eol":
                connection.execute("INSERT INTO eol VALUES (?, ?, ?)",
                                   (image["eol_content_id"], image["eol_page_id"], tol_id))
            elif image["source"] == "inat21":
                connection.execute("INSERT INTO inat21 VALUES (?, ?, ?, ?)", (
                    image["inat21_filename"], image["inat21_cls_name"], image["inat21_cls_num"], tol_id))
            else:
                connection.execute("INSERT INTO bioscan VALUES (?, ?, ?)",
                                   (image["bioscan_part"], image["bioscan_filename"], tol_id))
            connection.execute("INSERT INTO split VALUES (?, ?, ?)",
                               (tol_id, int(image["split"] == "val"), int(image["train_small"])))
        inat = next(image for image in images if image["source"] == "inat21")
        bioscan = next(image for image in images if image["source"] == "bioscan")

        def new_id() -> str:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))

        # MALFORMED_MAPPING, in its order.
        connection.execute("INSERT INTO inat21 VALUES (?, ?, ?, ?)",
                           ("ffffffff-0000-4000-8000-000000000000.jpg", inat["inat21_cls_name"],
                            inat["inat21_cls_num"], inat["treeoflife_id"]))
        connection.execute("INSERT INTO bioscan VALUES (?, ?, ?)",
                           (bioscan["bioscan_part"], bioscan["bioscan_filename"], new_id()))
        connection.execute("INSERT INTO eol VALUES (?, ?, ?)", ("abc", 2000001, new_id()))
        connection.execute("INSERT INTO split VALUES (?, ?, ?)", (new_id(), 2, 0))
        connection.execute("INSERT INTO split VALUES (?, ?, ?)", (new_id(), 0, 0))
    connection.close()


def _write_catalog(path: Path, images: list[dict], rng: random.Random) -> None:
    rows = []
    for image in images:
        row = {column: image.get(column, "") for column in CATALOG_HEADER}
        row["kingdom"] = image["kingdom"]
        row["common"] = " ".join(v for v in (image["genus"], image["species"]) if v) or next(
            (image[r] for r in reversed(RANKS) if image[r]), "")
        rows.append({**row, "split": image["split"]})
        if image["train_small"]:
            rows.append({**row, "split": "train_small"})
    rng.shuffle(rows)  # the release's row order is not defined
    example = rows[0]
    # MALFORMED_CATALOG, in its order.
    rows.append({**example, "split": "test"})
    rows.append({**{c: "" for c in CATALOG_HEADER}, "split": "train",
                 "treeoflife_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "kingdom": "Animalia",
                 "common": "Animalia"})
    rows.append(dict(next(r for r in rows if r["split"] == "train")))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, CATALOG_HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
