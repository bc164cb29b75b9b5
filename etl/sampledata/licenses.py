"""The license files the real collections ship: EOL's media manifests and iNat21's `train.json`.

Written last, from their own random stream (so the images and names before them keep their bytes), with the
messes of the real files: license names spelt many ways, blank and unreadable licenses, blank owners, a
manifest row repeating a content id, malformed rows, rows for media not in the archives, images no row names,
and an iNat21 license id missing from `licenses[]`. `expected.licenses` says which license key each image must
get ("unknown" when none may be inferred), computed here from what was written.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from etl.sampledata.expected import Expected

MANIFEST_DIR = "eol/media_manifest"
ANNOTATIONS = "inat21/train.json"
MANIFEST_HEADER = ["EOL content ID", "EOL page ID", "Medium Source URL", "EOL Full-Size Copy URL", "License Name",
                   "Copyright Owner"]
# (license name as EOL spells it, the key it must give or "unknown", weight)
EOL_LICENSES = (
    ("cc-by-nc-sa-3.0", "cc-by-nc-sa", 6), ("cc-by-3.0", "cc-by", 5), ("cc-by-sa-3.0", "cc-by-sa", 3),
    ("cc-by-nc-3.0", "cc-by-nc", 4), ("CC BY 4.0", "cc-by", 2), ("public domain", "pd", 2),
    ("cc-publicdomain", "pd", 1), ("No known copyright restrictions", "pd", 1), ("cc0-1.0", "cc0", 1),
    ("Attribution-NonCommercial-ShareAlike 2.0 Generic", "cc-by-nc-sa", 1),
    ("", "unknown", 1), ("see source", "unknown", 1), ("CC BY-SA-ND", "unknown", 1),
)
OWNERS = ("Smithsonian Institution", "Jane Doe", "Museum für Naturkunde Berlin", "", "BioImages", "Field Museum")
# iNat21's licenses[]: id → (name, url, key)
INAT_LICENSES = {
    1: ("CC BY-NC 4.0", "http://creativecommons.org/licenses/by-nc/4.0/", "cc-by-nc"),
    2: ("CC BY 4.0", "http://creativecommons.org/licenses/by/4.0/", "cc-by"),
    3: ("CC0 1.0", "http://creativecommons.org/publicdomain/zero/1.0/", "cc0"),
    4: ("CC BY-SA 4.0", "http://creativecommons.org/licenses/by-sa/4.0/", "cc-by-sa"),
    5: ("Attribution-NonCommercial-ShareAlike License", "http://creativecommons.org/licenses/by-nc-sa/2.0/",
        "cc-by-nc-sa"),
}
MISSING_LICENSE_ID = 9
BIOSCAN_KEY = "cc-by"


def _eol_manifest(rng: random.Random, root: Path, eol_images: dict[int, list[str]], expected: Expected) -> None:
    """media_manifest_1.csv (with the header) and media_manifest_2.csv (continuing it, no header)."""
    names = sorted(name for page_names in eol_images.values() for name in page_names)
    expected_keys: dict[str, str] = {}
    rows: list[list[str]] = []
    weights = [weight for _, _, weight in EOL_LICENSES]
    for index, name in enumerate(names):
        content_id, page_id = name.split("_")[:2]
        if index % 17 == 5:
            expected_keys[name] = "unknown"  # no manifest row names this image
            continue
        license_name, key, _ = rng.choices(EOL_LICENSES, weights)[0]
        rows.append([content_id, page_id, f"https://www.flickr.com/photos/{content_id}",
                     f"https://content.eol.org/data/media/{content_id}.jpg", license_name, rng.choice(OWNERS)])
        expected_keys[name] = key
        if index % 23 == 7:  # the same content id again, with another license: the first row counts
            rows.append([content_id, page_id, "", "", "cc-by-nd-2.0", "someone else"])
    rows.insert(len(rows) // 3, ["12x45", "1", "", "", "cc-by-3.0", "typo in the content id"])
    rows.insert(len(rows) // 2, ["77", "1", "only four fields", "cc-by-3.0"])
    rows.append(["99999999", "12345", "https://example.org/m.jpg", "", "cc-by-3.0", "not in any archive"])
    folder = root / MANIFEST_DIR
    folder.mkdir(parents=True, exist_ok=True)
    half = len(rows) // 2
    with open(folder / "media_manifest_1.csv", "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([MANIFEST_HEADER, *rows[:half]])
    with open(folder / "media_manifest_2.csv", "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows[half:])
    expected.licenses["eol"] = expected_keys


def _inat_annotations(rng: random.Random, root: Path, inat_root: Path, expected: Expected) -> None:
    """train.json: images[] for every photograph under the class folders, then categories, licenses."""
    files = sorted(p.relative_to(inat_root).as_posix() for p in inat_root.glob("*/*.jpg"))
    images: list[dict[str, object]] = []
    expected_keys: dict[str, str] = {}
    ids = [*INAT_LICENSES, MISSING_LICENSE_ID]
    for number, file in enumerate(files, start=1):
        license_id = rng.choices(ids, [5, 4, 2, 2, 1, 1])[0]
        holder: str | None = rng.choice(["naturalist_a", "Jane Doe", "", "observer 42"])
        if number % 29 == 3:
            holder = None
        images.append({"id": number, "width": 500, "height": 375, "file_name": f"train/{file}",
                       "license": license_id, "rights_holder": holder, "date": "2019-06-01 10:00:00+00:00",
                       "latitude": 43.1, "longitude": -79.2, "location_uncertainty": 10})
        expected_keys[file] = INAT_LICENSES[license_id][2] if license_id in INAT_LICENSES else "unknown"
    images.append({"id": len(files) + 1, "file_name": "train/not-a-class-folder.jpg", "license": 1,
                   "rights_holder": "x"})
    document = {
        "info": {"year": 2021, "version": "1.0", "description": "iNat2021 (sample)"},
        "images": images,
        "categories": [],
        "annotations": [],
        "licenses": [{"id": key, "name": name, "url": url} for key, (name, url, _) in INAT_LICENSES.items()],
    }
    (root / ANNOTATIONS).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    expected.licenses["inat21"] = expected_keys


def write(seed: int, root: Path, inat_root: Path, eol_images: dict[int, list[str]], expected: Expected) -> None:
    """Write the license files of the collection under `root`; `eol_images` is page → archive member names."""
    rng = random.Random(f"licenses-{seed}")
    _eol_manifest(rng, root, eol_images, expected)
    _inat_annotations(rng, root, inat_root, expected)
    expected.licenses["bioscan"] = {"*": BIOSCAN_KEY}
