"""`tol import-release`: load a published release's identity map and split into the catalog.

The map goes to `release_ids` (every image already catalogued that it covers takes its published id here; new
ones at ingest, etl/release/idmap.py); the split becomes a split definition of kind `release` whose images are
listed in `release_split_members`. Rejects and disagreements are kept in `release_rejects`.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection, Engine

from etl import bulk
from etl.errors import TolError
from etl.ids import split_hash
from etl.models import ReleaseImport, ReleaseReject, SplitDefinition
from etl.progress import Progress
from etl.release.idmap import IDENTITY_MATCH
from etl.release.inputs import ReleaseInputs, iter_reasons
from etl.release.inputs import read_inputs as read_release_inputs
from etl.sources.common import sha256_file
from etl.splits import NAME_PATTERN

MAP_COLUMNS = ("treeoflife_id", "source", "eol_content_id", "eol_page_id", "inat21_filename", "inat21_cls_name",
               "inat21_cls_num", "bioscan_part", "bioscan_filename", "split_hash")
EXAMPLES = 5


@dataclass
class ImportSummary:
    """What `import_release` did."""

    name: str
    unchanged: bool = False
    ids: int = 0
    new_ids: int = 0
    conflicts: int = 0
    rekeyed: int = 0
    split_counts: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    disagreements: int = 0
    disagreement_examples: list[str] = field(default_factory=list)
    only_in_mapping: int = 0

    def lines(self) -> list[str]:
        """What `tol import-release` prints."""
        if self.unchanged:
            return [f"release {self.name}: already imported from these files, nothing changed"]
        counts = ", ".join(f"{v:,} {k}" for k, v in self.split_counts.items())
        out = [f"release {self.name}: {self.ids:,} ids ({self.new_ids:,} new), split {counts}; "
               f"{self.rekeyed:,} catalogued images took their published id",
               f"rejected {self.rejected:,} rows" + (": " + ", ".join(
                   f"{reason} {count:,}" for reason, count in self.reject_reasons.items()) if self.rejected else "")]
        if self.conflicts:
            out.append(f"{self.conflicts:,} ids conflict with the map already imported (not used)")
        out.append(f"mapping.sqlite and catalog.csv disagree on {self.disagreements:,} ids"
                   + (f"; {self.only_in_mapping:,} ids only in mapping.sqlite (not written by the release)"
                      if self.only_in_mapping else ""))
        out += [f"  disagree: {line}" for line in self.disagreement_examples]
        if self.rejected or self.disagreements:
            out.append("  … all: SELECT input, location, reason FROM release_rejects "
                       f"WHERE import_name = '{self.name}'")
        return out


def import_release(engine: Engine, name: str, mapping: Path | None, catalog: Path | None, *,
                   progress: bool = False) -> ImportSummary:
    """Load a release's identity map and split into the catalog as split definition `name` (kind `release`),
    and give catalogued images their published ids. Re-importing the same files is a no-op; other files under
    the same name are refused (a split definition never changes). With `progress`, its two steps (reading and
    checking the files; loading them) are shown on stderr."""
    if not re.match(NAME_PATTERN, name):
        raise TolError(f"split name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    shas = (sha256_file(mapping) if mapping is not None and mapping.is_file() else None,
            sha256_file(catalog) if catalog is not None and catalog.is_file() else None)
    summary = ImportSummary(name)
    with engine.connect() as connection:
        row = connection.execute(select(ReleaseImport.mapping_sha256, ReleaseImport.catalog_sha256)
                                 .where(ReleaseImport.name == name)).first()
        existing = connection.execute(select(SplitDefinition.kind).where(SplitDefinition.name == name)).first()
    if row is not None:
        if tuple(row) == shas:
            summary.unchanged = True
            return summary
        raise TolError(f"release {name!r} was imported from other files: a split definition never changes, "
                       "use another --name")
    if existing is not None:
        raise TolError(f"split definition {name!r} already exists (kind {existing[0]}): use another --name")
    with Progress(2, "steps", f"import-release {name}", enabled=progress) as steps, \
            tempfile.TemporaryDirectory(prefix="tol-release-") as scratch:
        inputs = read_release_inputs(mapping, catalog, Path(scratch))
        try:
            steps.advance()
            with engine.begin() as connection:
                _load(connection, summary, inputs, mapping, catalog, shas)
            steps.advance()
        finally:
            inputs.close()
    return summary


def _load(connection: Connection, summary: ImportSummary, inputs: ReleaseInputs, mapping: Path | None,
          catalog: Path | None, shas: tuple[str | None, str | None]) -> None:
    name = summary.name
    bulk.create_temp_table(connection, "release_stage", [
        ("treeoflife_id", bulk.ID_TYPE), ("source", "TEXT"), ("eol_content_id", "BIGINT"), ("eol_page_id", "BIGINT"),
        ("inat21_filename", "TEXT"), ("inat21_cls_name", "TEXT"), ("inat21_cls_num", "INTEGER"),
        ("bioscan_part", "INTEGER"), ("bioscan_filename", "TEXT"), ("split_hash", "BIGINT")])
    bulk.load_rows(connection, "release_stage", MAP_COLUMNS,
                   ((*entry, split_hash(entry.treeoflife_id)) for entry in inputs.entries()))
    connection.exec_driver_sql("CREATE UNIQUE INDEX ix_release_stage_id ON release_stage (treeoflife_id)")
    connection.exec_driver_sql("ANALYZE release_stage")
    # Entries an earlier import mapped otherwise: the same id for another identity, or the identity to another id.
    conflict_sql = " OR ".join(f"(i.source = '{s}' AND {m} AND r.treeoflife_id <> i.treeoflife_id)"
                               for s, m in IDENTITY_MATCH.items())
    conflicts = [row[0] for row in connection.exec_driver_sql(f"""
        SELECT i.treeoflife_id FROM release_stage AS i
        WHERE EXISTS (SELECT 1 FROM release_ids AS r WHERE {conflict_sql})
           OR EXISTS (SELECT 1 FROM release_ids AS r WHERE r.treeoflife_id = i.treeoflife_id AND NOT (
                {" OR ".join(f"(i.source = '{s}' AND {m})" for s, m in IDENTITY_MATCH.items())}))
        ORDER BY 1""")]
    summary.conflicts = len(conflicts)
    for start in range(0, len(conflicts), 500):
        chunk = conflicts[start:start + 500]
        connection.execute(text(f"DELETE FROM release_stage WHERE treeoflife_id IN "
                                f"({', '.join(f':c{n}' for n in range(len(chunk)))})"),
                           {f"c{n}": value for n, value in enumerate(chunk)})
    columns = ", ".join(MAP_COLUMNS)
    summary.new_ids = connection.exec_driver_sql(f"""
        INSERT INTO release_ids ({columns}) SELECT {columns} FROM release_stage AS s
        WHERE NOT EXISTS (SELECT 1 FROM release_ids AS r WHERE r.treeoflife_id = s.treeoflife_id)
        ORDER BY s.treeoflife_id""").rowcount
    summary.ids = inputs.count("map") - summary.conflicts
    summary.rekeyed = rekey_images(connection)
    definition = connection.execute(insert(SplitDefinition).values(
        name=name, kind="release", seed=0, val_percent=_percent(inputs, "val"),
        train_small_percent=_percent(inputs, "train_small"), multiplier=1, increment=0, val_threshold=0,
        train_small_threshold=0).returning(SplitDefinition.id)).scalar_one()
    bulk.create_temp_table(connection, "release_split_stage", [
        ("treeoflife_id", bulk.ID_TYPE), ("split", "TEXT"), ("in_train_small", "INTEGER")])
    bulk.load_rows(connection, "release_split_stage", ("treeoflife_id", "split", "in_train_small"),
                   ((s.treeoflife_id, s.split, int(s.in_train_small)) for s in inputs.splits()))
    # Ids in conflict with an earlier map were dropped from the stage: their split goes too.
    connection.execute(text("""
        INSERT INTO release_split_members (split_definition_id, treeoflife_id, split, in_train_small)
        SELECT :d, s.treeoflife_id, s.split, s.in_train_small FROM release_split_stage AS s
        WHERE EXISTS (SELECT 1 FROM release_stage AS r WHERE r.treeoflife_id = s.treeoflife_id)
        ORDER BY s.treeoflife_id"""), {"d": definition})
    counts = connection.execute(text("""
        SELECT SUM(CASE WHEN split = 'train' THEN 1 ELSE 0 END), SUM(CASE WHEN split = 'val' THEN 1 ELSE 0 END),
               SUM(in_train_small)
        FROM release_split_members WHERE split_definition_id = :d"""), {"d": definition}).one()
    summary.split_counts = dict(zip(("train", "val", "train_small"), (int(v or 0) for v in counts), strict=True))
    problems = [*inputs.rejects, *inputs.disagreements]
    summary.rejected, summary.reject_reasons = len(inputs.rejects), iter_reasons(inputs.rejects)
    summary.disagreements = len(inputs.disagreements)
    summary.disagreement_examples = [f"{d.location}: {d.reason}" for d in inputs.disagreements[:EXAMPLES]]
    summary.only_in_mapping = inputs.only_in_mapping
    connection.execute(insert(ReleaseImport).values(
        name=name, mapping_path=str(mapping) if mapping else None, mapping_sha256=shas[0],
        catalog_path=str(catalog) if catalog else None, catalog_sha256=shas[1], n_ids=summary.ids,
        n_rejected=summary.rejected, n_disagreements=summary.disagreements))
    if problems:
        connection.execute(insert(ReleaseReject), [
            {"import_name": name, "input": p.input, "location": p.location, "reason": p.reason} for p in problems])
    connection.exec_driver_sql("DROP TABLE release_stage")
    connection.exec_driver_sql("DROP TABLE release_split_stage")


def _percent(inputs: ReleaseInputs, which: str) -> float:
    train, val, small = inputs.count("train"), inputs.count("val"), inputs.count("train_small")
    if which == "val":
        return round(100 * val / (train + val), 4) if train + val else 0.0
    return round(100 * small / train, 4) if train else 0.0


def rekey_images(connection: Connection) -> int:
    """Give every catalogued image the map covers its published id (and that id's split hash); refuse when
    one of them is in a plan already, naming the plan. Returns how many images changed id."""
    total = 0
    for source, match in IDENTITY_MATCH.items():
        planned = connection.exec_driver_sql(f"""
            SELECT s.plan_name, COUNT(*) FROM images AS i
            JOIN release_ids AS r ON {match}
            JOIN plan_samples AS s ON s.treeoflife_id = i.id
            WHERE i.source = '{source}' AND i.id <> r.treeoflife_id
            GROUP BY s.plan_name ORDER BY s.plan_name""").first()
        if planned is not None:
            raise TolError(f"plan {planned[0]!r} holds {planned[1]:,} {source} images under the ids they had "
                           "before this release's map: import the release before planning (or into a new catalog)")
        total += connection.exec_driver_sql(f"""
            UPDATE images SET id = r.treeoflife_id, split_hash = r.split_hash
            FROM release_ids AS r
            WHERE images.source = '{source}' AND images.id <> r.treeoflife_id
              AND {match.replace('i.', 'images.')}""").rowcount
    return total
