"""Provenance: who owns each image and under which license, loaded from the files each collection ships.

Each source declares a `ProvenanceHook` (etl/sources/licensing.py): a citation, a dataset-level license
(BIOSCAN-1M) and/or a per-image file and its reader (EOL media manifests, iNat21 `train.json`). `load` puts a
source's records into `image_provenance` (matched to images by the source's identity columns, replacing its
previous load) and its citation and dataset license into `source_provenance`; the view `image_licenses` gives
every image's license. `license_key` turns the many spellings of a license into one key (`cc-by-nc-sa`);
text it cannot read as a license gives None, and such images are counted and listed (`unknown`), never
guessed. `parse_allowed` reads a plan's `--licenses`.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from etl import bulk, sources
from etl.errors import TolError
from etl.progress import Progress
from etl.resources import named_queries
from etl.sources.common import RowReject, record_row_rejects, sha256_file
from etl.sources.licensing import ProvenanceHook, ProvenanceRecord, provenance_of

# The license keys, most permissive first: public domain dedication and mark, then the Creative Commons family.
LICENSE_KEYS = ("cc0", "pd", "cc-by", "cc-by-sa", "cc-by-nd", "cc-by-nc", "cc-by-nc-sa", "cc-by-nc-nd",
                "all-rights-reserved")
UNKNOWN = "unknown"  # how reports and the JSON member name an image whose license is not known
QUERIES = named_queries("sql/provenance.sql")
KEPT_REJECTS = 1000  # rejected rows kept in `ref_rejects` per file (all are counted)

# Phrases → the token they stand for, applied in this order to the lower-cased license text.
_PHRASES = (
    (r"creative\s*commons", "cc"), (r"no\s+known\s+copyright\s+restrictions", "pd"),
    (r"public\s*-?\s*domain(\s+mark)?", "pd"), (r"all\s+rights\s+reserved", "arr"),
    (r"attribution", "by"), (r"non\s*-?\s*commercial", "nc"), (r"share\s*-?\s*alike", "sa"),
    (r"no\s*-?\s*deriv(ative)?s?", "nd"),
)
# Words that say nothing about which license it is.
_NOISE = {"license", "licence", "licensed", "international", "unported", "generic", "version", "v", "deed", "the",
          "under", "a", "c"}
_CC_PARTS = {frozenset(): "cc-by", frozenset({"sa"}): "cc-by-sa", frozenset({"nd"}): "cc-by-nd",
             frozenset({"nc"}): "cc-by-nc", frozenset({"nc", "sa"}): "cc-by-nc-sa",
             frozenset({"nc", "nd"}): "cc-by-nc-nd"}
_LINK_CC = re.compile(r"creativecommons\.org/licenses/([a-z-]+)/")
_LINK_CC0 = re.compile(r"creativecommons\.org/publicdomain/zero/")
_LINK_PD = re.compile(r"creativecommons\.org/publicdomain/mark/")


def _key_of_name(name: str) -> str | None:
    words = name.lower()
    for pattern, token in _PHRASES:
        words = re.sub(pattern, f" {token} ", words)
    tokens = {t for t in re.findall(r"[a-z0-9]+", words) if not t.isdigit() and t not in _NOISE}
    if not tokens:
        return None
    if tokens == {"arr"}:
        return "all-rights-reserved"
    if tokens <= {"cc0", "cc", "zero"} and ("cc0" in tokens or "zero" in tokens):
        return "cc0"
    if tokens <= {"pd", "cc", "mark"} and "pd" in tokens:
        return "pd"
    if "by" in tokens and tokens <= {"cc", "by", "nc", "sa", "nd"}:
        return _CC_PARTS.get(frozenset(tokens - {"cc", "by"}))
    return None


def _key_of_link(link: str) -> str | None:
    link = link.lower()
    if _LINK_CC0.search(link):
        return "cc0"
    if _LINK_PD.search(link):
        return "pd"
    match = _LINK_CC.search(link)
    if match:
        return _CC_PARTS.get(frozenset(match.group(1).split("-")) - {"by"}) if "by" in match.group(1) else None
    return None


@functools.lru_cache(maxsize=65_536)  # a collection spells its licenses a few hundred ways, over millions of rows
def license_key(name: str, link: str = "") -> str | None:
    """The license key (one of `LICENSE_KEYS`) a license's name and link name, or None when they name none
    this knows, or name different ones: blank, `see source`, `CC BY-SA-ND` and a name contradicting its link
    are unknown, never guessed. Versions and ports are ignored (`cc-by-nc-sa-3.0` → `cc-by-nc-sa`)."""
    by_name = _key_of_name(name) if name.strip() else None
    by_link = _key_of_link(link) if link.strip() else None
    if by_name and by_link and by_name != by_link:
        return None
    return by_name or by_link


def parse_allowed(value: str) -> tuple[str, ...]:
    """A plan's `--licenses` (`cc-by,cc-by-sa,cc0`) as sorted keys; each entry may be a key or any spelling
    `license_key` reads. A one-line error names an entry that is no license."""
    keys = set()
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        key = entry.lower() if entry.lower() in LICENSE_KEYS else license_key(entry)
        if key is None:
            raise TolError(f"--licenses: {entry!r} is not a license (known: {', '.join(LICENSE_KEYS)})")
        keys.add(key)
    if not keys:
        raise TolError(f"--licenses names no license (known: {', '.join(LICENSE_KEYS)})")
    return tuple(sorted(keys, key=LICENSE_KEYS.index))


# ============================================================================================== loading


@dataclass
class LoadResult:
    """What `load` did for one source."""

    source: str
    file: str | None = None
    status: str = "loaded"
    records: int = 0
    duplicates: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    images: int = 0
    known: int = 0
    unknown: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """How it reads on the command line."""
        where = f" from {self.file}" if self.file else ""
        head = f"licenses {self.source}: {self.status}{where}"
        if self.status == "loaded" and self.file:
            head += f", {self.records:,} records"
            if self.duplicates:
                head += f" ({self.duplicates:,} repeating an image already given, first kept)"
            if self.rejects:
                head += ", rejected " + ", ".join(f"{reason}: {n:,}" for reason, n in sorted(self.rejects.items()))
        unknown = sum(self.unknown.values())
        tail = (f"licenses {self.source}: {self.images:,} images, license known for {self.known:,}, unknown for "
                f"{unknown:,}")
        if unknown:
            tail += " (" + ", ".join(f"{reason}: {n:,}" for reason, n in sorted(self.unknown.items())) + \
                    "; tol licenses unknown lists them)"
        return [head, tail]


def files_sha256(path: Path) -> str:
    """A file's sha256, or for a folder the sha256 of its files' names and sha256s (sorted by name)."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path)}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


class _Staged(NamedTuple):
    records: int
    rejects: Counter[str]


def _stage(connection: Connection, hook: ProvenanceHook, path: Path, resource: str, bar: Progress) -> _Staged:
    """Read the file into the temporary table `provenance_stage` (row number, identity, license key and fields)."""
    assert hook.read is not None
    identity = [(f"k{n}", sql_type) for n, sql_type in enumerate(hook.identity_types)]
    bulk.create_temp_table(connection, "provenance_stage", [
        ("row_no", "BIGINT"), *identity, ("license_key", "VARCHAR(32)"),
        *((name, "TEXT") for name in ProvenanceRecord._fields[1:])])
    rejects: list[RowReject] = []
    counts: Counter[str] = Counter()

    def rows() -> Iterator[tuple[object, ...]]:
        for row_no, item in enumerate(hook.read(path) if hook.read else (), start=1):  # type: ignore[misc]
            if isinstance(item, RowReject):
                counts[item.reason] += 1
                if len(rejects) < KEPT_REJECTS:
                    rejects.append(item)
                continue
            if row_no % 10_000 == 0:
                bar.advance(10_000)
            yield (row_no, *item.key, license_key(item.license_name, item.license_link), *item[1:])

    columns = ["row_no", *(name for name, _ in identity), "license_key", *ProvenanceRecord._fields[1:]]
    count = bulk.load_rows(connection, "provenance_stage", columns, rows())
    record_row_rejects(connection, resource, rejects)
    return _Staged(count, counts)


def _merge(connection: Connection, source: str, hook: ProvenanceHook) -> int:
    """Replace the source's rows of `image_provenance` by the staged records (the first of each image); returns
    how many records repeated an image."""
    keys = [f"k{n}" for n in range(len(hook.identity))]
    key_list = ", ".join(keys)
    connection.exec_driver_sql(f"CREATE INDEX ix_provenance_stage_key ON provenance_stage ({key_list}, row_no)")
    bulk.create_temp_table(connection, "provenance_first", [("row_no", "BIGINT")])
    connection.exec_driver_sql(
        f"INSERT INTO provenance_first (row_no) SELECT MIN(row_no) FROM provenance_stage GROUP BY {key_list}")
    connection.exec_driver_sql("CREATE UNIQUE INDEX ix_provenance_first ON provenance_first (row_no)")
    connection.exec_driver_sql("ANALYZE provenance_stage")
    connection.exec_driver_sql("ANALYZE provenance_first")
    staged = connection.exec_driver_sql("SELECT COUNT(*) FROM provenance_stage").scalar_one()
    first = connection.exec_driver_sql("SELECT COUNT(*) FROM provenance_first").scalar_one()
    fields = ProvenanceRecord._fields[1:]
    match = " AND ".join(f"i.{column} = s.{key}" for column, key in zip(hook.identity, keys, strict=True))
    connection.execute(text("DELETE FROM image_provenance WHERE source = :s"), {"s": source})
    connection.execute(text(f"""
        INSERT INTO image_provenance (image_id, source, license_key, {", ".join(fields)})
        SELECT i.id, i.source, s.license_key, {", ".join(f"COALESCE(s.{f}, '')" for f in fields)}
        FROM provenance_first AS f
        JOIN provenance_stage AS s ON s.row_no = f.row_no
        JOIN images AS i ON i.source = :s AND {match}"""), {"s": source})
    return int(staged) - int(first)


def _record_source(connection: Connection, source: str, hook: ProvenanceHook, **file_facts: object) -> None:
    dataset = hook.dataset_license
    values: dict[str, object] = {"source": source, "title": hook.title, "citation": hook.citation,
              "license_key": license_key(dataset.license_name, dataset.license_link) if dataset else None,
              "license_name": dataset.license_name if dataset else None,
              "license_link": dataset.license_link if dataset else None,
              "rights_holder": dataset.rights_holder if dataset else None,
              "file": None, "file_sha256": None, "n_records": 0, "n_rejected": 0}
    previous = connection.execute(text(
        "SELECT file, file_sha256, n_records, n_rejected FROM source_provenance WHERE source = :s"),
        {"s": source}).first()
    if previous is not None:  # a load that does not read the file keeps what the last one read
        values.update(zip(("file", "file_sha256", "n_records", "n_rejected"), previous, strict=True))
    values.update(file_facts)
    connection.execute(text("DELETE FROM source_provenance WHERE source = :s"), {"s": source})
    connection.execute(text("""
        INSERT INTO source_provenance (source, title, citation, license_key, license_name, license_link,
            rights_holder, file, file_sha256, n_records, n_rejected)
        VALUES (:source, :title, :citation, :license_key, :license_name, :license_link, :rights_holder, :file,
            :file_sha256, :n_records, :n_rejected)"""), values)


def _count(connection: Connection, result: LoadResult) -> None:
    for reason, n in connection.execute(text(QUERIES["license_counts"]), {"source": result.source}):
        result.images += int(n)
        if reason is None:
            result.known += int(n)
        else:
            result.unknown[reason] = int(n)


def load(engine: Engine, paths: Mapping[str, Path | None], *, progress: bool = False,
         only: Iterable[str] | None = None) -> list[LoadResult]:
    """Load every registered source's provenance (or those named in `only`): its citation and dataset license,
    and its per-image file from `paths` (setting name → path; a source whose file is not given or not found
    keeps its previous load and says so). Each source is one transaction."""
    wanted = set(only) if only is not None else None
    results = []
    for source in sources.SOURCES:
        hook = provenance_of(source)
        if hook is None or (wanted is not None and source.NAME not in wanted):
            continue
        result = LoadResult(source.NAME)
        with engine.begin() as connection:
            facts: dict[str, object] = {}
            if hook.setting is None:
                result.status = "one license for the whole collection" if hook.dataset_license else "no file"
            else:
                path = paths.get(hook.setting.name)
                if path is None:
                    result.status = f"skipped: {hook.setting.name} not set"
                elif not path.exists():
                    result.status, result.file = "skipped: not found", str(path)
                else:
                    result.file = str(path)
                    with Progress(None, "records", f"licenses {source.NAME}", enabled=progress) as bar:
                        staged = _stage(connection, hook, path, hook.setting.name, bar)
                    result.records, result.rejects = staged.records, dict(staged.rejects)
                    result.duplicates = _merge(connection, source.NAME, hook)
                    facts = {"file": str(path), "file_sha256": files_sha256(path), "n_records": staged.records,
                             "n_rejected": sum(staged.rejects.values())}
            _record_source(connection, source.NAME, hook, **facts)
            _count(connection, result)
        results.append(result)
    return results


class UnknownImage(NamedTuple):
    """An image without a known license, and why."""

    image_id: str
    source: str
    file: str
    reason: str


def unknown(engine: Engine, source: str | None = None, limit: int | None = None) -> Iterator[UnknownImage]:
    """The present images whose license is not known (of one source, or all), by source and id."""
    with engine.connect() as connection:
        rows = connection.execution_options(stream_results=True).execute(
            text(QUERIES["unknown_images"]), {"source": source})
        for row in itertools.islice(rows, limit):
            yield UnknownImage(*row)
