"""The reference files of the taxonomy stage: each read into its `ref_*` table, replacing the previous load.

A source's own metadata file (BIOSCAN's) is loaded by its source module, through the registry.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import delete, insert
from sqlalchemy.engine import Connection, Engine

from etl import bulk, sources
from etl.errors import TolError
from etl.models import ReferenceResource
from etl.sources.common import sha256_file

csv.field_size_limit(1 << 24)


def read_table(path: Path, required: tuple[str, ...], delimiter: str = ",",
               quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) of a CSV/TSV file as UTF-8, checking the header has `required` columns."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter, quoting=quoting)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise TolError(f"{path}: header has no column {missing[0]!r}")
        for row in reader:
            if None in row:
                raise TolError(f"{path} line {reader.line_num}: more fields than the header")
            yield reader.line_num, row


def _int_or_error(value: str, path: Path, line: int, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise TolError(f"{path} line {line}: {column} is not a whole number: {value!r}") from None


def _optional_int(value: str, path: Path, line: int, column: str) -> int | None:
    return _int_or_error(value, path, line, column) if value.strip() else None


def _rows_eol_taxa(path: Path) -> Iterator[tuple]:
    # DH is a TSV with stray quotes in names: read it with quoting off (the old code did not; #20).
    for line, row in read_table(path, ("taxonID", "parentNameUsageID", "taxonRank", "canonicalName", "eolID"),
                                delimiter="\t", quoting=csv.QUOTE_NONE):
        yield (line, row["taxonID"], row["parentNameUsageID"] or "", (row["taxonRank"] or "").lower(),
               row["canonicalName"] or "", _optional_int(row["eolID"] or "", path, line, "eolID"))


def _rows_eol_scraped(path: Path) -> Iterator[tuple]:
    for line, row in read_table(path, ("page_id", "scientific_name")):
        yield line, _int_or_error(row["page_id"], path, line, "page_id"), row["scientific_name"] or ""


def _rows_eol_vernaculars(path: Path) -> Iterator[tuple]:
    for line, row in read_table(path, ("canonical_form", "vernacular_string", "language_code",
                                       "is_preferred_by_eol")):
        yield (line, _optional_int(row.get("page_id") or "", path, line, "page_id"), row["canonical_form"] or "",
               row["vernacular_string"] or "", row["language_code"] or "", 1 if row["is_preferred_by_eol"] else 0)


def _rows_itis(path: Path) -> Iterator[tuple]:
    columns = ("Kingdom", "Phylum", "Class", "Order", "Family", "Genus", "Species")
    for line, row in read_table(path, (*columns, "terminal_vernacular", "terminal_vernacular_lang")):
        yield (line, *(row[c] or "" for c in columns), row["terminal_vernacular"] or "",
               row["terminal_vernacular_lang"] or "")


def _rows_inat_taxa(path: Path) -> Iterator[tuple]:
    columns = ("kingdom", "phylum", "class", "order", "family", "genus", "specificEpithet", "scientificName",
               "taxonRank")
    for line, row in read_table(path, ("id", *columns)):
        yield (_int_or_error(row["id"], path, line, "id"), *(row[c] or "" for c in columns))


def _rows_inat_vernaculars(path: Path) -> Iterator[tuple]:
    for line, row in read_table(path, ("id", "vernacularName")):
        yield line, _int_or_error(row["id"], path, line, "id"), row["vernacularName"] or ""


def _rows_resolved(path: Path) -> Iterator[tuple]:
    with open(path, encoding="utf-8") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                outer = json.loads(raw)
                (name, inner), = outer.items()
                (ranks,) = inner.values()
                values = tuple(str(ranks.get(r) or "") for r in ("kingdom", "phylum", "class", "order", "family"))
            except (json.JSONDecodeError, ValueError, AttributeError):
                raise TolError(f"{path} line {line}: expected {{name: {{source: {{kingdom: …}}}}}}") from None
            yield (line, name, *values)


@dataclass(frozen=True)
class Resource:
    """One reference file: the setting naming it, its table and columns, and its row reader."""

    name: str
    setting: str
    table: str
    columns: tuple[str, ...]
    rows: Callable[[Path], Iterator[tuple]]


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
    """What `load` did with one resource."""

    name: str
    path: str | None
    rows: int = 0
    status: str = "loaded"


def load(engine: Engine, paths: Mapping[str, Path | None]) -> list[LoadResult]:
    """Load every reference file given in `paths` (setting name → path), and the metadata file of each source
    that has one when `paths` names it; a missing file is reported, not fatal."""
    results = []
    for resource in RESOURCES:
        path = paths.get(resource.setting)
        if path is None:
            results.append(LoadResult(resource.name, None, status=f"skipped: {resource.setting} not set"))
            continue
        if not path.is_file():
            results.append(LoadResult(resource.name, str(path), status="skipped: file not found"))
            continue
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DELETE FROM {resource.table}")
            count = bulk.load_rows(connection, resource.table, resource.columns, resource.rows(path))
            _record_resource(connection, resource.name, path, count)
        results.append(LoadResult(resource.name, str(path), count))
    for metadata in (source.METADATA for source in sources.SOURCES if source.METADATA is not None):
        name, path = metadata.setting.name, paths.get(metadata.setting.name)
        if path is None:
            continue
        if path.is_file():
            with engine.begin() as connection:
                count = metadata.load(connection, path)
                _record_resource(connection, name, path, count)
            results.append(LoadResult(name, str(path), count))
        else:
            results.append(LoadResult(name, str(path), status="skipped: file not found"))
    return results


def _record_resource(connection: Connection, name: str, path: Path, count: int) -> None:
    connection.execute(delete(ReferenceResource).where(ReferenceResource.name == name))
    connection.execute(insert(ReferenceResource).values(name=name, path=str(path), n_rows=count,
                                                        sha256=sha256_file(path)))


# The settings `load` reads: the sources' metadata files and the reference files.
LOAD_SETTINGS: tuple[str, ...] = (
    *(source.METADATA.setting.name for source in sources.SOURCES if source.METADATA is not None),
    *(resource.setting for resource in RESOURCES))
