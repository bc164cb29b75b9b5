"""Provenance benchmark (see bench/licenses).

Catalogues N synthetic images (70 % EOL, 30 % iNat21, as bench/taxa makes them), writes an EOL media manifest
(two files, the second without a header; 10 % more rows than catalogued EOL images, and license names spelt
the real manifests' ways) and an iNat21 train.json (`images[]` then `licenses[]`), then times
`provenance.load` in a fresh process, reporting its wall time, rate and peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fresh_catalog, peak_rss_mb
from taxa_bench import image_listing

from etl import catalog, db, provenance

EOL_SHARE = 0.7
N_CLASSES = 10_000
LICENSES = ("cc-by-nc-sa-3.0", "cc-by-3.0", "cc-by-sa-3.0", "cc-by-nc-3.0", "public domain", "CC BY 4.0", "",
            "see source")
INAT_LICENSES = [{"id": n, "name": name, "url": url} for n, (name, url) in enumerate((
    ("CC BY-NC 4.0", "http://creativecommons.org/licenses/by-nc/4.0/"),
    ("CC BY 4.0", "http://creativecommons.org/licenses/by/4.0/"),
    ("CC0 1.0", "http://creativecommons.org/publicdomain/zero/1.0/")))]


def build(url: str, images: int, folder: Path) -> dict[str, Path]:
    """Catalogue the images and write their provenance files under `folder`."""
    engine = db.make_engine(url)
    n_eol, n_inat = int(images * EOL_SHARE), images - int(images * EOL_SHARE)
    catalog.load_listing(engine, "eol", "synthetic", image_listing("eol", n_eol, list(range(1, 50_001)), N_CLASSES))
    catalog.load_listing(engine, "inat21", "synthetic", image_listing("inat21", n_inat, [1], N_CLASSES))
    engine.dispose()
    manifests = folder / "media_manifest"
    manifests.mkdir()
    rows = int(n_eol * 1.1)
    half = rows // 2
    for number, (start, stop) in enumerate(((0, half), (half, rows)), start=1):
        with open(manifests / f"media_manifest_{number}.csv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            if number == 1:
                writer.writerow(["EOL content ID", "EOL page ID", "Medium Source URL", "EOL Full-Size Copy URL",
                                 "License Name", "Copyright Owner"])
            writer.writerows((n, 1 + n % 50_000, f"https://www.flickr.com/photos/{n}",
                              f"https://content.eol.org/data/media/{n}.jpg", LICENSES[n % len(LICENSES)],
                              f"Owner {n % 997}") for n in range(start, stop))
    annotations = folder / "train.json"
    with open(annotations, "w", encoding="utf-8") as handle:
        handle.write('{"info": {"year": 2021}, "images": [\n')
        for n in range(n_inat):
            cls = n % N_CLASSES
            entry = {"id": n, "width": 500, "height": 375, "license": n % 4, "rights_holder": f"observer {n % 991}",
                     "file_name": f"train/{cls:05d}_Animalia_P_C_O_F_G_s{cls}/{n:08x}-0000-4000-8000-000000000000.jpg"}
            handle.write(("," if n else "") + json.dumps(entry) + "\n")
        handle.write('], "categories": [], "annotations": [], "licenses": ' + json.dumps(INAT_LICENSES) + "}\n")
    return {"eol_media_manifest": manifests, "inat21_annotations": annotations}


def measure(url: str, paths: dict[str, str]) -> dict:
    engine = db.make_engine(url)
    started = time.perf_counter()
    results = provenance.load(engine, {name: Path(path) for name, path in paths.items()})
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "records": sum(r.records for r in results), "known": sum(r.known for r in results),
            "unknown": sum(sum(r.unknown.values()) for r in results), "rss": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], json.loads(args.measure[1]))))
        return
    print(f"provenance benchmark: {args.images:,} images ({EOL_SHARE:.0%} EOL)")
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as workdir, fresh_catalog(backend, Path(workdir)) as url:
            started = time.perf_counter()
            paths = build(url, args.images, Path(workdir))
            built = time.perf_counter() - started
            out = subprocess.run([sys.executable, __file__, "--measure", url,
                                  json.dumps({k: str(v) for k, v in paths.items()})],
                                 check=True, capture_output=True, text=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{backend:<11} licenses load {result['seconds']:7.1f} s "
                  f"({result['records'] / result['seconds']:,.0f} records/s), {result['records']:,} records, "
                  f"{result['known']:,} images with a known license, {result['unknown']:,} unknown; "
                  f"peak RSS {result['rss']:.0f} MB  [catalog and files built in {built:.0f} s]")


if __name__ == "__main__":
    main()
