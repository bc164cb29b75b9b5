"""`tol reproduce`: from a published release's files on disk to its train / val / train_small shards.

The release folder holds `metadata/mapping.sqlite` and/or `metadata/catalog.csv` and `dataset/EOL/*.tar.gz`
(members `<treeoflife_id>.jpg`); iNat21 and BIOSCAN-1M come from their own settings (the release does not ship
them), and so do the reference files. The run imports the map and split (`tol import-release`), ingests every
source through it, names the images, plans `<name>-train`, `<name>-val` and `<name>-train_small` over the
release's split and writes them. Each step skips what is done, so a second run writes nothing.

No exclusion list is loaded: the release's split lists only what the release wrote, after its own exclusions.
The report says what could not be reproduced: images of the split not on disk, images on disk the map lacks,
archive members the map lacks, images our names leave unnamed or that fail to decode, and per column how our
names differ from the published catalog's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl import catalog, compare, schema, sources
from etl.config import Config
from etl.errors import TolError
from etl.pipeline import names_and_licenses
from etl.plan import DEFAULT_MIN_SHARDS, SPLITS, PlanOptions, create_plan, parse_size
from etl.release import idmap, importer

Echo = Callable[[str], None]
EXAMPLES = 3
EOL_FOLDERS = ("dataset/EOL", "dataset/eol")


@dataclass(frozen=True)
class ReleaseFiles:
    """Where a release folder keeps what `reproduce` reads."""

    mapping: Path | None
    catalog: Path | None
    eol: Path | None

    @classmethod
    def find(cls, folder: Path) -> ReleaseFiles:
        """The release's files under `folder`; a one-line error when it holds neither metadata file."""
        if not folder.is_dir():
            raise TolError(f"release folder {folder} does not exist")
        mapping, published = folder / "metadata" / "mapping.sqlite", folder / "metadata" / "catalog.csv"
        eol = next((folder / sub for sub in EOL_FOLDERS if (folder / sub).is_dir()), None)
        if not mapping.is_file() and not published.is_file():
            raise TolError(f"release folder {folder} holds neither metadata/mapping.sqlite nor metadata/catalog.csv")
        return cls(mapping if mapping.is_file() else None, published if published.is_file() else None, eol)


@dataclass
class ReproduceReport:
    """What a reproduction wrote and what it could not reproduce."""

    name: str
    planned: dict[str, int] = field(default_factory=dict)
    listed: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)  # source → images of the split not on disk
    missing_examples: list[str] = field(default_factory=list)
    not_in_map: dict[str, int] = field(default_factory=dict)  # source → images on disk the map lacks
    not_in_map_examples: list[str] = field(default_factory=list)
    members_not_in_map: int = 0
    unnamed: int = 0
    unnamed_examples: list[str] = field(default_factory=list)
    failed: int = 0
    mismatched_keys: int = 0
    naming: dict[str, int] = field(default_factory=dict)  # column → values that differ from the published
    naming_examples: dict[str, str] = field(default_factory=dict)
    shards_written: int = 0

    def lines(self) -> list[str]:
        """The report `tol reproduce` prints."""
        out = [f"reproduce {self.name}: " + ", ".join(
            f"{split} {self.written.get(split, 0):,} of {self.listed.get(split, 0):,} written"
            for split in SPLITS) + f" ({self.shards_written} shards written by this run)"]
        out.append(f"keys or splits unlike the release: {self.mismatched_keys:,}")
        out.append("missing from the downloaded files: " + _counts(self.missing))
        out += [f"  missing: {e}" for e in self.missing_examples]
        out.append(f"on disk but not in the release map: {_counts(self.not_in_map)}; archive members the map "
                   f"lacks (rejected at ingest): {self.members_not_in_map:,}")
        out += [f"  not in the map: {e}" for e in self.not_in_map_examples]
        out.append(f"unnamed here: {self.unnamed:,}; failed to decode: {self.failed:,}")
        out += [f"  unnamed: {e}" for e in self.unnamed_examples]
        if self.naming:
            out.append("names unlike the published catalog, per column: " + ", ".join(
                f"{column} {count:,}" for column, count in self.naming.items()))
            out += [f"  {column}: {example}" for column, example in self.naming_examples.items()]
        else:
            out.append("names unlike the published catalog: none (or no catalog.csv given)")
        return out


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{source} {n:,}" for source, n in sorted(counts.items()) if n) or "none"


def reproduce(settings: Config, engine: Engine, folder: Path, *, name: str = "release", size: str = "224x224",
              samples_per_shard: int | None = None, min_shards: int = DEFAULT_MIN_SHARDS, quiet: bool = False,
              echo: Echo = print) -> ReproduceReport:
    """Rebuild the release in `folder` into `<output_dir>/<name>-<split>` (see the module docstring)."""
    from etl.write.launch import WriteOptions, write_plan
    from etl.write.queue import ShardQueue

    files = ReleaseFiles.find(folder.resolve())
    width, height = parse_size(size)
    made = schema.ensure_head(engine)
    if made:
        echo(made)
    for line in importer.import_release(engine, name, files.mapping, files.catalog,
                                                progress=not quiet).lines()[:2]:
        echo(f"import-release {line}")
    roots = {source.NAME: settings.path(source.ROOT.name) for source in sources.SOURCES}
    if files.eol is not None:
        roots["eol"] = files.eol
    workers = settings.get_value("workers")
    ingested = False
    for source in sources.SOURCES:
        root = roots[source.NAME]
        if root is None:
            echo(f"ingest {source.NAME}: skipped (no {source.ROOT.name} and no release folder for it)")
            continue
        if catalog.ingested_before(engine, source.NAME, root):
            echo(f"ingest {source.NAME}: already done for {root}")
            continue
        metadata = settings.path(source.METADATA.setting.name) if source.METADATA is not None else None
        summary = catalog.ingest(engine, source.NAME, root, metadata=metadata, workers=workers,
                                 progress=not quiet, echo=echo)
        ingested = True
        echo(f"ingest {summary.lines()[0]}")
    names_and_licenses(engine, settings, ingested=ingested, echo=echo, quiet=quiet)
    out_base = Path(settings.get_value("output_dir")).resolve()
    report = ReproduceReport(name)
    for split in SPLITS:
        plan_name = f"{name}-{split}"
        options = PlanOptions(split_name=name, split=split, width=width, height=height,
                              samples_per_shard=samples_per_shard, out_dir=str(out_base / plan_name),
                              min_shards=min_shards)
        plan, created = create_plan(engine, plan_name, options, progress=not quiet)
        echo(f"plan {plan_name}: {plan.n_samples:,} samples in {plan.n_shards} shards "
             f"({'new' if created else 'exists'})")
        with engine.connect() as connection:
            states = ShardQueue(connection).states(plan.id)
        if sum(states.values()) == states.get("done", 0):
            continue  # written by an earlier run: nothing to do, not even the sidecars
        write_options = dataclasses.replace(WriteOptions.from_settings(settings, plan_name), roots=roots)
        written = write_plan(write_options, workers, progress=not quiet)
        if written is not None:
            report.shards_written += sum(worker.shards for worker in written.workers)
            written.check_complete()
    _fill_report(engine, report, files)
    return report


def _fill_report(engine: Engine, report: ReproduceReport, files: ReleaseFiles) -> None:
    name = report.name
    with engine.connect() as connection:
        definition = connection.execute(text("SELECT id FROM split_definitions WHERE name = :n"),
                                        {"n": name}).scalar_one()
        params = {"d": definition, "n": name}
        for split in SPLITS:
            condition = "m.in_train_small = 1" if split == "train_small" else f"m.split = '{split}'"
            report.listed[split] = connection.execute(text(
                f"SELECT COUNT(*) FROM release_split_members AS m WHERE m.split_definition_id = :d AND {condition}"),
                params).scalar_one()
            report.written[split] = connection.execute(text(
                "SELECT COUNT(*) FROM plan_samples WHERE plan_name = :p AND written = 1"),
                {"p": f"{name}-{split}"}).scalar_one()
            # Written keys outside the split, or images of the split present, named and decodable but not written
            # (the plan's written images read once, by EXCEPT: there is no lookup of members by image id, and
            # PostgreSQL's NOT IN over millions of ids that overflow work_mem would scan them per image).
            report.mismatched_keys += connection.execute(text(f"""
                SELECT COUNT(*) FROM plan_samples AS s WHERE s.plan_name = :p AND s.written = 1 AND NOT EXISTS (
                    SELECT 1 FROM release_split_members AS m
                    WHERE m.split_definition_id = :d AND m.treeoflife_id = s.treeoflife_id AND {condition})"""),
                {**params, "p": f"{name}-{split}"}).scalar_one()
            report.mismatched_keys += connection.execute(text(f"""
                SELECT COUNT(*) FROM (
                    SELECT i.id FROM release_split_members AS m
                    JOIN images AS i ON i.id = m.treeoflife_id
                    WHERE m.split_definition_id = :d AND {condition} AND i.status = 'present'
                      AND i.taxon_id IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM image_errors AS e WHERE e.image_id = i.id)
                    EXCEPT
                    SELECT s.image_id FROM plan_members AS s WHERE s.plan_name = :p AND s.written = 1) AS unwritten"""),
                {**params, "p": f"{name}-{split}"}).scalar_one()
        absent = connection.execute(text("""
            SELECT r.source, r.treeoflife_id FROM release_split_members AS m
            JOIN release_ids AS r ON r.treeoflife_id = m.treeoflife_id
            WHERE m.split_definition_id = :d AND NOT EXISTS (
                SELECT 1 FROM images AS i WHERE i.id = m.treeoflife_id AND i.status = 'present')
            ORDER BY r.source, r.treeoflife_id"""), params).all()
        for source, _ in absent:
            report.missing[source] = report.missing.get(source, 0) + 1
        report.missing_examples = [f"{source} {tol_id}" for source, tol_id in absent[:EXAMPLES]]
        unmapped = connection.execute(text("""
            SELECT i.source, COALESCE(i.member, i.path) FROM images AS i
            WHERE i.status = 'present' AND NOT EXISTS (SELECT 1 FROM release_ids AS r WHERE r.treeoflife_id = i.id)
            ORDER BY i.source, COALESCE(i.member, i.path)""")).all()
        for source, _ in unmapped:
            report.not_in_map[source] = report.not_in_map.get(source, 0) + 1
        report.not_in_map_examples = [f"{source} {where}" for source, where in unmapped[:EXAMPLES]]
        report.members_not_in_map = connection.execute(text("""
            SELECT COUNT(*) FROM ingest_rejects AS r
            WHERE r.reason = :reason AND r.run_id = (SELECT MAX(id) FROM ingest_runs WHERE source = 'eol'
                                                     AND status = 'finished')"""),
            {"reason": idmap.RELEASE_MEMBER_NOT_IN_MAP}).scalar_one()
        unnamed = connection.execute(text("""
            SELECT i.id, i.unnamed_reason FROM release_split_members AS m JOIN images AS i ON i.id = m.treeoflife_id
            WHERE m.split_definition_id = :d AND i.status = 'present' AND i.taxon_id IS NULL ORDER BY i.id"""),
            params).all()
        report.unnamed = len(unnamed)
        report.unnamed_examples = [f"{tol_id}: {reason}" for tol_id, reason in unnamed[:EXAMPLES]]
        # The errors the three plans' shards recorded: a lookup of members by image id would scan a plan per
        # error (`shard_members` has no index on image_id, migration 0020).
        report.failed = connection.execute(text("""
            SELECT COUNT(DISTINCT e.image_id) FROM image_errors AS e
            JOIN shards AS sh ON sh.id = e.shard_id JOIN shard_plans AS p ON p.id = sh.plan_id
            WHERE p.name IN (:train, :val, :small)"""),
            {"train": f"{name}-train", "val": f"{name}-val", "small": f"{name}-train_small"}).scalar_one()
    if files.catalog is not None:
        for split in SPLITS:
            result = compare.compare(engine, f"{name}-{split}", files.catalog)
            for (column, _), agreement in result.columns.items():
                if column in compare.NAME_COLUMNS and agreement.differ:
                    report.naming[column] = report.naming.get(column, 0) + agreement.differ
                    if column not in report.naming_examples:
                        kind, examples = next(iter(sorted(agreement.differences.items())))
                        d = examples[0]
                        report.naming_examples[column] = (f"{d.treeoflife_id} ours {d.ours!r}, published "
                                                          f"{d.published!r} ({kind})")
