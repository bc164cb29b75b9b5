"""Listing rows written by the listing processes into scratch SQLite files, for the SQLite catalog to copy.

Why: a SQLite catalog has one writer, and that process spent more time turning Python rows into SQL values
(about 5 µs a row) than SQLite spent storing them. The listing processes now write their rows to scratch
files in parallel, and the writer copies each file with one `INSERT … SELECT`, without a row passing
through Python (bench/ingest).

The units are cut into a few *phases* in listing order, each with its own files (one per listing process),
so the writer copies one phase while the processes list the next: SQLite cannot read a file that another
process is still appending to within the writer's one long transaction, but it can read a finished one. A
row's unit position and rowid keep the listing order across files, which decides which
of two files with the same source identity is kept.
"""

from __future__ import annotations

import operator
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etl.sources.common import STAGE_COLUMNS, UnitResult

SPILL_TABLE = "rows"
ROW_BITS = 32
# SQLite attaches at most 10 databases to one connection. Listing processes beyond this many share files,
# taking turns through SQLite's file lock.
MAX_FILES = 8
LOCK_TIMEOUT_S = 600.0

_open_files: dict[str, sqlite3.Connection] = {}


def phase_of_units(units: int, workers: int) -> list[int]:
    """The phase of each of `units` units: as many phases as keep every phase's files attachable at once.

    The first and last phases are short: nothing can be copied while the first is listed, and nothing listed
    while the last is copied, so the less they hold the more of the work overlaps.
    """
    phases = max(1, min(units, MAX_FILES // min(workers, MAX_FILES)))
    weights = [1.0] * phases
    if phases >= 3:
        weights[0] = weights[-1] = 0.25
    bounds, total, running = [], sum(weights), 0.0
    for weight in weights:
        running += weight
        bounds.append(round(units * running / total))
    phase_of, phase = [], 0
    for position in range(units):
        while position >= bounds[phase]:
            phase += 1
        phase_of.append(phase)
    return phase_of


def _scratch_connection(path: str, fields: tuple[str, ...]) -> sqlite3.Connection:
    connection = _open_files.get(path)
    if connection is None:
        connection = sqlite3.connect(path, timeout=LOCK_TIMEOUT_S, isolation_level=None)
        # A scratch file is thrown away if anything fails, so it needs no journal and no syncing.
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        columns = ", ".join(f'"{c}"' for c in fields)
        connection.execute(f"CREATE TABLE IF NOT EXISTS {SPILL_TABLE} (unit INTEGER NOT NULL, {columns})")
        _open_files[path] = connection
    return connection


def scan_to_file(scan: Callable[[Any], UnitResult], scratch_dir: str, files_per_phase: int,
                 fields: tuple[str, ...], position_phase_unit: tuple[int, int, Any]) -> UnitResult:
    """Scan one unit and append its rows (their `fields` only) to this process's scratch file for the unit's
    phase; the result keeps only the rejects, the row count, the phase and the file's path."""
    position, phase, unit = position_phase_unit
    result = scan(unit)
    if not result.rows:
        return UnitResult(rejects=result.rejects, phase=phase)
    path = os.path.join(scratch_dir, f"listing-{phase}-{os.getpid() % files_per_phase}.sqlite")
    connection = _scratch_connection(path, fields)
    rows: Any = result.rows
    if fields != STAGE_COLUMNS:
        rows = map(operator.itemgetter(*(STAGE_COLUMNS.index(field) for field in fields)), rows)
    placeholders = ", ".join("?" for _ in fields)
    connection.execute("BEGIN IMMEDIATE")
    try:
        # The position is part of the statement, not a parameter, so rows need no rebuilding to carry it.
        connection.executemany(f"INSERT INTO {SPILL_TABLE} VALUES ({int(position)}, {placeholders})", rows)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return UnitResult(rejects=result.rejects, spilled_rows=len(result.rows), spill_file=path, phase=phase)


def order_key_sql() -> str:
    """A scratch row's place in the listing, as an SQL expression: unit position, then row within it (rowids
    grow in insertion order within a file, and one unit's rows are all in one file)."""
    return f"(unit << {ROW_BITS}) + rowid"


def attach(connection: Any, files: list[str], attached: list[str]) -> list[str]:
    """Attach scratch files to the catalog's DB-API connection, adding their schema names to `attached`;
    returns the new names."""
    names = []
    for path in sorted(files):
        name = f"listing_{len(attached)}"
        connection.execute(f"ATTACH DATABASE ? AS {name}", (str(Path(path)),))
        attached.append(name)
        names.append(name)
    return names


def detach_all(connection: Any, names: list[str]) -> None:
    """Detach scratch files attached by `attach` (outside any transaction)."""
    for name in names:
        connection.execute(f"DETACH DATABASE {name}")
