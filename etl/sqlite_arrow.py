"""A SQLite query's rows as an Arrow table, read in a child process through the ADBC SQLite driver.

Why a driver: it steps the query and builds the Arrow columns in C. Python's sqlite3 makes a tuple of objects per
row, which Arrow then takes apart again: reading the identity columns of 1M images that way cost 3.2 s of CPU,
of which SQLite's own scan was 0.5 s (issue 18: the export of 9.5M samples in under a minute).
Why a child process: the driver links its own SQLite library. Two SQLite libraries with one file open in one
process break each other's POSIX locks (closing one library's descriptor drops the locks the other holds), and
`tol demo` failed with 'disk I/O error' on the next connection after an export that read in-process. The child
opens the file read-only and sends the table back as an Arrow IPC stream on its standard output; it never loads
Python's sqlite3.

The driver types each column from the values in its first batch of rows, and fails on a later value that does
not fit (a text after a first batch of NULLs, typed int64). So the child puts one row of the wanted types first
(`SELECT 1, '', 0 … UNION ALL SELECT 0, * FROM (query)`, the leading column marking it) and drops it: batches
then stay small (`BATCH_ROWS`), streamed to the parent as they come, and no text column of one batch nears
Arrow's 2 GB limit of 32-bit offsets (36-byte ids would reach it at 60M images in a single batch).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from etl.errors import EnvironmentFault

if TYPE_CHECKING:
    import pyarrow as pa

MMAP_BYTES = 1 << 31  # the first 2 GB of the file read through a memory map, not a read call per page
BATCH_ROWS_OPTION = "adbc.sqlite.query.batch_rows"
BATCH_ROWS = 1 << 20  # rows per batch read and streamed
LITERALS = {"int64": "0", "string": "''"}  # a value of each type the reader can be asked for


def read(path: Path, sql: str, schema: pa.Schema) -> pa.Table:
    """The rows of `sql` on the SQLite file `path`, as a table of `schema` (in the query's column order). A file or
    query the child cannot read raises EnvironmentFault with the child's one-line reason."""
    import pyarrow as pa

    unknown = [str(field.type) for field in schema if str(field.type) not in LITERALS]
    if unknown:
        raise ValueError(f"etl.sqlite_arrow reads {', '.join(LITERALS)} columns, not {unknown[0]}")
    from etl.db import SQLITE_BUSY_TIMEOUT_MS  # the child does not import it (nor SQLAlchemy with it)

    # A writer's transaction may hold the file briefly: the child waits for it as every catalog connection does.
    command = [sys.executable, "-m", __name__, str(path), str(SQLITE_BUSY_TIMEOUT_MS),
               *(str(field.type) for field in schema)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        child.stdin.write(sql.encode())
        child.stdin.close()
        try:
            table = pa.ipc.open_stream(child.stdout).read_all()
        except pa.ArrowInvalid:
            table = None  # the child failed before its stream began: its message says why
        errors = child.stderr.read().decode(errors="replace").strip()
        if child.wait() != 0 or table is None:
            reason = errors.splitlines()[-1] if errors else f"exit code {child.returncode}"
            raise EnvironmentFault(f"could not read the catalog {path}: {reason}")
    return table.rename_columns(schema.names)


def _child(path: str, busy_timeout_ms: int, types: list[str], sql: str) -> None:
    """Run `sql` on `path` read-only and write its rows, with columns of `types`, to standard output as one Arrow
    IPC stream, batch by batch."""
    import adbc_driver_sqlite.dbapi as adbc_sqlite  # type: ignore[import-untyped]
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = pa.schema([(f"c{i}", pa.type_for_alias(name)) for i, name in enumerate(types)])
    typed = ", ".join(f"{LITERALS[name]} AS c{i}" for i, name in enumerate(types))
    wrapped = f"SELECT 1 AS typed_row, {typed} UNION ALL SELECT 0, * FROM ({sql})"
    with adbc_sqlite.connect(f"{Path(path).resolve().as_uri()}?mode=ro") as connection, \
            connection.cursor() as cursor:
        for pragma in (f"PRAGMA busy_timeout = {busy_timeout_ms}", f"PRAGMA mmap_size = {MMAP_BYTES}"):
            cursor.execute(pragma)
            cursor.fetchall()
        cursor.adbc_statement.set_options(**{BATCH_ROWS_OPTION: str(BATCH_ROWS)})
        cursor.execute(wrapped)
        with pa.ipc.new_stream(sys.stdout.buffer, schema) as stream:
            for batch in cursor.fetch_record_batch():
                rows = batch.filter(pc.equal(batch.column(0), 0))
                stream.write_batch(pa.record_batch(
                    [column.cast(field.type) for column, field in zip(rows.columns[1:], schema, strict=True)],
                    schema=schema))


def main() -> int:
    """The child: `python -m etl.sqlite_arrow FILE BUSY_TIMEOUT_MS TYPE…` (a column's Arrow type each), the query
    on standard input."""
    try:
        _child(sys.argv[1], int(sys.argv[2]), sys.argv[3:], sys.stdin.read())
    except Exception as error:
        print(f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
