"""Ingest benchmark (see bench/ingest).

Each measurement runs in a fresh process so that its peak RSS is its own. The listing is synthetic (iNat21-like
rows made on the fly, as a class-folder scan would yield them) and goes through the same staging, COPY and
merge code as `tol ingest`; a second pass re-ingests the same listing (the idempotent re-run). A last figure
times the real listing of a generated sample tree, files and all, without and with `--checksum`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fresh_catalog, peak_rss_mb

from etl import catalog, db
from etl.ids import inat21_image_id
from etl.sources import inat21
from etl.sources.common import UnitResult, make_row

PER_CLASS = 270  # the real iNat21 train average


def synthetic_unit(unit: tuple[int, int]) -> UnitResult:
    """An iNat21-like class folder `cls_num` of `count` images, as `inat21.scan_unit` would return it."""
    cls_num, count = unit
    name = f"Animalia_P{cls_num % 7}_C{cls_num % 31}_O{cls_num % 97}_F{cls_num % 401}_G{cls_num}_s{cls_num}"
    result = UnitResult()
    prefix = f"{cls_num:05d}_{name}/"
    for k in range(count):
        filename = f"{cls_num:08x}-{k:04x}-4000-8000-000000000000.jpg"
        result.rows.append(make_row(inat21_image_id(cls_num, filename), prefix + filename,
                                    100_000 + k, inat21_filename=filename, inat21_cls_name=name,
                                    inat21_cls_num=cls_num))
    return result


def synthetic_listing(images: int, workers: int = 2) -> catalog.Listing:
    """The listing of `images` images, made by `workers` processes like a real parallel listing."""
    units = [(n, min(PER_CLASS, images - n * PER_CLASS)) for n in range((images + PER_CLASS - 1) // PER_CLASS)]
    return catalog.Listing(synthetic_unit, units, workers, inat21.FIELDS)


def measure_one(backend: str, images: int) -> dict:
    with tempfile.TemporaryDirectory() as workdir, fresh_catalog(backend, Path(workdir)) as url:
        engine = db.make_engine(url)
        started = time.monotonic()
        first = catalog.load_listing(engine, "inat21", "synthetic", synthetic_listing(images))
        first_s = time.monotonic() - started
        started = time.monotonic()
        second = catalog.load_listing(engine, "inat21", "synthetic", synthetic_listing(images))
        second_s = time.monotonic() - started
        engine.dispose()
    assert first.added == images and second.unchanged == images
    return {"backend": backend, "images": images, "first_s": first_s, "rerun_s": second_s,
            "first_rate": images / first_s, "rerun_rate": images / second_s, "peak_rss_mb": peak_rss_mb()}


def measure_listing(workers: int) -> dict:
    """The real listing of a generated tree, without and with `--checksum` (same tree, fresh catalogs, best of
    two interleaved rounds each, so the page cache is warm for both)."""
    from etl import sampledata, schema

    with tempfile.TemporaryDirectory() as workdir:
        sampledata.generate(Path(workdir) / "s", images=5000, seed=1)
        times: dict[bool, list[float]] = {False: [], True: []}
        totals: dict[bool, int] = {}
        for round_no in range(2):
            for checksum in (False, True):
                url = f"sqlite:///{workdir}/c-{round_no}-{checksum}.sqlite"
                engine = db.make_engine(url)
                schema.upgrade(engine)
                started = time.monotonic()
                total = 0
                for source, sub in (("inat21", "inat21/train"), ("eol", "eol/media_cargo_archive"),
                                    ("bioscan", "bioscan/cropped_256")):
                    summary = catalog.ingest(
                        engine, source, Path(workdir) / "s" / sub, workers=workers, checksum=checksum,
                        metadata=Path(workdir) / "s/bioscan/BIOSCAN_Insect_Dataset_metadata.jsonld",
                        echo=lambda _: None)
                    total += summary.added
                times[checksum].append(time.monotonic() - started)
                totals[checksum] = total
                engine.dispose()
        data_mb = sum(f.stat().st_size for f in (Path(workdir) / "s").rglob("*") if f.is_file()) / 1e6
    plain, hashed = min(times[False]), min(times[True])
    return {"images": totals[False], "seconds": plain, "rate": totals[False] / plain, "workers": workers,
            "checksum_seconds": hashed, "checksum_rate": totals[True] / hashed, "data_mb": data_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--one", nargs=2, metavar=("BACKEND", "IMAGES"), help=argparse.SUPPRESS)
    parser.add_argument("--listing", type=int, metavar="WORKERS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]))))
        return
    if args.listing:
        print(json.dumps(measure_listing(args.listing)))
        return

    def run(*extra: str) -> dict:
        out = subprocess.run([sys.executable, __file__, *extra], check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    print(f"ingest benchmark: synthetic iNat21-like listing ({PER_CLASS} images per class folder) made by 2 "
          "listing processes, loaded by `catalog.load_listing` (the code path of `tol ingest`)")
    print(f"{'backend':<11} {'images':>9} {'first load':>12} {'images/s':>10} {'re-run':>9} {'images/s':>10}"
          f" {'peak RSS':>9}")
    for backend in args.backends.split(","):
        for images in sorted({max(args.images // 10, 1), args.images}):
            r = run("--one", backend, str(images))
            print(f"{backend:<11} {images:>9,} {r['first_s']:>10.1f} s {r['first_rate']:>10,.0f} "
                  f"{r['rerun_s']:>7.1f} s {r['rerun_rate']:>10,.0f} {r['peak_rss_mb']:>6.0f} MB")
    r = run("--listing", "2")
    print(f"real listing of a generated sample tree (files, archives, sniffing), 2 workers: {r['images']:,} images "
          f"in {r['seconds']:.1f} s = {r['rate']:,.0f} images/s")
    print(f"  with --checksum (sha256 of every image, {r['data_mb']:,.0f} MB tree): {r['checksum_seconds']:.1f} s = "
          f"{r['checksum_rate']:,.0f} images/s, {r['checksum_seconds'] / r['seconds']:.2f}x the time")


if __name__ == "__main__":
    main()
