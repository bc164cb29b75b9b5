"""Taxonomy benchmark (see bench/taxa).

Builds, directly in a fresh catalog, N images over T distinct naming keys (EOL pages 70 %, iNat21 classes
20 %, BIOSCAN labels 10 %) with a Dynamic Hierarchy, ITIS rows, resolver lines and vernacular names shaped
like the real ones, then times `taxonomy.resolve` — names resolved once per key and joined to the images in
SQL — in a fresh process, reporting its wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fresh_catalog, peak_rss_mb

from etl import bulk, catalog, db, sources, taxonomy
from etl.ids import bioscan_image_id, eol_image_id, inat21_image_id
from etl.sources.common import UnitResult, make_row

SYLLABLES = ["ba", "co", "di", "fu", "ga", "he", "li", "mo", "nu", "pa", "ro", "si", "tu", "ve", "xa", "zo"]


def word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(n))


CHUNK = 10_000


def image_unit(spec: tuple[str, int, int, int, int, int]) -> UnitResult:
    """Synthetic images `start`..`stop` of `source` (one listing unit), over pages `first_page`.. and classes."""
    source, start, stop, first_page, n_pages, n_classes = spec
    result = UnitResult()
    for n in range(start, stop):
        if source == "eol":
            page = first_page + n % n_pages
            result.rows.append(make_row(eol_image_id(n, page), f"a{n % 63}.tar.gz", 1,
                                        member=f"{n}_{page}_eol-full-size-copy.jpg", member_offset=0,
                                        eol_content_id=n, eol_page_id=page))
        elif source == "inat21":
            cls = n % n_classes
            name = f"{n:08x}-0000-4000-8000-000000000000.jpg"
            result.rows.append(make_row(inat21_image_id(cls, name), f"c/{name}", 1, inat21_filename=name,
                                        inat21_cls_name=f"Animalia_P{cls % 9}_C{cls % 31}_O{cls % 97}_"
                                        f"F{cls % 301}_G{cls}_s{cls}", inat21_cls_num=cls))
        else:
            result.rows.append(make_row(bioscan_image_id(1 + n % 113, f"{n}.jpg"), f"part/{n}.jpg", 1,
                                        bioscan_part=1 + n % 113, bioscan_filename=f"{n}.jpg"))
    return result


def image_listing(source: str, count: int, pages: list[int], n_classes: int, workers: int = 2) -> catalog.Listing:
    """`count` synthetic images of `source` in units of CHUNK rows, listed by `workers` processes like
    `tol ingest` (bounded memory at any count)."""
    assert pages == list(range(pages[0], pages[0] + len(pages)))
    units = [(source, start, min(count, start + CHUNK), pages[0], len(pages), n_classes)
             for start in range(0, count, CHUNK)]
    return catalog.Listing(image_unit, units, workers, sources.by_name(source).FIELDS)


def build(url: str, images: int, keys: int, shares: tuple[float, float, float] = (0.7, 0.2, 0.1),
          dh_size: int = 0) -> dict:
    """A catalog of `images` images over `keys` naming keys; `shares` of EOL, iNat21 and BIOSCAN images; a DH
    of at least `dh_size` rows."""
    rng = random.Random(5)
    engine = db.make_engine(url)
    n_pages, n_classes = int(keys * 0.7), int(keys * 0.2)
    n_labels = keys - n_pages - n_classes
    # A tree: 3 kingdoms > 30 phyla > 150 classes > 600 orders > 3000 families > genera > species.
    levels = [("kingdom", 3), ("phylum", 30), ("class", 150), ("order", 600), ("family", 3000),
              ("genus", max(3000, n_pages // 3))]
    dh_rows, itis_rows, vernaculars = [], [], []
    parents: list[tuple[str, int, tuple]] = [("", 0, ())]
    next_page = 1
    for rank, count in levels:
        nodes = []
        for n in range(count):
            parent_id, _, ranks = parents[n % len(parents)]
            name = ("Metazoa" if n == 0 and rank == "kingdom" else word(rng, 3).capitalize() + f"{rank[0]}{n}")
            taxon_id = f"EOL-{len(dh_rows) + 1}"
            dh_rows.append((len(dh_rows) + 1, taxon_id, parent_id, rank, name, next_page))
            nodes.append((taxon_id, next_page, (*ranks, name)))
            next_page += 1
        parents = nodes
    pages = []
    for n in range(n_pages):
        parent_id, _, ranks = parents[n % len(parents)]
        binomial = f"{ranks[-1]} {word(rng, 2)}{n}"
        dh_rows.append((len(dh_rows) + 1, f"EOL-S{n}", parent_id, "species", binomial, next_page))
        pages.append(next_page)
        if n % 3 == 0:
            itis_rows.append((n, *ranks[:6], binomial, f"{word(rng, 2).capitalize()} bird, other", "English, French"))
        if n % 2 == 0:
            vernaculars.append((n, next_page, binomial, f"{word(rng, 2).capitalize()} thing", "eng", 1))
        next_page += 1
    genera, first_extra_row, first_extra_page = parents, len(dh_rows) + 1, next_page

    def extra_rows():
        """Pages no image shows, as most of the real DH's 2.5M rows are: more species of the same genera.
        Streamed, so that the bench's own rows do not count in the stage's peak memory."""
        for n in range(max(0, dh_size - first_extra_row + 1)):
            genus_id, _, ranks = genera[n % len(genera)]
            yield (first_extra_row + n, f"EOL-X{n}", genus_id, "species", f"{ranks[-1]} extra{n}",
                   first_extra_page + n)

    labels = [(f"Order{n % 40}", f"Family{n % 700}", f"Genus{n}" if n % 2 else "not_classified",
               f"Genus{n} sp{n}" if n % 4 == 1 else "not_classified") for n in range(n_labels)]
    with engine.begin() as connection:
        bulk.load_rows(connection, "ref_eol_taxa", ("row_no", "taxon_id", "parent_taxon_id", "rank",
                                                     "canonical_name", "page_id"),
                       itertools.chain(dh_rows, extra_rows()))
        bulk.load_rows(connection, "ref_itis_chains", ("row_no", "kingdom", "phylum", "class", "order", "family",
                                                        "genus", "species", "vernacular", "vernacular_lang"),
                       itis_rows)
        bulk.load_rows(connection, "ref_eol_vernaculars", ("row_no", "page_id", "canonical_form", "vernacular",
                                                            "language", "preferred"), vernaculars)
        bulk.load_rows(connection, "bioscan_metadata", ("image_file", "order", "family", "genus", "species",
                                                         "chunk_number"),
                       ((f"{n}.jpg", *labels[n % n_labels], "1") for n in range(int(images * shares[2]))))
    load_started = time.perf_counter()
    for source, count in (("eol", int(images * shares[0])), ("inat21", int(images * shares[1])),
                          ("bioscan", int(images * shares[2]))):
        catalog.load_listing(engine, source, "synthetic", image_listing(source, count, pages, n_classes))
    load_seconds = time.perf_counter() - load_started
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO ref_resources (name, path, n_rows, sha256) "
                                   "VALUES ('eol_taxa', 'synthetic', 0, '')")
    engine.dispose()
    return {"keys": keys, "pages": n_pages, "classes": n_classes, "labels": n_labels,
            "dh_rows": max(len(dh_rows), dh_size),
            "load_seconds": load_seconds}


def measure(url: str) -> dict:
    engine = db.make_engine(url)
    started = time.perf_counter()
    summary = taxonomy.resolve(engine)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "taxa": summary.taxa, "named": summary.named_images,
            "unnamed": summary.unnamed_images, "rss": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--taxa", type=int, default=50_000, help="Distinct naming keys.")
    parser.add_argument("--dh-rows", type=int, default=0,
                        help="Grow the Dynamic Hierarchy to this many rows with pages no image shows (real: 2.5M).")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    print(f"taxonomy benchmark: {args.images:,} images over {args.taxa:,} naming keys")
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as workdir, fresh_catalog(backend, Path(workdir)) as url:
            started = time.perf_counter()
            shape = build(url, args.images, args.taxa, dh_size=args.dh_rows)
            built = time.perf_counter() - started
            out = subprocess.run([sys.executable, __file__, "--measure", url], check=True, capture_output=True,
                                 text=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rate = args.images / result["seconds"]
            print(f"{backend:<11} resolve {result['seconds']:7.1f} s ({rate:,.0f} images/s), "
                  f"{result['taxa']:,} taxa, {result['named']:,} images named, {result['unnamed']:,} not; "
                  f"peak RSS {result['rss']:.0f} MB  [catalog built in {built:.0f} s: {shape}]")


if __name__ == "__main__":
    main()
