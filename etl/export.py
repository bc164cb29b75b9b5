"""The export stage: one row per written sample of a plan, as CSV or Parquet — the rows of the `plan_samples` view.

The columns are those of the published catalog.csv, plus the shard and the position in it; or, with
`what="licenses"`, those of the published licenses.csv (each sample's license, owner and URLs, `not provided`
for a text its collection did not give).

A plan of 10M samples must export in under a minute (issue 18), so the catalog is read as `plan_samples` is
composed rather than through it, in three scans read at once (etl/sql/export.sql): the plan's written members
(over the view `plan_members`), the identity of every image with a taxon, and the names once per taxon (the view
`taxon_names`). They are joined here: each member finds its image by id in a hash lookup, and the image's taxon
its names; the split and shard path are the plan's and the shard's. Looking 9.5M members' images up one by one in
the database cost SQLite ten times its scan of `images` (5.5 s against 0.5 s of CPU at 1M images), and
PostgreSQL a parallel hash join and a sort of every row. Each scan becomes Arrow columns in C:
- PostgreSQL: through the ADBC driver, which reads COPY's binary rows straight into Arrow. The export's
  connection turns nested loops off (see PG_SETTINGS).
- SQLite: through the ADBC SQLite driver, in a child process each (etl.sqlite_arrow says why).
Memory holds the three tables, which the join needs whole: a peak of 5.0–5.3 GB at 10M images (bench/scale),
about 0.5 KB an image. Parquet row groups are
`BATCH` rows each (the last one the rest), encoded and compressed in a thread of their own while the next are
assembled.

licenses.csv reads its query in ranges of shards, `READERS` ranges ahead in threads, through sqlite3
connections that map the file into memory (up to SQLite's cap of 2 GB), or on PostgreSQL in one query.
"""

from __future__ import annotations

import contextlib
import csv
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

from etl import sqlite_arrow
from etl.atomic import atomic_path, atomic_write
from etl.db import first_line, sqlite_file
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
MEMBER_COLUMNS = ("shard_index", "position", "planned_position", "image_id")
IMAGE_COLUMNS = ("treeoflife_id", "eol_content_id", "eol_page_id", "bioscan_part", "bioscan_filename",
                 "inat21_filename", "inat21_cls_name", "inat21_cls_num", "taxon_id")
SAMPLE_INTEGER_COLUMNS = {"shard_index", "position", "planned_position", "eol_content_id", "eol_page_id",
                          "bioscan_part", "inat21_cls_num", "taxon_id"}
BATCH = 50_000  # rows per Parquet row group, and per fetch from SQLite (licenses)
WRITES_AHEAD = 2  # Parquet row groups assembled ahead of the one being written
JOIN_PARTS = 2  # parts of the images hashed at once, each in a thread (`_image_rows`)
ASSEMBLERS = 2  # threads that assemble the catalog's batches (Arrow's gathers run without the GIL)
# Catalog columns written with a dictionary: those with few values in a row group. The others (ids, file names)
# have nearly one value per row, where the encoder would build a dictionary only to fall back to plain pages.
DICTIONARY_COLUMNS = {"split", "bioscan_part", "inat21_cls_name", "inat21_cls_num", *NAME_COLUMNS, "shard"}
WHAT = ("catalog", "licenses")
# What the catalog export does before its first row, a progress step each (`_catalog_batches`).
CATALOG_STEPS = ("images read", "members read", "members joined to their images", "names joined")
LICENSE_COLUMNS = ("treeoflife_id", "eol_content_id", "eol_page_id", "md5", "medium_source_url",
                   "eol_full_size_copy_url", "license_name", "copyright_owner", "license_link", "title")
LICENSE_INTEGER_COLUMNS = {"eol_content_id", "eol_page_id"}
NOT_PROVIDED = "not provided"
# SQLite ranges read ahead, each in its own thread, while the main thread joins the names and writes. One: on
# the 2-core bench machine a second reader made the export slower (1M rows: 14.7 s against 13.1 s), its
# conversions of rows to Arrow contending for the GIL with the first's.
READERS = 1
SQLITE_PART_ROWS = 200_000  # samples per range read by one SQLite thread
SQLITE_MMAP_BYTES = 1 << 31  # SQLite caps it at 2 GB; the export's random lookups of images read the file there
# PostgreSQL settings of the export's own connection: no JIT (it compiled per-row expressions for 20 % of the
# time at 1M rows); no nested loops, whatever the statistics say (with `shards` not analysed since the claims,
# the planner expected one shard and looked each of 2.85M samples up by index: 49 s instead of 13 s); and
# parallel workers for the scans and the hash join wherever they can help (the sort above them is the leader's).
PG_SETTINGS = ("SET jit = off", "SET enable_nestloop = off", "SET parallel_setup_cost = 0",
               "SET parallel_tuple_cost = 0")


def _schema(columns: Sequence[str], integers: set[str]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([(c, pa.int64() if c in integers else pa.string()) for c in columns])


def _query(name: str, **integers: int) -> str:
    """Query `name` of etl/sql/export.sql with its `:name` integers written in (the ADBC driver reads through
    COPY, which takes no parameters; an int is safe to write)."""
    return re.sub(r":(\w+)\b", lambda m: str(int(integers[m.group(1)])), named_queries("sql/export.sql")[name])


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


def _sqlite_rows(raw: Any, sql: str, schema: pa.Schema) -> list[pa.RecordBatch]:
    """All the rows of `sql` as record batches of `schema`, read through the sqlite3 connection `raw`."""
    import pyarrow as pa

    batches = []
    cursor = raw.execute(sql)
    rows_type = pa.struct(list(schema))
    while rows := cursor.fetchmany(BATCH):
        # Straight from the row tuples: transposing them into columns first cost more than this (and set the
        # garbage collector scanning every tuple).
        batches.append(pa.RecordBatch.from_struct_array(pa.array(rows, type=rows_type)))
    return batches


@contextlib.contextmanager
def _mapped_connections(engine: Engine, count: int) -> Iterator[queue.Queue[Any]]:
    """`count` sqlite3 connections of `engine` with the file mapped into memory, in a queue to take one from and
    put it back: held for the whole export, so each maps the file once (a new mapping faults every page in
    again)."""
    free: queue.Queue[Any] = queue.Queue()
    with contextlib.ExitStack() as stack:
        for _ in range(count):
            raw: Any = stack.enter_context(engine.connect()).connection.dbapi_connection
            raw.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
            stack.callback(raw.execute, "PRAGMA mmap_size = 0")
            free.put(raw)
        yield free


def _sqlite_part(free: queue.Queue[Any], sql: str, schema: pa.Schema) -> list[pa.RecordBatch]:
    """All the rows of `sql` as record batches of `schema`, read through a connection taken from `free`."""
    raw = free.get()
    try:
        return _sqlite_rows(raw, sql, schema)
    finally:
        free.put(raw)


def _in_order(parts: Sequence[Callable[[], list[pa.RecordBatch]]], readers: int) -> Iterator[pa.RecordBatch]:
    """The batches of `parts` in their order, each part read whole in one of `readers` threads: at most `readers`
    parts are read ahead of the one being consumed."""
    with ThreadPoolExecutor(readers, thread_name_prefix="tol-export") as pool:
        waiting: deque[Future[list[pa.RecordBatch]]] = deque(pool.submit(part) for part in parts[:readers])
        following = iter(parts[readers:])
        try:
            while waiting:
                batches = waiting.popleft().result()
                part = next(following, None)
                if part is not None:
                    waiting.append(pool.submit(part))
                yield from batches
        finally:
            for future in waiting:
                future.cancel()


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
    if engine.dialect.name == "postgresql":
        yield from _pg_batches(engine, _query(name, plan=plan.id, first=shards[0][0], last=shards[-1][0]), schema)
        return
    with _mapped_connections(engine, READERS) as free:
        parts = [lambda sql=_query(name, plan=plan.id, first=first, last=last): _sqlite_part(free, sql, schema)
                 for first, last in _ranges(shards, SQLITE_PART_ROWS)]
        yield from _in_order(parts, READERS)


def _cast(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with `schema`'s names and types (the driver gives int32 for INTEGER columns)."""
    import pyarrow as pa

    if batch.schema.equals(schema):
        return batch
    return pa.record_batch([column.cast(field.type) for column, field in zip(batch.columns, schema, strict=True)],
                           schema=schema)


# --------------------------------------------------------------------------------------------- assembly


def _rows_by_key(table_keys: pa.ChunkedArray, keys: pa.ChunkedArray) -> np.ndarray:
    """The row of `table_keys` (int64, no NULL) holding each of `keys`, -1 where there is none (or the key is
    NULL). Taxon ids are 63-bit hashes: sorted and searched, not hashed."""
    import numpy as np
    import pyarrow.compute as pc

    values = np.asarray(table_keys.to_numpy(), dtype=np.int64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    column = keys.combine_chunks()
    wanted = np.asarray(pc.fill_null(column, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    rows = np.full(len(wanted), -1, dtype=np.int64)
    if not len(ordered):
        return rows
    at = np.minimum(np.searchsorted(ordered, wanted), len(ordered) - 1)
    found = ordered[at] == wanted
    if column.null_count:
        found &= np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    rows[found] = order[at[found]]
    return rows


def _read_table(engine: Engine, sql: str, schema: pa.Schema) -> pa.Table:
    """All the rows of `sql` as a table of `schema`: on PostgreSQL through the ADBC driver (COPY, binary), on
    SQLite through the ADBC SQLite driver in a child process (etl.sqlite_arrow)."""
    import pyarrow as pa

    if engine.dialect.name == "postgresql":
        return pa.Table.from_batches(list(_pg_batches(engine, sql, schema)), schema=schema)
    path = sqlite_file(engine.url)
    if path is None:
        raise TolError("export reads a SQLite catalog from its file, not from an in-memory database")
    return sqlite_arrow.read(path, sql, schema)


def _fixed_width(column: pa.ChunkedArray) -> pa.Array | None:
    """`column` (texts) as one array of binary values of one width, when every value is that wide and none is
    NULL (image ids: 36 characters), else None. Arrow hashes those a third faster than texts, and joining the
    chunks is then one copy of the bytes, without rewriting offsets."""
    import numpy as np
    import pyarrow as pa

    if not len(column) or column.null_count or column.type != pa.string():
        return None
    views, width = [], None
    for chunk in column.chunks:
        count = len(chunk)
        if not count:
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=count + 1, offset=4 * chunk.offset)
        width = int(offsets[1] - offsets[0]) if width is None else width
        if width <= 0 or not bool(np.all(np.diff(offsets) == width)):
            return None
        data = chunk.buffers()[2].slice(int(offsets[0]), width * count)
        views.append(pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), count, [None, data]))
    return pa.concat_arrays(views)


def _image_rows(member_ids: pa.ChunkedArray, image_ids: pa.ChunkedArray, pool: ThreadPoolExecutor) -> np.ndarray:
    """Each member's row among the images (by id), -1 where it has none. The images are split into
    `JOIN_PARTS` parts, each hashed and probed by every member in a thread of `pool` (Arrow runs them without the
    GIL): on two cores this halves the wall time of one lookup in all the images, for the same CPU."""
    import numpy as np
    import pyarrow.compute as pc

    members, images = _fixed_width(member_ids), _fixed_width(image_ids)
    if members is None or images is None or members.type != images.type:
        members, images = member_ids.combine_chunks(), image_ids.combine_chunks()
    size = -(-len(images) // JOIN_PARTS) if len(images) else 1
    starts = range(0, len(images), size)
    found = pool.map(lambda start: pc.index_in(members, value_set=images.slice(start, size)), starts)
    rows = np.full(len(members), -1, dtype=np.int64)
    for start, part in zip(starts, found, strict=True):
        local = np.asarray(pc.fill_null(part, -1), dtype=np.int64)
        hit = local >= 0
        rows[hit] = local[hit] + start  # image ids are unique: a member is found in one part at most
    return rows


def _tar_order(shard_index: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """The order that puts members (their shard indexes and slots) in tar order: by shard, then slot. The
    database may give them in any order (PostgreSQL's hash join does); SQLite gives them in key order, which is
    checked first."""
    import numpy as np

    key = (shard_index.astype(np.int64) << 32) | slot.astype(np.int64)  # slots < 2^32 (a shard's size)
    if len(key) < 2 or bool(np.all(key[1:] > key[:-1])):
        return np.arange(len(key))
    return np.argsort(key, kind="stable")


def _catalog_batches(engine: Engine, plan: Plan, shards: Sequence[tuple[int, str, int]], schema: pa.Schema,
                     on_step: Callable[[], None]) -> Iterator[pa.RecordBatch]:
    """The plan's catalog rows in `schema` (COLUMNS): the samples with their image's identity, their taxon's
    names, split and shard. The plan's written members, the images and the names are read whole, at once
    (each a scan: looking 9.5M members' images up one by one cost SQLite ten times a scan of `images`), and
    joined here: each member finds its image by id in one hash lookup, and the image's taxon its names.
    `on_step` is called as each of the `CATALOG_STEPS` before the first batch ends."""
    import numpy as np
    import pyarrow as pa

    # A plan's shards are numbered 0 to n - 1 (`plan.SHARD_NAME`), so a sample's shard index is its shard's row.
    if [index for index, _, _ in shards] != list(range(len(shards))):
        raise RuntimeError(f"plan {plan.name}: shard indexes are not 0 to {len(shards) - 1}")
    paths = pa.array([path for _, path, _ in shards], type=pa.string())
    with ThreadPoolExecutor(max(2 + JOIN_PARTS, ASSEMBLERS), thread_name_prefix="tol-export") as pool:
        members_read, images_read, names_read = (
            pool.submit(_read_table, engine, _query(name, plan=plan.id), schema) for name, schema in (
                ("members", _schema(MEMBER_COLUMNS, SAMPLE_INTEGER_COLUMNS)),
                ("images", _schema(IMAGE_COLUMNS, SAMPLE_INTEGER_COLUMNS)),
                ("names", _schema(("taxon_id", *NAME_COLUMNS), {"taxon_id"}))))
        images = images_read.result()
        on_step()
        # While the members find their images (below, one core): the images' other columns made contiguous for
        # the gathers, and each image's names row (-1: its taxon has none, so its samples are not in
        # plan_samples, an inner join). Every image with a taxon is in `images`; the others are not (NULL), as
        # plan_samples leaves them out.
        contiguous = pool.submit(images.combine_chunks)
        naming = pool.submit(lambda: _rows_by_key(names_read.result()["taxon_id"], images["taxon_id"]))
        members = members_read.result()
        on_step()
        image_rows = _image_rows(members["image_id"], images["treeoflife_id"], pool)
        on_step()
        shard_index = np.asarray(members["shard_index"].to_numpy(), dtype=np.int64)
        order = _tar_order(shard_index, np.asarray(members["planned_position"].to_numpy(), dtype=np.int64))
        image_rows = image_rows[order]
        places = pa.table({"shard_index": shard_index[order],
                           "position": np.asarray(members["position"].to_numpy(), dtype=np.int64)[order]})
        del members, shard_index, order
        image_names = naming.result()
        on_step()
        names_rows = np.where(image_rows >= 0, image_names[np.maximum(image_rows, 0)], -1)
        exported = np.flatnonzero(names_rows >= 0)
        images = contiguous.result()
        named = names_read.result().select(NAME_COLUMNS).combine_chunks()
        split = pa.scalar(plan.split, pa.string())

        def assemble(start: int) -> pa.RecordBatch:
            """The catalog rows of exported samples `start` to `start + BATCH`."""
            samples = exported[start:start + BATCH]
            image = images.take(image_rows[samples])
            taken = named.take(names_rows[samples])
            place = places.take(samples)
            columns = {"split": pa.repeat(split, len(samples)),
                       "shard": paths.take(place["shard_index"].combine_chunks())}
            columns.update({name: taken[name].combine_chunks() for name in NAME_COLUMNS})
            columns.update({name: image[name].combine_chunks() for name in IMAGE_COLUMNS})
            columns.update({name: place[name].combine_chunks() for name in ("shard_index", "position")})
            return pa.record_batch([columns[field.name] for field in schema], schema=schema)

        yield from _ordered(pool, assemble, range(0, len(exported), BATCH), ASSEMBLERS + 1)


def _ordered(pool: ThreadPoolExecutor, work: Callable[[int], pa.RecordBatch], items: Iterable[int],
             ahead: int) -> Iterator[pa.RecordBatch]:
    """`work` of each of `items`, in their order, done in `pool` with at most `ahead` of them started ahead of the
    one being consumed."""
    waiting: deque[Future[pa.RecordBatch]] = deque()
    try:
        for item in items:
            waiting.append(pool.submit(work, item))
            if len(waiting) > ahead:
                yield waiting.popleft().result()
        while waiting:
            yield waiting.popleft().result()
    finally:
        for future in waiting:
            future.cancel()


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
                  in connection.execute(text(_query("shards", plan=plan.id)))]
    batches: Iterator[pa.RecordBatch]
    if licenses:
        batches = (_filled(batch) for batch in
                   _batches(engine, "licenses", plan, [(i, n) for i, _, n in shards], schema))
    else:
        # Reading and joining come before the first row (20-30 s at 10M samples): shown as steps of their own.
        with Progress(len(CATALOG_STEPS), "steps", f"export {plan.name}", enabled=progress) as steps:
            catalog = _catalog_batches(engine, plan, shards, schema, steps.advance)
            first = next(catalog, None)
        batches = itertools.chain([] if first is None else [first], catalog)
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
                # assembled; each is one contiguous table, so the file's bytes depend on its rows only.
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
