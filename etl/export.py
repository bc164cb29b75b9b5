"""The export stage: one row per written sample of a plan, from the `plan_samples` view, as CSV or Parquet.

The columns are those of the published catalog.csv, plus the shard and the position in it. Rows stream from
the database in batches, so memory does not grow with the plan.
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

COLUMNS = ("split", "treeoflife_id", "eol_content_id", "eol_page_id", "bioscan_part", "bioscan_filename",
           "inat21_filename", "inat21_cls_name", "inat21_cls_num", "kingdom", "phylum", "class", "order",
           "family", "genus", "species", "common", "shard", "position")
INTEGER_COLUMNS = {"eol_content_id", "eol_page_id", "bioscan_part", "inat21_cls_num", "position"}
BATCH = 50_000


def _query() -> str:
    selected = ", ".join('shard_path AS shard' if c == "shard" else f'"{c}"' for c in COLUMNS)
    return (f"SELECT {selected} FROM plan_samples WHERE plan_name = :plan AND written = 1 "
            "ORDER BY shard_index, position")


def export(engine: Engine, plan_name: str, fmt: str, out: Path, *, progress: bool = False) -> int:
    """Write the plan's catalog to `out` (atomically); returns the number of rows. With `progress`, show the
    rows written on stderr (see etl.progress)."""
    plan = get_plan(engine, plan_name)
    if fmt not in ("csv", "parquet"):
        raise TolError(f"--format must be csv or parquet, not {fmt!r}")
    count = 0
    with engine.connect() as connection, \
            Progress(plan.n_samples, "rows", f"export {plan.name}", enabled=progress) as bar:
        result = connection.execution_options(stream_results=True, yield_per=BATCH).execute(
            text(_query()), {"plan": plan.name})
        if fmt == "csv":
            with atomic_write(out, "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(COLUMNS)
                for rows in result.partitions(BATCH):
                    writer.writerows(("" if v is None else v for v in row) for row in rows)
                    count += len(rows)
                    bar.advance(len(rows))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pa.schema([(c, pa.int64() if c in INTEGER_COLUMNS else pa.string()) for c in COLUMNS])
            with atomic_path(out) as partial, pq.ParquetWriter(partial, schema) as writer:
                for rows in result.partitions(BATCH):
                    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in COLUMNS]
                    writer.write_table(pa.table([pa.array(list(values), type=schema.field(i).type)
                                                 for i, values in enumerate(columns)], schema=schema))
                    count += len(rows)
                    bar.advance(len(rows))
    return count
