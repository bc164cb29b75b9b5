"""The reference files of the taxonomy stage: each read into its `ref_*` table, replacing the previous load.

A source's own metadata file (BIOSCAN's) is loaded by its source module, through the registry.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from sqlalchemy import delete, insert, text
from sqlalchemy.engine import Connection, Engine

from etl import bulk, sources
from etl.errors import TolError
from etl.models import ReferenceResource
from etl.progress import Progress
from etl.sources.common import RowReject, record_row_rejects, sha256_file

csv.field_size_limit(1 << 24)


class BadRow(ValueError):
    """A row that cannot be read; its message is the reason (without the row's values, so reasons count up)."""


Row = tuple | RowReject  # what a reader yields: a row for the table, or a rejected line


class _Tap:
    """Iterate a text file's lines, remembering the last one read (the raw text of a rejected row)."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle, self.last = handle, ""

    def __iter__(self) -> _Tap:
        return self

    def __next__(self) -> str:
        self.last = next(self.handle)
        return self.last


def read_table(path: Path, required: tuple[str, ...], convert: Callable[[int, dict[str, str]], tuple],
               delimiter: str = ",", quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL) -> Iterator[Row]:
    """Rows of a CSV/TSV file (UTF-8) through `convert(line, row)`; a row with the wrong number of fields, or
    one `convert` refuses with BadRow, is yielded as a RowReject. A header without `required` fails the file."""
    with open(path, encoding="utf-8", newline="") as handle:
        tap = _Tap(handle)
        reader = csv.DictReader(tap, delimiter=delimiter, quoting=quoting)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise TolError(f"{path}: header has no column {missing[0]!r}")
        for row in reader:
            line = reader.line_num
            if None in row:
                yield RowReject(line, "more fields than the header", tap.last)
            elif any(value is None for value in row.values()):
                yield RowReject(line, "fewer fields than the header", tap.last)
            else:
                try:
                    yield convert(line, row)
                except BadRow as exc:
                    yield RowReject(line, str(exc), tap.last)


def _whole_number(value: str, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadRow(f"{column} is not a whole number") from None


def _optional_int(value: str, column: str) -> int | None:
    return _whole_number(value, column) if value.strip() else None


def _rows_eol_taxa(path: Path) -> Iterator[Row]:
    # DH is a TSV with stray quotes in names: read it with quoting off (the old code did not; #20).
    def convert(line: int, row: dict[str, str]) -> tuple:
        if not row["taxonID"]:
            raise BadRow("taxonID is empty")
        return (line, row["taxonID"], row["parentNameUsageID"], row["taxonRank"].lower(), row["canonicalName"],
                _optional_int(row["eolID"], "eolID"))

    yield from read_table(path, ("taxonID", "parentNameUsageID", "taxonRank", "canonicalName", "eolID"), convert,
                          delimiter="\t", quoting=csv.QUOTE_NONE)


SCRAPED_HEADER = ("page_id", "scientific_name")


def _rows_eol_scraped(path: Path) -> Iterator[Row]:
    """scraped_page_ids.csv as the original writes it (`f"{page_id},{name}"`, no quoting: the name is the rest
    of the line after the first comma, commas of authorities included), or quoted as a CSV writer does."""
    with open(path, encoding="utf-8", newline="") as handle:
        header = next(csv.reader([handle.readline()]), [])
        if tuple(cell.strip() for cell in header) != SCRAPED_HEADER:
            raise TolError(f"{path}: header is not {','.join(SCRAPED_HEADER)}")
        for line, raw in enumerate(handle, start=2):
            text = raw.rstrip("\r\n")
            if not text.strip():
                continue
            page, comma, name = text.partition(",")
            name = name.strip()
            if len(name) >= 2 and name[0] == name[-1] == '"':
                name = next(csv.reader([name]))[0]
            try:
                if not comma:
                    raise BadRow("no comma after the page_id")
                page_id = _whole_number(page.strip().strip('"'), "page_id")
                if not name:
                    raise BadRow("scientific_name is empty")
            except BadRow as exc:
                yield RowReject(line, str(exc), raw)
                continue
            yield line, page_id, name


def _rows_eol_vernaculars(path: Path) -> Iterator[Row]:
    def convert(line: int, row: dict[str, str]) -> tuple:
        return (line, _optional_int(row.get("page_id") or "", "page_id"), row["canonical_form"],
                row["vernacular_string"], row["language_code"], 1 if row["is_preferred_by_eol"] else 0)

    yield from read_table(path, ("canonical_form", "vernacular_string", "language_code", "is_preferred_by_eol"),
                          convert)


ITIS_RANKS = ("Kingdom", "Phylum", "Class", "Order", "Family", "Genus", "Species")


def _rows_itis(path: Path) -> Iterator[Row]:
    def convert(line: int, row: dict[str, str]) -> tuple:
        if not row["Species"].strip():
            raise BadRow("Species is empty")
        return (line, *(row[c] for c in ITIS_RANKS), row["terminal_vernacular"], row["terminal_vernacular_lang"])

    yield from read_table(path, (*ITIS_RANKS, "terminal_vernacular", "terminal_vernacular_lang"), convert)


INAT_COLUMNS = ("kingdom", "phylum", "class", "order", "family", "genus", "specificEpithet", "scientificName",
                "taxonRank")


def _rows_inat_taxa(path: Path) -> Iterator[Row]:
    seen: set[int] = set()

    def convert(line: int, row: dict[str, str]) -> tuple:
        taxon = _whole_number(row["id"], "id")
        if taxon in seen:
            raise BadRow("id already seen (first row wins)")
        seen.add(taxon)
        return (taxon, *(row[c] for c in INAT_COLUMNS))

    yield from read_table(path, ("id", *INAT_COLUMNS), convert)


def _rows_inat_vernaculars(path: Path) -> Iterator[Row]:
    def convert(line: int, row: dict[str, str]) -> tuple:
        return line, _whole_number(row["id"], "id"), row["vernacularName"]

    yield from read_table(path, ("id", "vernacularName"), convert)


def _rows_resolved(path: Path) -> Iterator[Row]:
    with open(path, encoding="utf-8") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                outer = json.loads(raw)
                (name, inner), = outer.items()
                (ranks,) = inner.values()
                values = tuple(str(ranks.get(r) or "") for r in ("kingdom", "phylum", "class", "order", "family"))
            except json.JSONDecodeError:
                yield RowReject(line, "not valid JSON", raw)
                continue
            except (ValueError, AttributeError):
                yield RowReject(line, "expected {name: {source: {kingdom: …}}}", raw)
                continue
            yield (line, name, *values)


@dataclass(frozen=True)
class Resource:
    """One reference file: the setting naming it, its table and columns, and its row reader."""

    name: str
    setting: str
    table: str
    columns: tuple[str, ...]
    rows: Callable[[Path], Iterator[Row]]


RESOURCES: tuple[Resource, ...] = (
    Resource("eol_taxa", "eol_taxon_tab", "ref_eol_taxa",
             ("row_no", "taxon_id", "parent_taxon_id", "rank", "canonical_name", "page_id"), _rows_eol_taxa),
    Resource("eol_scraped", "eol_scraped_page_ids", "ref_eol_scraped", ("row_no", "page_id", "scientific_name"),
             _rows_eol_scraped),
    Resource("eol_vernaculars", "eol_vernacular", "ref_eol_vernaculars",
             ("row_no", "page_id", "canonical_form", "vernacular", "language", "preferred"), _rows_eol_vernaculars),
    Resource("itis_chains", "itis_chains", "ref_itis_chains",
             ("row_no", "kingdom", "phylum", "class", "order", "family", "genus", "species", "vernacular",
              "vernacular_lang"), _rows_itis),
    Resource("inat_taxa", "inat_taxa", "ref_inat_taxa",
             ("id", "kingdom", "phylum", "class", "order", "family", "genus", "specific_epithet",
              "scientific_name", "taxon_rank"), _rows_inat_taxa),
    Resource("inat_vernaculars", "inat_vernacular", "ref_inat_vernaculars", ("row_no", "taxon_id", "vernacular"),
             _rows_inat_vernaculars),
    Resource("resolver", "resolver_output", "ref_resolved",
             ("row_no", "name", "kingdom", "phylum", "class", "order", "family"), _rows_resolved),
)


@dataclass
class LoadResult:
    """What `load` did with one resource: rows loaded, and rows rejected per reason."""

    name: str
    path: str | None
    rows: int = 0
    status: str = "loaded"
    rejects: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """What `tol taxa load` prints for this resource: one line, then one per reason rows were rejected."""
        detail = f"{self.rows:,} rows from {self.path}" if self.status == "loaded" else self.status
        if self.rejects:
            detail += f", {sum(self.rejects.values()):,} rejected (see ref_rejects)"
        return [f"{self.name:<18} {detail}",
                *(f"{'':<18}   {count:,} rejected: {reason}" for reason, count in sorted(self.rejects.items()))]


# A file fails as a whole when more than this many of its rows, and more than the percent setting, are bad.
REJECT_FLOOR = 10


def check_rejects(path: Path, rows: int, rejects: list[RowReject], percent: int) -> None:
    """Fail the file `path` as a whole (TolError naming its first bad row) when more than `REJECT_FLOOR` and
    more than `percent` percent of its rows were rejected."""
    total = rows + len(rejects)
    if len(rejects) > REJECT_FLOOR and len(rejects) * 100 > percent * total:
        first = rejects[0]
        raise TolError(f"{path}: {len(rejects)} of {total} rows malformed (more than reference_reject_percent "
                       f"= {percent}%); first at line {first.line_no}: {first.reason}")


def _load_resource(connection: Connection, resource: Resource, path: Path, percent: int) -> LoadResult:
    rejects: list[RowReject] = []
    where = [1]

    def good_rows() -> Iterator[tuple]:
        for row in resource.rows(path):
            if isinstance(row, RowReject):
                rejects.append(row)
            else:
                where[0] = row[0]
                yield row

    connection.exec_driver_sql(f"DELETE FROM {resource.table}")
    try:
        count = bulk.load_rows(connection, resource.table, resource.columns, good_rows())
    except UnicodeDecodeError as exc:
        raise TolError(f"{path}: not UTF-8 text after row {where[0]} ({exc.reason})") from None
    check_rejects(path, count, rejects, percent)
    record_row_rejects(connection, resource.name, rejects)
    _record_resource(connection, resource.name, path, count)
    return LoadResult(resource.name, str(path), count, rejects=dict(Counter(r.reason for r in rejects)))


def load(engine: Engine, paths: Mapping[str, Path | None], reject_percent: int = 5, *,
         progress: bool = False) -> list[LoadResult]:
    """Load every reference file given in `paths` (setting name → path), and the metadata file of each source
    that has one when `paths` names it; a missing file is reported, not fatal. Malformed rows go to
    `ref_rejects`; a file with more than `reject_percent` percent of them fails as a whole (TolError)."""
    results = []
    present = [p for p in paths.values() if p is not None and p.is_file()]
    # Measured in bytes of the files, so the rate and ETA weigh the DH's taxon.tab as the time it takes.
    bar = Progress(sum(p.stat().st_size for p in present), "B", "taxa load", enabled=progress)
    for resource in RESOURCES:
        path = paths.get(resource.setting)
        if path is None:
            results.append(LoadResult(resource.name, None, status=f"skipped: {resource.setting} not set"))
            continue
        if not path.is_file():
            results.append(LoadResult(resource.name, str(path), status="skipped: file not found"))
            continue
        with engine.begin() as connection:
            results.append(_load_resource(connection, resource, path, reject_percent))
        bar.advance(path.stat().st_size)
    for metadata in (source.METADATA for source in sources.SOURCES if source.METADATA is not None):
        name, path = metadata.setting.name, paths.get(metadata.setting.name)
        if path is None:
            continue
        if path.is_file():
            with engine.begin() as connection:
                count = metadata.load(connection, path)
                rejected = [RowReject(*row) for row in connection.execute(text(
                    "SELECT line_no, reason, raw FROM ref_rejects WHERE resource = :r ORDER BY line_no"),
                    {"r": name})]
                check_rejects(path, count, rejected, reject_percent)
                _record_resource(connection, name, path, count)
            results.append(LoadResult(name, str(path), count, rejects=dict(Counter(r.reason for r in rejected))))
            bar.advance(path.stat().st_size)
        else:
            results.append(LoadResult(name, str(path), status="skipped: file not found"))
    bar.close()
    return results


def _record_resource(connection: Connection, name: str, path: Path, count: int) -> None:
    connection.execute(delete(ReferenceResource).where(ReferenceResource.name == name))
    connection.execute(insert(ReferenceResource).values(name=name, path=str(path), n_rows=count,
                                                        sha256=sha256_file(path)))


# The settings `load` reads: the sources' metadata files and the reference files.
LOAD_SETTINGS: tuple[str, ...] = (
    *(source.METADATA.setting.name for source in sources.SOURCES if source.METADATA is not None),
    *(resource.setting for resource in RESOURCES))
