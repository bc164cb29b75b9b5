"""The export stage: one row per written sample of a plan, from the `plan_samples` view, as CSV or Parquet.

The columns are those of the published catalog.csv, plus the shard and the position in it; or, with
`what="licenses"`, those of the published licenses.csv (each sample's license, owner and URLs, `not provided`
for a text its collection did not give). Rows stream from the database in batches, so memory does not grow
with the plan.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

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
        result = connection.execution_options(stream_results=True, yield_per=BATCH).execute(
            text(query), {"plan": plan.name})
        if fmt == "csv":
            with atomic_write(out, "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(columns)
                for batch in result.partitions(BATCH):
                    written: Sequence[Sequence[Any]] = _filled(batch) if licenses else batch
                    writer.writerows(("" if v is None else v for v in row) for row in written)
                    count += len(written)
                    bar.advance(len(written))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pa.schema([(c, pa.int64() if c in integers else pa.string()) for c in columns])
            with atomic_path(out) as partial, pq.ParquetWriter(partial, schema) as writer:
                for batch in result.partitions(BATCH):
                    rows: Sequence[Sequence[Any]] = _filled(batch) if licenses else batch
                    values: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in columns]
                    writer.write_table(pa.table([pa.array(list(column), type=schema.field(i).type)
                                                 for i, column in enumerate(values)], schema=schema))
                    count += len(rows)
                    bar.advance(len(rows))
    return count
