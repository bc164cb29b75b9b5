"""Plain helpers shared by several test modules: running the first stages of the pipeline on a sample
collection, planning shards, and driving `tol` as a separate process. Fixtures live in conftest.py."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from sqlalchemy import text

from etl import catalog, config, exclusions, splits, taxonomy
from etl.plan import Plan, PlanOptions, create_plan
from etl.write.worker import WriteOptions

# In CI a missing PostgreSQL server or Slurm cluster fails the tests that need it instead of skipping them.
IN_CI = bool(os.environ.get("CI"))

# ------------------------------------------------------------------------------------------ catalogs

SOURCES = ("inat21", "eol", "bioscan")


def roots(collection: Path) -> dict[str, Path]:
    """The root folder of each source inside a sample collection."""
    return {"inat21": collection / "inat21" / "train", "eol": collection / "eol" / "media_cargo_archive",
            "bioscan": collection / "bioscan" / "cropped_256"}


def metadata_of(collection: Path) -> Path:
    """The BIOSCAN metadata file of a sample collection."""
    return collection / "bioscan" / "BIOSCAN_Insect_Dataset_metadata.jsonld"


def ingest_all(engine, collection: Path, workers: int = 2) -> dict[str, catalog.IngestSummary]:
    """Ingest every source of `collection`, quietly."""
    return {source: catalog.ingest(engine, source, roots(collection)[source], metadata=metadata_of(collection),
                                   workers=workers, echo=lambda _: None)
            for source in SOURCES}


def reference_paths(collection: Path) -> dict[str, Path | None]:
    """The reference-file settings of a sample collection, read from its own tol.toml."""
    settings = config.resolve({}, {}, collection / "tol.toml")
    return {r.setting: settings.path(r.setting) for r in taxonomy.RESOURCES}


def ingest_and_name(engine, collection: Path) -> taxonomy.ResolveSummary:
    """Ingest every source of `collection`, load its references and resolve names."""
    ingest_all(engine, collection)
    taxonomy.load(engine, reference_paths(collection))
    return taxonomy.resolve(engine)


def prepared_catalog(engine, collection: Path) -> None:
    """Ingest and name `collection`, load its rare-species exclusions and create the split `main`."""
    ingest_and_name(engine, collection)
    exclusions.load_rare_species(engine, collection / "rarespecies" / "seen_in_training.json",
                                 collection / "rarespecies" / "unseen_in_training.json")
    splits.create(engine, "main", 17, 5, 10)


def eol_unit_with_a_duplicate(unit: int):
    """An EOL-like listing unit for parallel-listing tests: unit 3 repeats content 2 of page 7 (listed by
    unit 0) and every unit has one badly named member."""
    from etl import ids
    from etl.sources.common import Reject, UnitResult, make_row

    result = UnitResult(rejects=[Reject(f"a{unit}.tar.gz:bad name {unit}.jpg", "member name does not match")])
    contents = [2] if unit == 3 else [100 * unit + n for n in range(1, 4)]
    for content in contents:
        result.rows.append(make_row(ids.eol_image_id(content, 7), f"a{unit}.tar.gz", 10,
                                    member=f"{content}_7_eol-full-size-copy.jpg", member_offset=512,
                                    eol_content_id=content, eol_page_id=7))
    return result


# -------------------------------------------------------------------------------------------- shards


def make_plan(engine, out: Path, name: str = "p-train", split: str = "train", per_shard: int = 100,
              **options) -> Plan:
    """A plan of the split `main` (see prepared_catalog) writing into `out`."""
    plan, _ = create_plan(engine, name, PlanOptions(
        split_name="main", split=split, samples_per_shard=per_shard, out_dir=str(out), **options))
    return plan


def write_options(url: str, plan: str, cache: Path, **kwargs) -> WriteOptions:
    """Worker options for writing `plan`, polling fast enough for tests."""
    kwargs.setdefault("roots", {})
    return WriteOptions(database_url=url, plan_name=plan, cache_dir=cache, poll_seconds=0.2, **kwargs)


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- `tol` as a process

TOL = str(Path(sys.executable).parent / "tol")


def tol_env(url: str, tmp_path: Path, **extra: str) -> dict:
    """The environment of a `tol` process working on the catalog at `url` with its cache and output in
    `tmp_path`."""
    return {**os.environ, "TOL_DATABASE_URL": url, "TOL_CACHE_DIR": str(tmp_path / "cache"),
            "TOL_OUTPUT_DIR": str(tmp_path / "out"), **extra}


def shard_rows(engine, plan_id: int) -> dict[int, tuple]:
    """Shard index -> (state, worker, done_at, sha256, path) of every shard of a plan."""
    with engine.connect() as connection:
        return {row[0]: tuple(row[1:]) for row in connection.execute(text(
            "SELECT shard_index, state, worker, done_at, sha256, path FROM shards WHERE plan_id = :p"),
            {"p": plan_id})}


def assert_all_done_once(engine, plan, out: Path) -> None:
    """Every shard of `plan` is done, in `out` with its recorded hash, once, with no stray hidden file."""
    rows = shard_rows(engine, plan.id)
    assert len(rows) == plan.n_shards and {r[0] for r in rows.values()} == {"done"}
    for _, _, _, sha, path in rows.values():
        assert sha256_of(out / path) == sha
    assert sorted(p.name for p in out.glob("shard-*.tar")) == sorted(r[4] for r in rows.values())
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
