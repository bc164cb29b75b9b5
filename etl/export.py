"""The export stage: one row per written sample of a plan, from the `plan_samples` view, as CSV or Parquet.

The columns are those of the published catalog.csv, plus the shard and the position in it; or, with
`what="licenses"`, those of the published licenses.csv (each sample's license, owner and URLs, `not provided`
for a text its collection did not give). Rows stream from the database in batches (a server-side cursor on
PostgreSQL), so memory does not grow with the plan; they are read through the driver's own cursor, as plain
tuples, and each batch becomes Arrow columns at once: at millions of rows, SQLAlchemy's row objects and
per-value conversions were most of the export's time.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine

from etl.atomic import atomic_path, atomic_write
from etl.errors import TolError
from etl.plan import get_plan
from etl.progress import Progress
from etl.resources import named_queries

COLUMNS = ("split", "treeoflife_id", "eol_content_id", "eol_page_id", "bioscan_part", "bioscan_filename",
           "inat21_filename", "inat21_cls_name", "inat21_cls_num", "kingdom", "phylum", "class", "order",
           "family", "genus", "species", "common", "shard", "position")
INTEGER_COLUMNS = {"eol_content_id", "eol_page_id", "bioscan_part", "inat21_cls_num", "position"}
BATCH = 50_000
WHAT = ("catalog", "licenses")
LICENSE_COLUMNS = ("treeoflife_id", "eol_content_id", "eol_page_id", "md5", "medium_source_url",
                   "eol_full_size_copy_url", "license_name", "copyright_owner", "license_link", "title")
LICENSE_INTEGER_COLUMNS = {"eol_content_id", "eol_page_id"}
NOT_PROVIDED = "not provided"


def _query() -> str:
    selected = ", ".join('shard_path AS shard' if c == "shard" else f'"{c}"' for c in COLUMNS)
    return (f"SELECT {selected} FROM plan_samples WHERE plan_name = :plan AND written = 1 "
            "ORDER BY shard_index, position")


def _filled(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """licenses.csv rows with `not provided` for every empty text (ids stay empty)."""
    return [tuple(value if index in (1, 2) or value not in (None, "") else NOT_PROVIDED
                  for index, value in enumerate(row)) for row in rows]


def _batches(connection: Connection, query: str, plan_name: str) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows of `query` (one `:plan` parameter) in batches of `BATCH` tuples, read through the driver's
    cursor."""
    raw: Any = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        with raw.cursor() as setting:
            # A millions-row export is index lookups per row: compiling them (JIT) cost 20 % at 1M rows.
            setting.execute("SET LOCAL jit = off")
        cursor = raw.cursor(name="tol_export")  # server-side: rows stream, nothing is held client-side
        cursor.itersize = BATCH
        cursor.execute(query.replace(":plan", "%(plan)s"), {"plan": plan_name})
    else:
        cursor = raw.cursor()
        cursor.execute(query, {"plan": plan_name})
    try:
        while rows := cursor.fetchmany(BATCH):
            yield rows
    finally:
        cursor.close()


def export(engine: Engine, plan_name: str, fmt: str, out: Path, *, progress: bool = False,
           what: str = "catalog") -> int:
    """Write the plan's catalog (or with `what="licenses"` its licenses.csv) to `out` (atomically); returns the
    number of rows. With `progress`, show the rows written on stderr (see etl.progress)."""
    plan = get_plan(engine, plan_name)
    if fmt not in ("csv", "parquet"):
        raise TolError(f"--format must be csv or parquet, not {fmt!r}")
    if what not in WHAT:
        raise TolError(f"--what must be one of {', '.join(WHAT)}, not {what!r}")
    licenses = what == "licenses"
    columns = LICENSE_COLUMNS if licenses else COLUMNS
    integers = LICENSE_INTEGER_COLUMNS if licenses else INTEGER_COLUMNS
    query = named_queries("sql/export.sql")["licenses"] if licenses else _query()
    count = 0
    with engine.connect() as connection, \
            Progress(plan.n_samples, "rows", f"export {plan.name}", enabled=progress) as bar:
        batches = (_filled(rows) if licenses else rows for rows in _batches(connection, query, plan.name))
        if fmt == "csv":
            with atomic_write(out, "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(columns)
                for rows in batches:
                    writer.writerows(("" if v is None else v for v in row) for row in rows)
                    count += len(rows)
                    bar.advance(len(rows))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pa.schema([(c, pa.int64() if c in integers else pa.string()) for c in columns])
            with atomic_path(out) as partial, pq.ParquetWriter(partial, schema) as writer:
                for rows in batches:
                    values = zip(*rows, strict=True)
                    writer.write_batch(pa.record_batch([pa.array(column, type=field.type)
                                                        for column, field in zip(values, schema, strict=True)],
                                                       schema=schema))
                    count += len(rows)
                    bar.advance(len(rows))
    return count
