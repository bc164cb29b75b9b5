"""`tol catalog compare`: a written plan against a published catalog.csv, per column and per source.

Rows meet by treeoflife_id. Ids, split membership and source ids must agree exactly; a name column may differ
where our naming rules deliberately differ from the old scripts (`DELIBERATE`, each kind citing its row of
docs/differences.md). Every other difference, and every id on one side only, counts against `--strict`; a published
image that is not catalogued here at all (not downloaded) is listed apart, as what could not be reproduced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl.plan import get_plan
from etl.release.inputs import CATALOG_COLUMNS, NAME_COLUMNS, catalog_rows, entry_of_catalog_row, parse_id

COMPARED = CATALOG_COLUMNS[2:]  # after split and treeoflife_id, which are compared as membership
SOURCE_COLUMNS = CATALOG_COLUMNS[2:9]
EXAMPLES = 3
# (column or "*" for every name column, kind) → the row of docs/differences.md that makes it deliberate.
DELIBERATE: dict[tuple[str, str], str] = {
    ("*", "case only"): "16 (display case of codes and lone names)",
    ("*", "filled here"): "14 (the upgrade fills ranks the old names left empty)",
    ("*", "emptied here"): "27 (placeholders are empty), 29 (one kingdom vocabulary)",
    ("kingdom", "renamed"): "29 (one kingdom vocabulary)",
    ("common", "renamed"): "9, 10 (common names: first row wins, kept as written), 15",
}


class Difference(NamedTuple):
    """One value that differs: the id, what we wrote, what was published."""

    treeoflife_id: str
    ours: str
    published: str


def difference_kind(column: str, ours: str, published: str) -> str:
    """What kind of difference two unequal values of `column` are (see `DELIBERATE`).

    >>> difference_kind("genus", "Pica", "pica"), difference_kind("family", "Corvidae", "")
    ('case only', 'filled here')
    """
    if column not in NAME_COLUMNS:
        return "differs"
    if ours.lower() == published.lower():
        return "case only"
    if not published:
        return "filled here"
    if not ours:
        return "emptied here"
    return "renamed"


def deliberate(column: str, kind: str) -> str | None:
    """The differences.md row that makes a `kind` difference of `column` deliberate, or None."""
    return DELIBERATE.get((column, kind)) or (DELIBERATE.get(("*", kind)) if column in NAME_COLUMNS else None)


def text_value(value: object) -> str:
    """A catalog value as the CSV writes it: None is empty, numbers in decimal."""
    return "" if value is None else str(value).strip()


@dataclass
class ColumnAgreement:
    """Agreement of one column for one source."""

    agree: int = 0
    differences: dict[str, list[Difference]] = field(default_factory=lambda: defaultdict(list))

    @property
    def differ(self) -> int:
        """How many rows differ in this column."""
        return sum(len(v) for v in self.differences.values())


@dataclass
class Comparison:
    """A plan against a published catalog."""

    plan: str
    split: str
    published: str
    written: int = 0
    published_rows: int = 0
    unreadable_rows: int = 0
    both: int = 0
    only_ours: list[str] = field(default_factory=list)
    only_published: list[str] = field(default_factory=list)
    other_split: list[tuple[str, str]] = field(default_factory=list)  # (id, the published split)
    # Published, but no such image is catalogued here (not downloaded: the release could not republish some):
    # what could not be reproduced, listed apart and not a difference of ours.
    not_catalogued: list[str] = field(default_factory=list)
    columns: dict[tuple[str, str], ColumnAgreement] = field(default_factory=lambda: defaultdict(ColumnAgreement))

    def undocumented(self) -> int:
        """Rows and values that differ beyond the documented deliberate differences."""
        count = len(self.only_ours) + len(self.only_published) + len(self.other_split)
        for (column, _), agreement in self.columns.items():
            count += sum(len(v) for kind, v in agreement.differences.items() if deliberate(column, kind) is None)
        return count

    def lines(self) -> list[str]:
        """What `tol catalog compare` prints: membership, a table per column and source, then the differences
        by kind with examples."""
        out = [f"plan {self.plan} (split {self.split}, {self.written:,} written samples) against {self.published} "
               f"({self.published_rows:,} rows of split {self.split}, {self.unreadable_rows:,} unreadable rows)",
               f"treeoflife_id: {self.both:,} in both ({share(self.both, self.both + len(self.only_ours))} of ours), "
               f"{len(self.only_ours):,} only in the plan, {len(self.only_published):,} only published, "
               f"{len(self.not_catalogued):,} published but not in this catalog (not downloaded)",
               f"split: {self.both:,} agree, {len(self.other_split):,} published in another split"]
        out += [f"  only in the plan: {tol_id}" for tol_id in self.only_ours[:EXAMPLES]]
        out += [f"  only published: {tol_id}" for tol_id in self.only_published[:EXAMPLES]]
        out += [f"  not downloaded: {tol_id}" for tol_id in self.not_catalogued[:EXAMPLES]]
        out += [f"  other split: {tol_id} published in {split}" for tol_id, split in self.other_split[:EXAMPLES]]
        out.append(f"{'column':<18} {'source':<8} {'agree':>8} {'differ':>8} {'agree %':>8}")
        for (column, source), agreement in sorted(self.columns.items(), key=lambda kv: (
                COMPARED.index(kv[0][0]), kv[0][1])):
            total = agreement.agree + agreement.differ
            out.append(f"{column:<18} {source:<8} {agreement.agree:>8,} {agreement.differ:>8,} "
                       f"{share(agreement.agree, total):>8}")
        for (column, source), agreement in sorted(self.columns.items(), key=lambda kv: (
                COMPARED.index(kv[0][0]), kv[0][1])):
            for kind, examples in sorted(agreement.differences.items()):
                why = deliberate(column, kind)
                note = f"deliberate: docs/differences.md #{why}" if why else "NOT a documented difference"
                out.append(f"{column} / {source}: {len(examples):,} {kind} ({note})")
                out += [f"    {d.treeoflife_id}: ours {d.ours!r}, published {d.published!r}"
                        for d in examples[:EXAMPLES]]
        out.append(f"differences beyond the documented ones: {self.undocumented():,}")
        return out


def share(part: int, whole: int) -> str:
    """`part` of `whole` as a percentage with one decimal, `-` for nothing."""
    return f"{100 * part / whole:.1f} %" if whole else "-"


def _published(path: Path, split: str) -> tuple[dict[str, dict[str, str]], dict[str, set[str]], int]:
    """Rows of `split` by id, every id's published splits, and how many rows could not be read."""
    rows: dict[str, dict[str, str]] = {}
    splits: dict[str, set[str]] = defaultdict(set)
    unreadable = 0
    for _, row in catalog_rows(path):
        tol_id = parse_id(row.get("treeoflife_id"))
        if tol_id is None or isinstance(entry_of_catalog_row(row), str):
            unreadable += 1
            continue
        splits[tol_id].add((row.get("split") or "").strip())
        if (row.get("split") or "").strip() == split:
            rows.setdefault(tol_id, row)
    return rows, splits, unreadable


def _ours(engine: Engine, plan: str) -> Iterable[dict]:
    columns = ", ".join(f'"{c}"' for c in ("treeoflife_id", "source", *COMPARED))
    with engine.connect() as connection:
        for row in connection.execute(text(
                f"SELECT {columns} FROM plan_samples WHERE plan_name = :p AND written = 1 ORDER BY treeoflife_id"),
                {"p": plan}):
            yield dict(row._mapping)


def compare(engine: Engine, plan_name: str, published: Path) -> Comparison:
    """Compare the written samples of plan `plan_name` with the rows of its split in `published`."""
    plan = get_plan(engine, plan_name)
    rows, splits, unreadable = _published(published, plan.split)
    result = Comparison(plan.name, plan.split, str(published), published_rows=len(rows), unreadable_rows=unreadable)
    seen: set[str] = set()
    for ours in _ours(engine, plan.name):
        result.written += 1
        tol_id = ours["treeoflife_id"]
        seen.add(tol_id)
        theirs = rows.get(tol_id)
        if theirs is None:
            if splits.get(tol_id):
                result.other_split.append((tol_id, "+".join(sorted(splits[tol_id]))))
            else:
                result.only_ours.append(tol_id)
            continue
        result.both += 1
        for column in COMPARED:
            mine, published_value = text_value(ours[column]), text_value(theirs.get(column))
            agreement = result.columns[(column, ours["source"])]
            if mine == published_value:
                agreement.agree += 1
            else:
                agreement.differences[difference_kind(column, mine, published_value)].append(
                    Difference(tol_id, mine, published_value))
    unseen = sorted(tol_id for tol_id in rows if tol_id not in seen)
    present: set[str] = set()
    with engine.connect() as connection:
        for start in range(0, len(unseen), 500):
            chunk = unseen[start:start + 500]
            present.update(connection.execute(text(
                f"SELECT id FROM images WHERE status = 'present' AND id IN "
                f"({', '.join(f':i{n}' for n in range(len(chunk)))})"),
                {f"i{n}": value for n, value in enumerate(chunk)}).scalars())
    result.only_published = [tol_id for tol_id in unseen if tol_id in present]
    result.not_catalogued = [tol_id for tol_id in unseen if tol_id not in present]
    return result
