"""Release import benchmark (see bench/release).

Writes a synthetic release `mapping.sqlite` (the four tables) and `catalog.csv` (train_small rows repeating
train rows) of N ids, then times `importer.import_release` of both in a fresh process per backend, reporting
its wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fresh_catalog, peak_rss_mb

HEADER = ("split", "treeoflife_id", "eol_content_id", "eol_page_id", "bioscan_part", "bioscan_filename",
          "inat21_filename", "inat21_cls_name", "inat21_cls_num", "kingdom", "phylum", "class", "order", "family",
          "genus", "species", "common")


def write_release(folder: Path, n: int) -> tuple[Path, Path]:
    """A synthetic mapping.sqlite and catalog.csv of `n` ids."""
    rng = random.Random(0)
    mapping, published = folder / "mapping.sqlite", folder / "catalog.csv"
    connection = sqlite3.connect(mapping)
    connection.execute("CREATE TABLE eol (content_id INTEGER, page_id INTEGER, evobio10m_id TEXT)")
    connection.execute("CREATE TABLE inat21 (filename TEXT, cls_name TEXT, cls_num INTEGER, evobio10m_id TEXT)")
    connection.execute("CREATE TABLE bioscan (part INTEGER, filename TEXT, evobio10m_id TEXT)")
    connection.execute("CREATE TABLE split (evobio10m_id TEXT, is_val INTEGER, is_train_small INTEGER)")
    with open(published, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for i in range(n):
            tol_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            val = rng.random() < 0.05
            small = not val and rng.random() < 0.1
            ids = [""] * 7
            roll = i % 100
            if roll < 63:
                connection.execute("INSERT INTO eol VALUES (?, ?, ?)", (i, 1000 + i % 400_000, tol_id))
                ids[0:2] = [str(i), str(1000 + i % 400_000)]
            elif roll < 89:
                name = f"{uuid.UUID(int=rng.getrandbits(128), version=4)}.jpg"
                cls = i % 10_000
                connection.execute("INSERT INTO inat21 VALUES (?, ?, ?, ?)",
                                   (name, f"Animalia_Chordata_Aves_Order_Family_Genus_sp{cls}", cls, tol_id))
                ids[4:7] = [name, f"Animalia_Chordata_Aves_Order_Family_Genus_sp{cls}", str(cls)]
            else:
                connection.execute("INSERT INTO bioscan VALUES (?, ?, ?)", (1 + i % 113, f"{i}.jpg", tol_id))
                ids[2:4] = [str(1 + i % 113), f"{i}.jpg"]
            connection.execute("INSERT INTO split VALUES (?, ?, ?)", (tol_id, int(val), int(small)))
            names = ["Animalia", "Chordata", "Aves", "Order", "Family", "Genus", "species", "Common"]
            writer.writerow(["val" if val else "train", tol_id, *ids, *names])
            if small:
                writer.writerow(["train_small", tol_id, *ids, *names])
    connection.commit()
    connection.close()
    return mapping, published


def measure(url: str, mapping: str, published: str) -> None:
    """In this process: import the release, print seconds and peak RSS."""
    from etl import db
    from etl.release import importer

    engine = db.make_engine(url)
    started = time.monotonic()
    summary = importer.import_release(engine, "release", Path(mapping), Path(published))
    seconds = time.monotonic() - started
    print(f"{summary.ids:,} ids in {seconds:.1f} s ({summary.ids / seconds:,.0f} ids/s), "
          f"peak RSS {peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ids", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="tol-bench-release-") as tmp:
        started = time.monotonic()
        mapping, published = write_release(Path(tmp), args.ids)
        print(f"wrote a release of {args.ids:,} ids in {time.monotonic() - started:.1f} s")
        for backend in args.backends.split(","):
            with fresh_catalog(backend, Path(tmp)) as url:
                print(f"{backend}: ", end="", flush=True)
                subprocess.run([sys.executable, __file__, "--measure", url, str(mapping), str(published)],
                               check=True)


if __name__ == "__main__":
    main()
