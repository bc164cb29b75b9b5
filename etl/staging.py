"""The ingest's staging table: a listing's rows wait there to be checked and merged into `images`.

Duplicate source identities are rejected there, a source's metadata file checks the listing there, and set-based
SQL then adds new images, updates changed ones and marks vanished ones missing. The rejects of a run and its
summary are kept here too. etl/catalog.py runs the listing and decides whether rows take this way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import Connection

from etl import bulk, sources
from etl.models import IngestReject
from etl.release import idmap
from etl.sources.common import STAGE_COLUMNS, Reject

COMMON_STAGE_TYPES = {"id": bulk.ID_TYPE, "path": "TEXT", "byte_size": "BIGINT", "split_hash": "BIGINT",
                      "suspect": "TEXT", "source_mtime_ns": "BIGINT", "content_sha256": "VARCHAR(64)"}


def _stage_types() -> dict[str, str]:
    """The staging table's columns and SQL types, in ImageRow's order: the common ones and each source's own."""
    types = dict(COMMON_STAGE_TYPES)
    for source in sources.SOURCES:
        types.update(source.STAGE_TYPES)
    return {column: types[column] for column in STAGE_COLUMNS}


STAGE_TYPES = _stage_types()
STAGE = "ingest_stage"
EXAMPLES = 5


@dataclass
class IngestSummary:
    """What one ingest run did."""

    run_id: int
    source: str
    root: str
    listed: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    missing: int = 0
    rejected: int = 0
    missing_examples: list[str] = field(default_factory=list)
    reject_examples: list[Reject] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """A human report: counts, then a few examples of missing and rejected files."""
        rate = self.listed / self.seconds if self.seconds else 0.0
        out = [f"{self.source}: {self.listed} listed, {self.added} added, {self.changed} changed, "
               f"{self.unchanged} unchanged, {self.missing} missing, {self.rejected} rejected "
               f"({self.seconds:.1f} s, {rate:,.0f} images/s) [run {self.run_id}]"]
        out += [f"  missing: {path}" for path in self.missing_examples]
        out += [f"  rejected: {r.path}: {r.reason}" for r in self.reject_examples]
        if self.rejected > len(self.reject_examples):
            out.append(f"  … all rejects: SELECT path, reason FROM ingest_rejects WHERE run_id = {self.run_id}")
        return out

class RejectWriter:
    """Collects rejects of one run into the catalog in batches, keeping a few examples for the report."""

    def __init__(self, connection: Connection, run_id: int, source: str) -> None:
        self.connection, self.run_id, self.source = connection, run_id, source
        self.batch: list[dict] = []
        self.count = 0
        self.examples: list[Reject] = []
        # Base names of rejected files, so that their metadata records are not reported too.
        self.keeps_file_names = sources.by_name(source).METADATA is not None
        self.file_names: set[str] = set()

    def add(self, reject: Reject) -> None:
        """Record one reject (written with the next batch)."""
        self.batch.append({"run_id": self.run_id, "source": self.source, "path": reject.path,
                           "reason": reject.reason})
        self.count += 1
        if self.keeps_file_names:
            self.file_names.add(reject.path.rsplit("/", 1)[-1])
        if len(self.examples) < EXAMPLES:
            self.examples.append(reject)
        if len(self.batch) >= 5000:
            self.flush()

    def reset(self) -> None:
        """Forget everything added (after the transaction holding it was rolled back)."""
        self.batch, self.count, self.examples = [], 0, []
        self.file_names.clear()

    def flush(self) -> None:
        """Write the batch so far."""
        if self.batch:
            self.connection.execute(insert(IngestReject), self.batch)
            self.batch = []


def analyze_images(connection: Connection) -> None:
    """Refresh the planner's statistics of `images`."""
    # Statistics for the planner: later merges join millions of rows against a table it would think empty.
    connection.exec_driver_sql("ANALYZE images")


def load_staged(connection: Connection, summary: IngestSummary, fill: Callable[[Connection, IngestSummary], int],
                 rejects: RejectWriter, metadata: Path | None) -> None:
    """Fill the staging table, then merge it into `images` with set-based SQL."""
    bulk.create_temp_table(connection, STAGE, [("seq", "BIGINT"), *STAGE_TYPES.items()])
    summary.listed = fill(connection, summary)
    if connection.dialect.name == "sqlite":
        # SQLite's merge probes the listing by id; PostgreSQL hash-joins it and needs no index.
        connection.exec_driver_sql(f"CREATE INDEX ix_{STAGE}_id ON {STAGE} (id)")
    connection.exec_driver_sql(f"ANALYZE {STAGE}")
    connection.exec_driver_sql("ANALYZE images")
    # A published release's map: published ids, and EOL ids of members named by treeoflife_id.
    idmap.apply_to_listing(connection, STAGE, summary.source, rejects.add)
    _drop_duplicates(connection, rejects)
    checker = sources.by_name(summary.source).METADATA
    if checker is not None and metadata is not None:
        checker.check_listing(connection, STAGE, metadata, rejects.add, rejects.file_names)
    _merge(connection, summary, summary.source, summary.run_id)


def _drop_duplicates(connection: Connection, rejects: RejectWriter) -> None:
    """Two listed files with the same source identity: keep the first, reject the others."""
    if connection.exec_driver_sql(
            f"SELECT 1 FROM {STAGE} GROUP BY id HAVING COUNT(*) > 1 LIMIT 1").first() is None:
        return
    duplicates = connection.exec_driver_sql(f"""
        SELECT d.path, d.member, k.path, k.member, d.seq FROM (
            SELECT seq, id, path, member,
                   ROW_NUMBER() OVER (PARTITION BY id ORDER BY seq) AS n FROM {STAGE}) AS d
        JOIN {STAGE} AS k ON k.id = d.id
        WHERE d.n > 1 AND k.seq = (SELECT MIN(seq) FROM {STAGE} AS m WHERE m.id = d.id)
        ORDER BY d.seq""").all()
    for path, member, kept_path, kept_member in (row[:4] for row in duplicates):
        where = f"{path}:{member}" if member else path
        kept = f"{kept_path}:{kept_member}" if kept_member else kept_path
        rejects.add(Reject(where, f"same source identity as {kept} (duplicate)"))
    if duplicates:
        seqs = [row[4] for row in duplicates]
        for start in range(0, len(seqs), 500):
            chunk = seqs[start:start + 500]
            connection.exec_driver_sql(
                f"DELETE FROM {STAGE} WHERE seq IN ({', '.join(str(int(s)) for s in chunk)})")


def _merge(connection: Connection, summary: IngestSummary, source: str, run_id: int) -> None:
    """Add new images, update changed or reappeared ones, mark vanished ones missing."""
    params = {"run": run_id, "source": source}
    columns = list(STAGE_COLUMNS)
    listed = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {STAGE}").scalar_one()
    first_ingest = connection.execute(text("SELECT 1 FROM images WHERE source = :source LIMIT 1"),
                                      params).first() is None
    summary.added = connection.execute(text(f"""
        INSERT INTO images ({", ".join(columns)}, source, status, first_run_id, last_run_id)
        SELECT {", ".join("s." + c for c in columns)}, :source, 'present', :run, :run
        FROM {STAGE} AS s
        WHERE NOT EXISTS (SELECT 1 FROM images AS i WHERE i.id = s.id)
        ORDER BY s.id"""), params).rowcount

    # On a first ingest every listed image was just added: nothing can have changed or vanished.
    summary.changed = 0 if first_ingest else connection.execute(text(f"""
        UPDATE images SET path = s.path, member = s.member, member_offset = s.member_offset,
               byte_size = s.byte_size, suspect = s.suspect, status = 'present', last_run_id = :run,
               source_mtime_ns = s.source_mtime_ns,
               -- A listing without --checksum keeps the hash of a file whose size and mtime did not change.
               content_sha256 = CASE WHEN s.content_sha256 IS NOT NULL THEN s.content_sha256
                   WHEN images.byte_size = s.byte_size
                    AND COALESCE(images.source_mtime_ns, -1) = COALESCE(s.source_mtime_ns, -1)
                   THEN images.content_sha256 END
        FROM {STAGE} AS s
        WHERE images.id = s.id AND images.first_run_id <> :run AND (
              images.status = 'missing' OR images.path <> s.path OR images.byte_size <> s.byte_size
              OR COALESCE(images.member, '') <> COALESCE(s.member, '')
              OR COALESCE(images.member_offset, -1) <> COALESCE(s.member_offset, -1)
              OR COALESCE(images.suspect, '') <> COALESCE(s.suspect, '')
              OR COALESCE(images.source_mtime_ns, -1) <> COALESCE(s.source_mtime_ns, -1)
              OR COALESCE(s.content_sha256, images.content_sha256, '') <> COALESCE(images.content_sha256, ''))"""),
                                                                      params).rowcount
    summary.unchanged = listed - summary.added - summary.changed
    summary.listed = listed
    summary.missing = 0 if first_ingest else connection.execute(text(f"""
        UPDATE images SET status = 'missing', last_run_id = :run
        WHERE source = :source AND status = 'present'
          AND NOT EXISTS (SELECT 1 FROM {STAGE} AS s WHERE s.id = images.id)"""), params).rowcount
    if summary.missing:
        summary.missing_examples = [
            f"{path}:{member}" if member else path
            for path, member in connection.execute(text(
                "SELECT path, member FROM images WHERE last_run_id = :run AND status = 'missing' "
                "ORDER BY path, member LIMIT :n"), {**params, "n": EXAMPLES})]
