"""The ingest stage: list a source's files and bring the catalog's `images` in line with them.

One ingest is one transaction after its run row: the listing is streamed (in parallel, by unit) into a
temporary staging table, then merged with set-based SQL. Killed at any point, it leaves the catalog as it was
(the run row says `interrupted` or stays `running`), and the next run does the whole job.

This module runs the listing and gets its rows into the catalog: straight into `images` on a first ingest,
through scratch files with SQLite and several listing processes; the staging table, its checks and the merge
are etl/staging.py's.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from etl import bulk, sources, spill
from etl.errors import TolError
from etl.models import IngestRun
from etl.parallel import ordered_map
from etl.progress import Progress
from etl.release import idmap
from etl.sources.common import STAGE_COLUMNS, STAMP_FIELDS, Reject, StampedScan, UnitResult
from etl.staging import STAGE, IngestSummary, RejectWriter, analyze_images, load_staged

SPILL_WINDOW = 1024


@dataclass(frozen=True)
class Listing:
    """A source's listing: `scan` applied to every unit, by `workers` processes, results in unit order."""

    scan: Callable[[Any], UnitResult]
    units: Sequence[Any]
    workers: int = 1
    # The row fields the source fills (its module's FIELDS); scratch files carry only these.
    fields: tuple[str, ...] = STAGE_COLUMNS

    def results(self, scratch_dir: Path | None = None) -> Iterator[UnitResult]:
        """Each unit's result; with `scratch_dir`, rows are written to scratch files there instead."""
        if scratch_dir is None:
            return ordered_map(self.scan, self.units, self.workers)
        phases = spill.phase_of_units(len(self.units), self.workers)
        files_per_phase = min(self.workers, spill.MAX_FILES)
        work = [(n, phases[n], unit) for n, unit in enumerate(self.units)]
        # Results hold no rows, so many can wait: the processes keep listing while the writer copies a phase.
        scan = functools.partial(spill.scan_to_file, self.scan, str(scratch_dir), files_per_phase, self.fields)
        return ordered_map(scan, work, self.workers, window=SPILL_WINDOW)


def _spills(listing: Listing | Callable[[], Iterable[UnitResult]], dialect: str) -> bool:
    """Whether listing processes should write rows to scratch files: only for SQLite, whose one writer is
    the bottleneck; PostgreSQL's COPY takes the stream as fast as it comes."""
    return isinstance(listing, Listing) and listing.workers > 1 and dialect == "sqlite"


def _check_root(source: sources.Source, root: Path | None) -> Path:
    if root is None:
        raise TolError(f"no {source.NAME} root given: pass ROOT or set {source.ROOT.name}")
    if not root.exists():
        raise TolError(f"{source.NAME} root does not exist: {root}")
    if not root.is_dir():
        raise TolError(f"{source.NAME} root is not a directory: {root}")
    return root


def _start_run(engine: Engine, source: str, root: str | Path) -> int:
    with engine.begin() as connection:
        # A run still marked running for this source was killed before it could say so.
        connection.execute(update(IngestRun).where(IngestRun.source == source, IngestRun.status == "running")
                           .values(status="interrupted"))
        return connection.execute(insert(IngestRun).values(source=source, root=str(root))
                                  .returning(IngestRun.id)).scalar_one()


def _end_run(engine: Engine, run_id: int, status: str) -> None:
    with engine.begin() as connection:
        connection.execute(update(IngestRun).where(IngestRun.id == run_id)
                           .values(status=status, finished_at=text("CURRENT_TIMESTAMP")))


def ingested_before(engine: Engine, source: str, root: Path) -> bool:
    """Whether an ingest of `source` from `root` has finished before (`tol run` and `tol reproduce` skip it)."""
    with engine.connect() as connection:
        return connection.execute(select(IngestRun.id).where(
            IngestRun.source == source, IngestRun.root == str(root.resolve()),
            IngestRun.status == "finished").limit(1)).first() is not None


def ingest(
    engine: Engine,
    source: str,
    root: Path | None,
    *,
    metadata: Path | None = None,
    workers: int = 1,
    check_images: bool = True,
    checksum: bool = False,
    progress: bool = False,
    echo: Callable[[str], None] = print,
) -> IngestSummary:
    """Catalogue every image of `source` under `root`; see the module docstring for the guarantees.

    `metadata` is the source's metadata file, for a source that has one (ignored otherwise). Every image's
    mtime is recorded (EOL: its archive's), and with `checksum` its sha256 (reading every byte), so the
    write stage can tell a file changed since (`etl.reader.changed_since_ingest`)."""
    module = sources.by_name(source)
    root = _check_root(module, root).resolve()
    units, top_rejects = module.list_units(root)
    if not units:
        raise TolError(f"no {module.UNIT_NAME} under {source} root {root}: is this the right folder?")
    if module.METADATA is not None and metadata is None:
        echo(f"warning: no {module.METADATA.title} given (--metadata or {module.METADATA.setting.name}): images "
             "are catalogued without checking that each has a metadata record")

    scan = StampedScan(functools.partial(module.scan_unit, str(root), check_images=check_images), str(root),
                       checksum)
    return load_listing(engine, source, str(root), Listing(scan, units, workers, (*module.FIELDS, *STAMP_FIELDS)),
                        top_rejects=top_rejects, metadata=metadata, units_total=len(units), progress=progress)


def load_listing(
    engine: Engine,
    source: str,
    root: str,
    listing: Listing | Callable[[], Iterable[UnitResult]],
    *,
    top_rejects: Iterable[Reject] = (),
    metadata: Path | None = None,
    units_total: int | None = None,
    progress: bool = False,
) -> IngestSummary:
    """Merge a listing of `source` into the catalog as one run.

    `listing` is a `Listing`, or a callable returning one result per unit. The first ingest of a source
    loads the rows straight into `images`; should two files share a source identity, that load is rolled
    back and the rows go through the staging table, which reports the duplicates. Later ingests always merge
    through the staging table. With SQLite and several listing processes, rows reach the catalog through
    scratch files (etl/spill.py), deleted when the run ends.
    """
    started = time.monotonic()
    checker = sources.by_name(source).METADATA
    if checker is None:
        metadata = None
    run_id = _start_run(engine, source, root)
    summary = IngestSummary(run_id=run_id, source=source, root=root)
    top_rejects = list(top_rejects)
    results = listing.results if isinstance(listing, Listing) else (lambda _scratch=None: iter(listing()))
    try:
        with ExitStack() as stack:
            scratch = (Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tol-listing-")))
                       if _spills(listing, engine.dialect.name) else None)
            connection = stack.enter_context(engine.connect())
            attached: list[str] = []
            # Runs once the transaction is over: SQLite refuses to detach a database a transaction has used.
            stack.callback(lambda: spill.detach_all(connection.connection.driver_connection, attached))
            with connection.begin():
                rejects = RejectWriter(connection, run_id, source)
                if checker is not None and metadata is not None:
                    checker.load(connection, metadata)
                # A first ingest goes straight into `images` (COPY on PostgreSQL, scratch-file copies on SQLite);
                # a source with metadata needs the staging table to check images against their records.
                direct = metadata is None and connection.execute(
                    text("SELECT 1 FROM images WHERE source = :s LIMIT 1"), {"s": source}).first() is None
                # A release map translates ids in the staging table (etl/release/idmap.py).
                direct = direct and not idmap.has_map(connection, source)
                bar = stack.enter_context(Progress(total=units_total,
                                                   unit=sources.by_name(source).UNIT_NAME.split()[-1],
                                                   desc=source, enabled=progress))
                if scratch is not None:
                    assert isinstance(listing, Listing)
                    _load_spilled(connection, summary, results(scratch), listing.fields, rejects, top_rejects, bar,
                                  attached, direct=direct, metadata=metadata)
                else:
                    fill_directly = functools.partial(_stream_into, results, rejects, top_rejects, bar, direct=True)
                    fill_stage = functools.partial(_stream_into, results, rejects, top_rejects, bar, direct=False)
                    if not (direct and _load_directly(connection, summary, fill_directly, rejects)):
                        load_staged(connection, summary, fill_stage, rejects, metadata)
                if source == "eol" and direct:
                    # No map (else the rows were staged): release-layout members are rejected.
                    removed = idmap.apply_to_listing(connection, "images", source, rejects.add,
                                                     "AND images.source = 'eol'")
                    summary.listed -= removed
                    summary.added -= removed
                rejects.flush()
                summary.rejected = rejects.count
                summary.reject_examples = rejects.examples
                summary.seconds = time.monotonic() - started
                connection.execute(update(IngestRun).where(IngestRun.id == run_id).values(
                    status="finished", finished_at=text("CURRENT_TIMESTAMP"), n_listed=summary.listed,
                    n_added=summary.added, n_changed=summary.changed, n_unchanged=summary.unchanged,
                    n_missing=summary.missing, n_rejected=summary.rejected))
    except KeyboardInterrupt:
        _end_run(engine, run_id, "interrupted")
        raise
    except BaseException:
        _end_run(engine, run_id, "failed")
        raise
    return summary


IMAGE_CONSTANTS = ("source", "status", "first_run_id", "last_run_id")


def _load_spilled(connection: Connection, summary: IngestSummary, results: Iterator[UnitResult],
                  fields: tuple[str, ...], rejects: RejectWriter, top_rejects: list[Reject], bar: Progress,
                  attached: list[str], *, direct: bool, metadata: Path | None) -> None:
    """Run a listing whose rows go to scratch files, copying each phase's files as soon as they are complete:
    straight into `images` on a first ingest, else (or on a duplicate identity) through the staging table."""
    raw = connection.connection.driver_connection
    for reject in top_rejects:
        rejects.add(reject)
    duplicate = False
    added = 0
    phase, files = 0, set[str]()

    def finish_phase() -> None:
        nonlocal duplicate, added
        schemas = spill.attach(raw, sorted(files), attached)
        files.clear()
        if direct and not duplicate:
            try:
                added += _copy_files(connection, summary, schemas=schemas, fields=fields, direct=True)
            except IntegrityError:
                duplicate = True  # the rows are removed below; keep listing, the staging table will need them

    for result in results:
        if result.phase != phase:
            finish_phase()
            phase = result.phase
        for reject in result.rejects:
            rejects.add(reject)
        if result.spill_file is not None:
            files.add(result.spill_file)
        summary.listed += result.n_rows
        bar.advance(1, images=result.n_rows)
    finish_phase()
    if direct and not duplicate:
        summary.added = added
        analyze_images(connection)
        return
    if direct:
        # A first ingest: every row of this source is this run's.
        connection.execute(text("DELETE FROM images WHERE source = :s"), {"s": summary.source})
    load_staged(connection, summary, functools.partial(_copy_files, schemas=attached, fields=fields, direct=False),
                 rejects, metadata)


def _copy_files(connection: Connection, summary: IngestSummary, *, schemas: list[str], fields: tuple[str, ...],
                direct: bool) -> int:
    """Copy the rows of attached scratch files into `images` (`direct`) or the staging table."""
    columns = ", ".join(f'"{c}"' for c in fields)
    count = 0
    for schema in schemas:
        if direct:
            statement = (f"INSERT INTO images ({columns}, {', '.join(IMAGE_CONSTANTS)}) "
                         f"SELECT {columns}, ?, 'present', ?, ? FROM {schema}.{spill.SPILL_TABLE}")
            params: tuple = (summary.source, summary.run_id, summary.run_id)
        else:
            statement = (f"INSERT INTO {STAGE} (seq, {columns}) "
                         f"SELECT {spill.order_key_sql()}, {columns} FROM {schema}.{spill.SPILL_TABLE}")
            params = ()
        count += connection.exec_driver_sql(statement, params).rowcount
    return count


def _stream_into(results: Callable[[], Iterator[UnitResult]], rejects: RejectWriter, top_rejects: list[Reject],
                 bar: Progress, connection: Connection, summary: IngestSummary, *, direct: bool) -> int:
    """Run the listing and stream its rows into `images` (`direct`) or the staging table."""
    for reject in top_rejects:
        rejects.add(reject)
    rows = _stream_rows(results(), rejects, bar)
    if direct:
        constants = (summary.source, "present", summary.run_id, summary.run_id)
        return bulk.load_rows(connection, "images", (*STAGE_COLUMNS, *IMAGE_CONSTANTS),
                              (row[1:] + constants for row in rows))
    return bulk.load_rows(connection, STAGE, ("seq", *STAGE_COLUMNS), rows)


def _load_directly(connection: Connection, summary: IngestSummary, fill: Callable[[Connection, IngestSummary], int],
                   rejects: RejectWriter) -> bool:
    """First ingest of a source: rows go straight into `images`. False (and nothing kept, rejects included:
    the staging fallback lists the source again) on a duplicate source identity."""
    import sqlite3

    import psycopg

    savepoint = connection.begin_nested()
    try:
        count = fill(connection, summary)
        rejects.flush()
        savepoint.commit()
    except (IntegrityError, sqlite3.IntegrityError, psycopg.errors.IntegrityError):
        savepoint.rollback()
        rejects.reset()
        return False
    summary.listed = summary.added = count
    analyze_images(connection)
    return True


def _stream_rows(results: Iterator[UnitResult], rejects: RejectWriter, bar: Progress) -> Iterator[tuple]:
    seq = 0
    for result in results:
        for reject in result.rejects:
            rejects.add(reject)
        for row in result.rows:
            seq += 1
            yield (seq, *row)
        bar.advance(1, images=len(result.rows))
