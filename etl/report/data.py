"""Everything a report and a dataset card show, read from the catalog by the named queries of sql/report/.

`gather` runs each query once; the HTML page (etl/report/html.py) and the card (etl/report/card.py) only lay
out what it returns, so both state the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl.plan import Plan, get_plan
from etl.resources import named_queries
from etl.taxonomy.checks import CheckResult, check
from etl.write.queue import ShardQueue, ShardRow

QUERIES_FILE = "sql/report/report.sql"


class SplitFacts(NamedTuple):
    """The plan's split definition."""

    id: int
    name: str
    seed: int
    val_percent: float
    train_small_percent: float


class LeftOut(NamedTuple):
    """What the plan left out of its split."""

    excluded: int
    unnamed: int
    by_license: int
    licenses: str | None  # the allowed license keys (comma-separated), None when every license was taken


@dataclass
class ReportData:
    """The numbers of one plan's report and card (each list holds the rows of the query of the same name)."""

    plan: Plan
    split: SplitFacts
    settings: dict[str, Any]
    tol_version: str
    written_by_source: list[tuple[str, int]]
    written_by_split_and_source: list[tuple[str, str, int]]
    catalog_by_split_and_source: list[tuple[str, str, int, int]]
    taxa_per_rank: list[tuple[Any, ...]]
    treemap: list[tuple[str, str, str, str, str, int]]
    species_sizes: list[tuple[int, int]]
    exclusions_by_reason: list[tuple[str, str, int]]
    unnamed_by_reason: list[tuple[str, str, int]]
    image_errors_by_reason: list[tuple[str, str, int]]
    left_out: LeftOut
    license_mix: list[tuple[str, str, int]]
    sources: list[tuple[str, str, str, str | None, str | None]]
    input_files: list[tuple[str, str, str, int]]
    shards: list[ShardRow]
    checks: list[CheckResult]

    @property
    def written(self) -> int:
        """The plan's written samples."""
        return sum(count for _, count in self.written_by_source)

    @property
    def species(self) -> int:
        """Unique species among the written samples (all sources together)."""
        return next((int(row[7]) for row in self.taxa_per_rank if row[0] is None), 0)

    @property
    def done_shards(self) -> list[ShardRow]:
        """The plan's written shards, in order."""
        return [shard for shard in self.shards if shard.state == "done"]


def tol_version() -> str:
    """The installed tol's version."""
    try:
        return version("treeoflife-etl")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown"


def gather(engine: Engine, plan_name: str) -> ReportData:
    """Read every number of plan `plan_name`'s report from the catalog (a one-line error for an unknown plan)."""
    plan = get_plan(engine, plan_name)
    queries = named_queries(QUERIES_FILE)
    with engine.connect() as connection:
        def rows(name: str, **params: Any) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in connection.execute(text(queries[name]), {"plan": plan.name, **params})]

        split = SplitFacts(*rows("split_definition")[0])
        settings_row = connection.execute(text(queries["plan_settings"]), {"plan": plan.name}).mappings().one()
        left = rows("plan_left_out")[0]
        data = ReportData(
            plan=plan, split=split, settings=dict(settings_row), tol_version=tol_version(),
            written_by_source=[(s, int(n)) for s, n in rows("written_by_source")],
            written_by_split_and_source=[(sp, s, int(n)) for sp, s, n in
                                         rows("written_by_split_and_source", definition=split.id)],
            catalog_by_split_and_source=[(s, sp, int(n), int(small or 0)) for s, sp, n, small in
                                         rows("catalog_by_split_and_source", definition=split.id)],
            taxa_per_rank=sorted(rows("taxa_per_rank"), key=lambda row: (row[0] is None, row[0] or "")),
            treemap=[(*row[:5], int(row[5])) for row in rows("treemap")],  # type: ignore[misc]
            species_sizes=[(int(n), int(c)) for n, c in rows("species_sizes")],
            exclusions_by_reason=[(a, b, int(n)) for a, b, n in rows("exclusions_by_reason")],
            unnamed_by_reason=[(a, b, int(n)) for a, b, n in rows("unnamed_by_reason")],
            image_errors_by_reason=[(a, b, int(n)) for a, b, n in rows("image_errors_by_reason")],
            left_out=LeftOut(int(left[0]), int(left[1]), int(left[2]), left[3]),
            license_mix=[(s, lic, int(n)) for s, lic, n in rows("license_mix")],
            sources=rows("sources"),  # type: ignore[arg-type]
            input_files=[(name, path or "", sha or "", int(n or 0)) for name, path, sha, n in rows("input_files")],
            shards=[], checks=[])
    data.shards = ShardQueue(engine).shards(plan.id)
    data.checks = check(engine, examples=0)
    return data
