"""The export stage: one row per written sample of a plan, as CSV or Parquet — the rows of the `plan_samples` view.

The columns are those of the published catalog.csv, plus the shard and the position in it; or, with
`what="licenses"`, those of the published licenses.csv (each sample's license, owner and URLs, `not provided`
for a text its collection did not give).

A plan of 10M samples must export in under a minute (issue 18), so the catalog is read as `plan_samples` is
composed rather than through it: the places and images (`samples` of etl/sql/export.sql, over the view
`plan_members`), and the names once per taxon (the view `taxon_names`), joined here by taxon id; the split and
shard path are the plan's and the shard's. Rows become Arrow columns as they arrive:
- PostgreSQL: one query through the ADBC driver, which reads COPY's binary rows straight into Arrow. Looking
  each sample's image up by index costs 10 µs a row (the pages of `images` seldom in shared buffers), so the
  export's connection turns nested loops off (see PG_SETTINGS): the plan's members are hashed against one scan
  of `images`, with parallel workers, and sorted once. (The plan can be read in ranges of shards, each range's
  query started while the one before is read, `PG_PART_ROWS`: each range scans `images` again, which at 1M
  images cost a second of server CPU a range for no gain in time, so the whole plan is one range.)
- SQLite: the plan's shards are read in ranges of about `SQLITE_PART_ROWS` samples, `READERS` ranges ahead in
  threads, through the ADBC SQLite driver, which steps the query and builds the Arrow columns in C without the
  GIL (`samples_sqlite`: a range's members in image-id order, put back in tar order in Arrow). Each connection
  maps the file into memory (up to SQLite's cap of 2 GB: the lookups of members and images cost half the CPU
  they cost through a 64 MB page cache; the mapped pages count in the process's resident size, though they are
  the kernel's file cache), with a page cache for the rest of a larger file. The ranges are written in order,
  so the file is the same whatever the number of readers.
Memory stays bounded by a few ranges of rows and the names of the taxa, not the plan. Parquet row groups are
`BATCH` rows each (the last one the rest), however the rows arrived, encoded and compressed in a thread of their
own while the next are assembled.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import itertools
import queue
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl.atomic import atomic_path, atomic_write
from etl.db import SQLITE_BUSY_TIMEOUT_MS, first_line, sqlite_file
from etl.errors import EnvironmentFault, TolError
from etl.plan import Plan, get_plan
from etl.progress import Progress
from etl.resources import named_queries

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

COLUMNS = ("split", "treeoflife_id", "eol_content_id", "eol_page_id", "bioscan_part", "bioscan_filename",
           "inat21_filename", "inat21_cls_name", "inat21_cls_num", "kingdom", "phylum", "class", "order",
           "family", "genus", "species", "common", "shard", "position")
INTEGER_COLUMNS = {"eol_content_id", "eol_page_id", "bioscan_part", "inat21_cls_num", "position"}
NAME_COLUMNS = ("kingdom", "phylum", "class", "order", "family", "genus", "species", "common")
SAMPLE_COLUMNS = ("shard_index", "position", "treeoflife_id", "eol_content_id", "eol_page_id", "bioscan_part",
                  "bioscan_filename", "inat21_filename", "inat21_cls_name", "inat21_cls_num", "taxon_id")
SAMPLE_INTEGER_COLUMNS = {"shard_index", "position", "eol_content_id", "eol_page_id", "bioscan_part",
                          "inat21_cls_num", "taxon_id"}
BATCH = 50_000  # rows per Parquet row group
WHAT = ("catalog", "licenses")
LICENSE_COLUMNS = ("treeoflife_id", "eol_content_id", "eol_page_id", "md5", "medium_source_url",
                   "eol_full_size_copy_url", "license_name", "copyright_owner", "license_link", "title")
LICENSE_INTEGER_COLUMNS = {"eol_content_id", "eol_page_id"}
NOT_PROVIDED = "not provided"
# SQLite ranges read ahead, each in its own thread, while the main thread joins the names and another writes.
# Two: the driver reads without the GIL, and the reading (three b-tree lookups a row) is most of the export's
# CPU at 10M images (reader alone 120-147 s of CPU, against some 30 s for the names and Parquet). With rows
# converted by Python (before the ADBC driver) a second reader had made the export slower.
READERS = 2
WRITES_AHEAD = 2  # Parquet row groups assembled ahead of the one being written
# Catalog columns written with a dictionary: those with few values in a row group. The others (ids, file names)
# have nearly one per row, where the encoder would build a dictionary only to fall back to plain pages.
DICTIONARY_COLUMNS = {"split", "bioscan_part", "inat21_cls_name", "inat21_cls_num", *NAME_COLUMNS, "shard"}
SQLITE_PART_ROWS = 200_000  # samples per range read by one SQLite thread
SQLITE_MMAP_BYTES = 1 << 31  # SQLite caps it at 2 GB; the export's random lookups of images read the file there
# Pages of a catalog larger than the mapping (4.5 GB at 10M images) are read into the page cache: one as large
# as that part of the file kept the reader's CPU at 10M at 123 s instead of 147 s (the default 2 MB cache). It
# fills only as pages past the mapping are read (none at 1M images).
SQLITE_CACHE_KB = 1_500_000
SQLITE_BATCH_ROWS_OPTION = "adbc.sqlite.query.batch_rows"  # rows per batch of the ADBC SQLite driver
# PostgreSQL settings of the export's own connection: no JIT (it compiled per-row expressions for 20 % of the
# time at 1M rows); no nested loops, whatever the statistics say (with `shards` not analysed since the claims,
# the planner expected one shard and looked each of 2.85M samples up by index: 49 s instead of 13 s); and
# parallel workers for the scans and the hash join wherever they can help (the sort above them is the leader's).
PG_PART_ROWS = 10**12  # samples per range of shards read by one PostgreSQL query: the whole plan (see below)
PG_AHEAD = 1  # PostgreSQL ranges started (queried) ahead of the one being read
PG_SETTINGS = ("SET jit = off", "SET enable_nestloop = off", "SET parallel_setup_cost = 0",
               "SET parallel_tuple_cost = 0")


def _schema(columns: Sequence[str], integers: set[str]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([(c, pa.int64() if c in integers else pa.string()) for c in columns])


def _query(name: str, dialect: str, **integers: int) -> str:
    """Query `name` of etl/sql/export.sql (its variant `name_dialect` if there is one) with its `:name` integers
    written in (the ADBC drivers read without parameters here; an int is safe to write)."""
    queries = named_queries("sql/export.sql")
    sql = queries.get(f"{name}_{dialect}", queries[name])
    return re.sub(r":(\w+)\b", lambda m: str(int(integers[m.group(1)])), sql)


# ---------------------------------------------------------------------------------------------- reading


def _pg_batches(engine: Engine, sql: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The rows of `sql` as record batches of `schema`, through the ADBC PostgreSQL driver (COPY, binary): the
    query runs when the first batch is asked for."""
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc  # type: ignore[import-untyped]

    url = engine.url.set(drivername="postgresql")
    url = url.update_query_dict({"connect_timeout": "10", "application_name": "tol export", **url.query})
    try:
        with adbc.connect(url.render_as_string(hide_password=False)) as connection, connection.cursor() as cursor:
            for setting in PG_SETTINGS:
                cursor.execute(setting)
            cursor.execute(sql)
            for batch in cursor.fetch_record_batch():
                yield _cast(batch, schema)
    except adbc_driver_manager.Error as error:
        where = engine.url.render_as_string(hide_password=True)
        raise EnvironmentFault(f"export could not read the catalog at {where}: {first_line(error)}") from error


def _sqlite_arrow(connection: Any, sql: str, rows_at_most: int, schema: pa.Schema) -> pa.RecordBatch:
    """The rows of `sql` (at most `rows_at_most` of them) as one record batch of `schema`, read through the ADBC
    SQLite `connection` (a SQLite value becomes an Arrow value in C). The driver infers each column's type from
    its first batch and fails on a later value that does not fit it (a text after a first batch of NULLs, typed
    int64): asked for one batch of every row, it sees them all, and a column of NULLs alone casts to the
    schema's type."""
    import adbc_driver_manager
    import pyarrow as pa

    with connection.cursor() as cursor:
        cursor.adbc_statement.set_options(**{SQLITE_BATCH_ROWS_OPTION: str(max(rows_at_most, 0) + 1)})
        try:
            cursor.execute(sql)
            table = cursor.fetch_arrow_table()
        except adbc_driver_manager.Error as error:
            raise EnvironmentFault(f"export could not read the catalog: {first_line(error)}") from error
    if table.num_rows > rows_at_most:
        raise RuntimeError(f"export: a query expected to give at most {rows_at_most} rows gave {table.num_rows}")
    batch = table.combine_chunks().to_batches()
    return _cast(batch[0] if batch else pa.RecordBatch.from_pylist([], schema=schema), schema)


@contextlib.contextmanager
def _mapped_connections(engine: Engine, count: int) -> Iterator[queue.Queue[Any]]:
    """`count` ADBC SQLite connections to `engine`'s file, each with the file mapped into memory, in a queue to
    take one from and put it back: held for the whole export, so each maps the file once (a new mapping faults
    every page in again)."""
    import adbc_driver_sqlite.dbapi as adbc_sqlite  # type: ignore[import-untyped]

    path = sqlite_file(engine.url)
    if path is None:
        raise TolError("export reads a SQLite catalog from its file, not from an in-memory database")
    free: queue.Queue[Any] = queue.Queue()
    with contextlib.ExitStack() as stack:
        for _ in range(count):
            # Read-only: the export never writes to the catalog.
            uri = f"{path.resolve().as_uri()}?mode=ro"
            connection = stack.enter_context(contextlib.closing(adbc_sqlite.connect(uri)))
            with connection.cursor() as cursor:
                for pragma in (f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
                               f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}",
                               f"PRAGMA cache_size = -{SQLITE_CACHE_KB}"):
                    cursor.execute(pragma)
                    cursor.fetchall()
            free.put(connection)
        yield free


def _sqlite_part(free: queue.Queue[Any], sql: str, rows_at_most: int, schema: pa.Schema,
                 unordered: bool) -> Iterator[pa.RecordBatch]:
    """The rows of `sql` (at most `rows_at_most`) as record batches of `schema`, read whole through a connection
    taken from `free` when the first is asked for. An `unordered` query gives its rows in any order with a last
    column `planned_position`: they are put in tar order here (by shard, then slot: a sample's place)."""
    import pyarrow as pa

    read_schema = schema.append(pa.field("planned_position", pa.int64())) if unordered else schema
    connection = free.get()
    try:
        batch = _sqlite_arrow(connection, sql, rows_at_most, read_schema)
    finally:
        free.put(connection)
    if unordered:
        batch = batch.sort_by([("shard_index", "ascending"), ("planned_position", "ascending")]).select(schema.names)
    yield batch


def _started(part: Callable[[], Iterator[pa.RecordBatch]]) -> tuple[pa.RecordBatch | None, Iterator[pa.RecordBatch]]:
    """`part`'s batches, started: its first batch (None when it has none) and the rest."""
    batches = part()
    return next(batches, None), batches


def _in_order(parts: Sequence[Callable[[], Iterator[pa.RecordBatch]]], ahead: int) -> Iterator[pa.RecordBatch]:
    """The batches of `parts` in their order. Each part is started (its query run, its first batch read) in one
    of `ahead` threads while the parts before it are consumed: at most `ahead` parts are started ahead of the
    one being consumed, whose other batches are read here as they are asked for."""
    with ThreadPoolExecutor(ahead, thread_name_prefix="tol-export") as pool:
        waiting: deque[Future[tuple[pa.RecordBatch | None, Iterator[pa.RecordBatch]]]] = deque(
            pool.submit(_started, part) for part in parts[:ahead])
        following = iter(parts[ahead:])
        batches: Iterator[pa.RecordBatch] = iter(())
        try:
            while waiting:
                first, batches = waiting.popleft().result()
                part = next(following, None)
                if part is not None:
                    waiting.append(pool.submit(_started, part))
                if first is not None:
                    yield first
                    yield from batches
        finally:
            _close(batches)
            for future in waiting:
                if not future.cancel() and future.exception() is None:
                    _close(future.result()[1])


def _close(batches: Iterator[pa.RecordBatch]) -> None:
    """Close `batches` if it is a generator (which releases the connection it reads through)."""
    close = getattr(batches, "close", None)
    if close is not None:
        close()


def _ranges(shards: Sequence[tuple[int, int]], rows: int) -> list[tuple[int, int]]:
    """Consecutive (first, last) shard-index ranges of `shards` ((index, planned samples), in index order) of
    about `rows` planned samples each."""
    ranges: list[tuple[int, int]] = []
    first, count = None, 0
    for index, planned in shards:
        first = index if first is None else first
        count += planned
        if count >= rows:
            ranges.append((first, index))
            first, count = None, 0
    if first is not None:
        ranges.append((first, shards[-1][0]))
    return ranges


def _batches(engine: Engine, name: str, plan: Plan, shards: Sequence[tuple[int, int]],
             schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The rows of export query `name` for the whole plan, in order, as record batches of `schema`."""
    if not shards:
        return
    dialect = engine.dialect.name
    planned = dict(shards)

    def sql(first: int, last: int) -> str:
        return _query(name, dialect, plan=plan.id, first=first, last=last)

    if dialect == "postgresql":
        parts = [functools.partial(_pg_batches, engine, sql(first, last), schema)
                 for first, last in _ranges(shards, PG_PART_ROWS)]
        yield from _in_order(parts, PG_AHEAD)
        return
    unordered = f"{name}_sqlite" in named_queries("sql/export.sql")  # see `samples_sqlite`
    with _mapped_connections(engine, READERS) as free:
        parts = [functools.partial(_sqlite_part, free, sql(first, last),
                                   sum(n for index, n in planned.items() if first <= index <= last), schema,
                                   unordered)
                 for first, last in _ranges(shards, SQLITE_PART_ROWS)]
        yield from _in_order(parts, READERS)


def _table(engine: Engine, sql: str, schema: pa.Schema) -> pa.Table:
    """The whole (small) result of `sql` as a table of `schema`."""
    import pyarrow as pa

    if engine.dialect.name == "postgresql":
        return pa.Table.from_batches(list(_pg_batches(engine, sql, schema)), schema=schema)
    with _mapped_connections(engine, 1) as free:
        connection = free.get()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM ({sql})")
            (rows,) = cursor.fetchone()
        return pa.Table.from_batches([_sqlite_arrow(connection, sql, int(rows), schema)], schema=schema)


def _cast(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with `schema`'s names and types (the driver gives int32 for INTEGER columns)."""
    import pyarrow as pa

    if batch.schema.equals(schema):
        return batch
    return pa.record_batch([column.cast(field.type) for column, field in zip(batch.columns, schema, strict=True)],
                           schema=schema)


# --------------------------------------------------------------------------------------------- assembly


class _Lookup:
    """Rows of a table found by an int64 key column with no nulls (taxon ids are 63-bit hashes: sorted and
    searched, not indexed)."""

    def __init__(self, keys: pa.Array | pa.ChunkedArray):
        import numpy as np

        values = np.asarray(keys.to_numpy(), dtype=np.int64) if len(keys) else np.zeros(0, dtype=np.int64)
        self.order = np.argsort(values, kind="stable")
        self.sorted = values[self.order]

    def rows(self, keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(row of each key found, whether each key was found); a null key is not found."""
        import numpy as np
        import pyarrow.compute as pc

        wanted = np.asarray(pc.fill_null(keys, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        if not len(self.sorted):
            return np.zeros(0, dtype=np.int64), np.zeros(len(wanted), dtype=bool)
        at = np.minimum(np.searchsorted(self.sorted, wanted), len(self.sorted) - 1)
        found = self.sorted[at] == wanted
        if keys.null_count:
            found &= np.asarray(keys.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        return self.order[at[found]], found


def _catalog_batches(engine: Engine, plan: Plan, shards: Sequence[tuple[int, str, int]],
                     schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The plan's catalog rows in `schema` (COLUMNS): the samples with their taxon's names, split and shard. The
    names are read in a thread while the first samples are read."""
    import pyarrow as pa

    # A plan's shards are numbered 0 to n - 1 (`plan.SHARD_NAME`), so a sample's shard index is its shard's row.
    if [index for index, _, _ in shards] != list(range(len(shards))):
        raise RuntimeError(f"plan {plan.name}: shard indexes are not 0 to {len(shards) - 1}")
    paths = pa.array([path for _, path, _ in shards], type=pa.string())
    samples = _batches(engine, "samples", plan, [(i, n) for i, _, n in shards],
                       _schema(SAMPLE_COLUMNS, SAMPLE_INTEGER_COLUMNS))
    with ThreadPoolExecutor(1, thread_name_prefix="tol-export-names") as pool:
        reading = pool.submit(_table, engine, _query("names", engine.dialect.name),
                              _schema(("taxon_id", *NAME_COLUMNS), {"taxon_id"}))
        first = next(samples, None)
        names = reading.result()
    taxa = _Lookup(names["taxon_id"])
    named = names.select(NAME_COLUMNS)
    for batch in itertools.chain([] if first is None else [first], samples):
        rows, found = taxa.rows(batch.column("taxon_id"))
        if not found.all():  # a sample whose image lost its taxon is not in plan_samples (an inner join)
            batch = batch.filter(pa.array(found))
        if not batch.num_rows:
            continue
        columns = {"split": pa.repeat(pa.scalar(plan.split, pa.string()), batch.num_rows),
                   "shard": paths.take(batch.column("shard_index"))}
        taken = named.take(pa.array(rows))
        columns.update({name: taken.column(name).combine_chunks() for name in NAME_COLUMNS})
        columns.update({name: batch.column(name) for name in SAMPLE_COLUMNS})
        yield pa.record_batch([columns[field.name] for field in schema], schema=schema)


def _filled(batch: pa.RecordBatch) -> pa.RecordBatch:
    """licenses.csv rows with `not provided` for every empty text (ids stay empty)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [pc.if_else(pc.or_kleene(pc.is_null(column), pc.equal(column, "")), NOT_PROVIDED, column)
               if pa.types.is_string(column.type) else column for column in batch.columns]
    return pa.record_batch(columns, schema=batch.schema)


def _row_groups(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    """`batches` regrouped into tables of exactly `BATCH` rows (the last one the rest)."""
    import pyarrow as pa

    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count >= BATCH:
            table = pa.Table.from_batches(held, schema=schema)
            yield table.slice(0, BATCH)
            rest = table.slice(BATCH)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held, schema=schema)


def _write_group(writer: Any, table: pa.Table) -> None:
    """Write `table` to the Parquet `writer` as one row group, from one contiguous chunk per column."""
    writer.write_table(table.combine_chunks(), row_group_size=max(table.num_rows, 1))


# ----------------------------------------------------------------------------------------------- export


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
    schema = _schema(*((LICENSE_COLUMNS, LICENSE_INTEGER_COLUMNS) if licenses else (COLUMNS, INTEGER_COLUMNS)))
    with engine.connect() as connection:
        shards = [(int(index), str(path), int(planned)) for index, path, planned
                  in connection.execute(text(_query("shards", engine.dialect.name, plan=plan.id)))]
    batches: Iterator[pa.RecordBatch]
    if licenses:
        batches = (_filled(batch) for batch in
                   _batches(engine, "licenses", plan, [(i, n) for i, _, n in shards], schema))
    else:
        batches = _catalog_batches(engine, plan, shards, schema)
    count = 0
    with Progress(plan.n_samples, "rows", f"export {plan.name}", enabled=progress) as bar:
        if fmt == "csv":
            with atomic_write(out, "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(schema.names)
                for batch in batches:
                    writer.writerows(zip(*(column.to_pylist() for column in batch.columns), strict=True))
                    count += batch.num_rows
                    bar.advance(batch.num_rows)
        else:
            import pyarrow.parquet as pq

            dictionary = True if licenses else [c for c in schema.names if c in DICTIONARY_COLUMNS]
            with atomic_path(out) as partial, pq.ParquetWriter(partial, schema, use_dictionary=dictionary) as writer, \
                    ThreadPoolExecutor(1, thread_name_prefix="tol-export-write") as pool:
                # Row groups are encoded and compressed in their own thread (without the GIL) while the next are
                # read and assembled; each is one contiguous table, so the file's bytes (where the dictionary
                # encoder falls back to plain pages) depend on its rows only, not on how they were read.
                writing: deque[tuple[Future[None], int]] = deque()
                for table in _row_groups(batches, schema):
                    writing.append((pool.submit(_write_group, writer, table), table.num_rows))
                    while len(writing) > WRITES_AHEAD or (writing and writing[0][0].done()):
                        future, rows = writing.popleft()
                        future.result()
                        count += rows
                        bar.advance(rows)
                for future, rows in writing:
                    future.result()
                    count += rows
                    bar.advance(rows)
    return count
