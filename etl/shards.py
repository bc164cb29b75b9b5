"""Shard plans and the workers that write them.

A plan decides everything before a byte is written: which images (present, named, not excluded, in the
split), in which seeded order, in which shard at which position. Workers only claim shard rows and execute
them. A claim carries a lease the worker renews while it writes; an expired lease can be claimed again.
A shard file appears under its final name only by an atomic rename done while the worker holds a row lock
on its still-valid claim, and the manifest is committed in the same transaction, so a worker that lost its
lease can neither replace the file nor mark it done.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from etl import bulk, naming
from etl.errors import TolError
from etl.images import RESIZE_MODES, ImageProblem, Target, prepare
from etl.splits import MODULUS

SPLITS = ("train", "val", "train_small")
TXT_FIELDS = tuple(name[: -len(".txt")] for name in naming.CAPTION_FIELDS)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_SAMPLES_PER_SHARD = 10_000
FIXED_MTIME = 1_600_000_000  # every tar member's mtime: same plan, same bytes
TAR_USER = "tol"
SHARD_NAME = "shard-{index:06d}.tar"
DEFAULT_LEASE_SECONDS = 120.0


# ============================================================================================== options


def parse_size(text_value: str) -> tuple[int, int]:
    """`224x224` → (224, 224)."""
    match = re.fullmatch(r"(\d+)x(\d+)", text_value.strip())
    if not match or not all(0 < int(v) <= 16384 for v in match.groups()):
        raise TolError(f"--size must look like 224x224 (1 to 16384 pixels each), not {text_value!r}")
    return int(match.group(1)), int(match.group(2))


def parse_bytes(text_value: str) -> int:
    """`3GB`, `500MB`, `3e9`, `1048576` → bytes."""
    match = re.fullmatch(r"\s*([0-9.e+]+)\s*([KMGT]i?B?|B)?\s*", text_value, flags=re.IGNORECASE)
    if not match:
        raise TolError(f"--shard-bytes must be a size such as 3GB or 500MB, not {text_value!r}")
    try:
        number = float(match.group(1))
    except ValueError:
        raise TolError(f"--shard-bytes must be a size such as 3GB or 500MB, not {text_value!r}") from None
    unit = (match.group(2) or "B").upper().rstrip("B").rstrip("I")
    factor = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[unit]
    if "I" in (match.group(2) or "").upper():
        factor = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[unit]
    value = int(number * factor)
    if value <= 0:
        raise TolError(f"--shard-bytes must be positive, not {text_value!r}")
    return value


def estimated_sample_bytes(width: int, height: int, quality: int) -> int:
    """A planning estimate of one sample's bytes in a tar (JPEG + captions + JSON + 13 member headers)."""
    jpeg = width * height * (0.25 + 0.6 * quality / 100)
    return int(jpeg) + 13 * 512 + 4096


@dataclass(frozen=True)
class PlanOptions:
    """Everything a plan is made from."""

    split_name: str
    split: str
    width: int = 224
    height: int = 224
    resize: str = "center-crop"
    quality: int = 95
    samples_per_shard: int | None = None
    shard_bytes: int | None = None
    txt_field: str = "taxonTag_com"
    out_dir: str = "shards"
    shuffle_seed: int = 0

    def check(self) -> None:
        if self.split not in SPLITS:
            raise TolError(f"--split must be one of {', '.join(SPLITS)}, not {self.split!r}")
        if self.resize not in RESIZE_MODES:
            raise TolError(f"--resize must be one of {', '.join(RESIZE_MODES)}, not {self.resize!r}")
        if not 1 <= self.quality <= 100:
            raise TolError(f"--quality must be 1 to 100, not {self.quality}")
        if self.txt_field not in TXT_FIELDS:
            raise TolError(f"--txt-field must be one of {', '.join(TXT_FIELDS)}, not {self.txt_field!r}")
        if self.samples_per_shard is not None and self.shard_bytes is not None:
            raise TolError("give --samples-per-shard or --shard-bytes, not both")
        if self.samples_per_shard is not None and self.samples_per_shard < 1:
            raise TolError(f"--samples-per-shard must be at least 1, not {self.samples_per_shard}")

    def per_shard(self) -> int:
        if self.samples_per_shard is not None:
            return self.samples_per_shard
        if self.shard_bytes is not None:
            return max(1, self.shard_bytes // estimated_sample_bytes(self.width, self.height, self.quality))
        return DEFAULT_SAMPLES_PER_SHARD


def _shuffle_parameters(seed: int) -> tuple[int, int]:
    digest = hashlib.sha256(f"treeoflife-etl shuffle seed {seed}".encode()).digest()
    return (int.from_bytes(digest[:4], "big") % MODULUS) | 1, int.from_bytes(digest[4:8], "big") % MODULUS


# ============================================================================================== plans


@dataclass
class Plan:
    """A plan row."""

    id: int
    name: str
    split: str
    width: int
    height: int
    resize: str
    quality: int
    txt_field: str
    out_dir: str
    n_shards: int
    n_samples: int
    n_excluded: int
    n_unnamed: int

    @property
    def target(self) -> Target:
        return Target(self.width, self.height, self.resize, self.quality)


def get_plan(engine_or_connection, name: str) -> Plan:
    """The plan called `name`, or a one-line error listing the known ones."""
    query = text("SELECT id, name, split, width, height, resize, quality, txt_field, out_dir, n_shards, n_samples, "
                 "n_excluded, n_unnamed FROM shard_plans WHERE name = :n")

    def fetch(connection: Connection) -> Plan:
        row = connection.execute(query, {"n": name}).first()
        if row is None:
            known = [n for (n,) in connection.execute(text("SELECT name FROM shard_plans ORDER BY name"))]
            raise TolError(f"no shard plan {name!r} (known: {', '.join(known) or 'none; see tol shards plan'})")
        return Plan(*row)

    if isinstance(engine_or_connection, Engine):
        with engine_or_connection.connect() as connection:
            return fetch(connection)
    return fetch(engine_or_connection)


def _eligible_sql(split: str) -> str:
    condition = {"train": "s.split = 'train'", "val": "s.split = 'val'", "train_small": "s.in_train_small = 1"}[split]
    return f"""
        FROM image_splits AS s
        JOIN images AS i ON i.id = s.image_id
        WHERE s.split_definition_id = :definition AND i.status = 'present' AND {condition}"""


def create_plan(engine: Engine, name: str, options: PlanOptions) -> tuple[Plan, bool]:
    """Record plan `name` with its shards and members; (plan, created). Re-creating with the same options is a
    no-op; other options for an existing name are an error (a plan never changes)."""
    from etl.splits import get as get_split

    if not NAME_PATTERN.match(name):
        raise TolError(f"plan name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    options.check()
    definition = get_split(engine, options.split_name)
    per_shard = options.per_shard()
    multiplier, increment = _shuffle_parameters(options.shuffle_seed)
    with engine.begin() as connection:
        existing = connection.execute(text(
            "SELECT split_definition_id, split, width, height, resize, quality, samples_per_shard, shard_bytes, "
            "txt_field, out_dir, shuffle_seed FROM shard_plans WHERE name = :n"), {"n": name}).first()
        wanted = (definition.id, options.split, options.width, options.height, options.resize, options.quality,
                  options.samples_per_shard, options.shard_bytes, options.txt_field, options.out_dir,
                  options.shuffle_seed)
        if existing is not None:
            if tuple(existing) == wanted:
                return get_plan(connection, name), False
            raise TolError(f"plan {name!r} already exists with other options; a plan never changes, use a new name")
        params = {"definition": definition.id}
        eligible = _eligible_sql(options.split)
        # Naming and ingest rewrote `images`: with stale statistics the planner expects one named image.
        connection.exec_driver_sql("ANALYZE images")
        # The excluded images, once: probing the exclusion view per image would evaluate it per image.
        bulk.create_temp_table(connection, "plan_excluded", [("image_id", bulk.ID_TYPE)])
        connection.exec_driver_sql(
            "INSERT INTO plan_excluded (image_id) SELECT DISTINCT image_id FROM image_exclusions")
        connection.exec_driver_sql("CREATE UNIQUE INDEX ix_plan_excluded ON plan_excluded (image_id)")
        connection.exec_driver_sql("ANALYZE plan_excluded")
        counts = connection.execute(text(f"""
            SELECT
              SUM(CASE WHEN i.taxon_id IS NULL THEN 1 ELSE 0 END),
              SUM(CASE WHEN i.taxon_id IS NOT NULL AND EXISTS (
                  SELECT 1 FROM plan_excluded AS x WHERE x.image_id = i.id) THEN 1 ELSE 0 END),
              SUM(CASE WHEN i.taxon_id IS NOT NULL AND NOT EXISTS (
                  SELECT 1 FROM plan_excluded AS x WHERE x.image_id = i.id) THEN 1 ELSE 0 END)
            {eligible}"""), params).one()
        n_unnamed, n_excluded, n_samples = (int(v or 0) for v in counts)
        n_shards = math.ceil(n_samples / per_shard)
        plan_id = connection.execute(text("""
            INSERT INTO shard_plans (name, split_definition_id, split, width, height, resize, quality,
                samples_per_shard, shard_bytes, txt_field, out_dir, shuffle_seed, n_shards, n_samples, n_excluded,
                n_unnamed)
            VALUES (:name, :definition, :split, :width, :height, :resize, :quality, :samples_per_shard,
                :shard_bytes, :txt_field, :out_dir, :shuffle_seed, :n_shards, :n_samples, :n_excluded, :n_unnamed)
            RETURNING id"""), {
            "name": name, "definition": definition.id, "split": options.split, "width": options.width,
            "height": options.height, "resize": options.resize, "quality": options.quality,
            "samples_per_shard": options.samples_per_shard, "shard_bytes": options.shard_bytes,
            "txt_field": options.txt_field, "out_dir": options.out_dir, "shuffle_seed": options.shuffle_seed,
            "n_shards": n_shards, "n_samples": n_samples, "n_excluded": n_excluded, "n_unnamed": n_unnamed,
        }).scalar_one()
        if n_shards:
            connection.execute(text(
                "INSERT INTO shards (plan_id, shard_index, path, state, n_planned) "
                "VALUES (:plan, :index, :path, 'pending', :planned)"),
                [{"plan": plan_id, "index": index, "path": SHARD_NAME.format(index=index),
                  "planned": min(per_shard, n_samples - index * per_shard)} for index in range(n_shards)])
            connection.execute(text(f"""
                INSERT INTO shard_members (shard_id, position, image_id)
                -- Ties of the 31-bit shuffle key are broken by id, compared byte-wise on both databases.
                SELECT sh.id, (r.n - 1) % :per, r.image_id
                FROM (
                    SELECT i.id AS image_id,
                           ROW_NUMBER() OVER (ORDER BY (i.split_hash * :m + :c) % {MODULUS}, i.id) AS n
                    {eligible}
                      AND i.taxon_id IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM plan_excluded AS x WHERE x.image_id = i.id)
                ) AS r
                JOIN shards AS sh ON sh.plan_id = :plan AND sh.shard_index = (r.n - 1) / :per"""),
                {**params, "per": per_shard, "m": multiplier, "c": increment, "plan": plan_id})
        return get_plan(connection, name), True


# ============================================================================================== claims


def with_retries(operation: Callable, *args, attempts: int = 6, delay: float = 0.25, **kwargs):
    """Run a catalog operation, retrying when the connection was lost (e.g. the server killed the session).

    Each operation is one transaction, so a retry either redoes it whole or finds it already done.
    """
    for attempt in range(attempts):
        try:
            return operation(*args, **kwargs)
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(delay * 2**attempt)
    return None


@dataclass
class Claim:
    """A shard this worker holds: its row, token and lease."""

    shard_id: int
    shard_index: int
    path: str
    token: str
    attempts: int


def worker_name(rank: int | None = None, size: int | None = None) -> str:
    """`host:pid` (with `:rank/size` under MPI): who holds a claim."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}:{rank}/{size}" if rank is not None else name


def fail_exhausted(connection: Connection, plan_id: int, max_attempts: int, now: float) -> int:
    """Mark failed the shards whose lease expired after their last allowed attempt."""
    return connection.execute(text("""
        UPDATE shards SET state = 'failed', error = COALESCE(error, 'lease expired (worker lost)')
            || ' after ' || CAST(attempts AS VARCHAR(12)) || ' attempts', claim_token = NULL
        WHERE plan_id = :plan AND state = 'claimed' AND lease_until < :now AND attempts >= :max"""),
        {"plan": plan_id, "now": now, "max": max_attempts}).rowcount


def claim(engine: Engine, plan_id: int, worker: str, lease_seconds: float, max_attempts: int) -> Claim | None:
    """Claim the next pending (or lease-expired) shard of the plan, or None if there is none now."""
    token = str(uuid.uuid4())
    now = time.time()
    params = {"plan": plan_id, "now": now, "token": token, "worker": worker, "lease": now + lease_seconds,
              "max": max_attempts}
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # A claim need not wait for its WAL flush, which a busy server can stall for a quarter of a second
            # (bench/scale at 10M): a claim lost in a server crash is harmless, as the worker's renewals and its
            # final commit both check the claim token, and the shard is simply claimed again.
            connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
        fail_exhausted(connection, plan_id, max_attempts, now)
        candidates = """
            SELECT id FROM shards
            WHERE plan_id = :plan AND attempts < :max
              AND (state = 'pending' OR (state = 'claimed' AND lease_until < :now))
            ORDER BY shard_index LIMIT 1"""
        update = """
            UPDATE shards SET state = 'claimed', claim_token = :token, worker = :worker, claimed_at = :now,
                   lease_until = :lease, attempts = attempts + 1
            WHERE id = {target}
            RETURNING id, shard_index, path, attempts"""
        if connection.dialect.name == "postgresql":
            row = connection.execute(text(update.format(
                target=f"({candidates} FOR UPDATE SKIP LOCKED)")), params).first()
        else:
            # BEGIN IMMEDIATE already holds SQLite's write lock: select then update is atomic.
            found = connection.execute(text(candidates), params).first()
            row = None if found is None else connection.execute(
                text(update.format(target=":id")), {**params, "id": found[0]}).first()
    if row is None:
        return None
    return Claim(row[0], row[1], row[2], token, row[3])


def renew(engine: Engine, held: Claim, lease_seconds: float) -> bool:
    """Extend the lease; False if the claim is no longer ours."""
    with engine.begin() as connection:
        return connection.execute(text(
            "UPDATE shards SET lease_until = :lease WHERE id = :id AND claim_token = :token AND state = 'claimed'"),
            {"lease": time.time() + lease_seconds, "id": held.shard_id, "token": held.token}).rowcount == 1


def release(engine: Engine, held: Claim, error: str | None = None, *, count_attempt: bool = False) -> None:
    """Give a claim back: pending again (the attempt is not counted unless `count_attempt`)."""
    with engine.begin() as connection:
        connection.execute(text(f"""
            UPDATE shards SET state = 'pending', claim_token = NULL, lease_until = NULL, error = :error,
                   attempts = attempts {'' if count_attempt else '- 1'}
            WHERE id = :id AND claim_token = :token AND state = 'claimed'"""),
            {"id": held.shard_id, "token": held.token, "error": error})


def fail_attempt(engine: Engine, held: Claim, error: str, max_attempts: int) -> None:
    """An attempt failed: the shard goes back to pending, or to failed after `max_attempts`."""
    with engine.begin() as connection:
        connection.execute(text("""
            UPDATE shards SET state = CASE WHEN attempts >= :max THEN 'failed' ELSE 'pending' END,
                   claim_token = NULL, lease_until = NULL, error = :error
            WHERE id = :id AND claim_token = :token AND state = 'claimed'"""),
            {"id": held.shard_id, "token": held.token, "error": error[:2000], "max": max_attempts})


class LeaseKeeper:
    """Renews a claim's lease in the background; `lost` is set when the claim is no longer ours."""

    def __init__(self, engine: Engine, held: Claim, lease_seconds: float) -> None:
        self.engine, self.held, self.lease_seconds = engine, held, lease_seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{held.shard_index}")

    def _run(self) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        while not self._stop.wait(interval):
            try:
                if not renew(self.engine, self.held, self.lease_seconds):
                    self.lost.set()
                    return
            except OperationalError:
                continue  # the database is away for a moment: try again; the lease has slack for this

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ============================================================================================== writing


class _HashingFile:
    """A write-only file wrapper that hashes and counts what passes through."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()
        self.size = 0

    def write(self, data) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.md5.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()


class SampleTarWriter:
    """Writes samples as plain ustar members, headers built by `tarfile` with fixed metadata.

    Equivalent to webdataset's TarWriter with a fixed mtime (members sorted by extension, mode 0444), minus its
    per-member stream overhead, which at 13 members a sample was a tenth of the write stage.
    """

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, key: str, members: dict[str, bytes]) -> list[tuple[str, int, int]]:
        """Write one sample; returns (extension, data offset, size) per member, in tar order."""
        placed = []
        for extension in sorted(members):
            data = members[extension]
            info = tarfile.TarInfo(f"{key}.{extension}")
            info.size, info.mtime, info.mode = len(data), FIXED_MTIME, 0o444
            info.uname = info.gname = TAR_USER
            self.stream.write(info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict"))
            placed.append((extension, self.stream.tell(), len(data)))
            self.stream.write(data)
            padding = -len(data) % tarfile.BLOCKSIZE
            if padding:
                self.stream.write(b"\0" * padding)
        return placed

    def close(self) -> None:
        """End-of-archive: two zero blocks, then zeros up to a whole tar record, as tarfile does."""
        self.stream.write(b"\0" * (2 * tarfile.BLOCKSIZE))
        remainder = self.stream.tell() % tarfile.RECORDSIZE
        if remainder:
            self.stream.write(b"\0" * (tarfile.RECORDSIZE - remainder))


MEMBER_QUERY = """
    SELECT m.position, i.id, i.source, i.path, i.member_offset, i.byte_size, i.eol_content_id, i.eol_page_id,
           i.inat21_filename, i.inat21_cls_name, i.inat21_cls_num, i.bioscan_part, i.bioscan_filename,
           t.kingdom, t.phylum, t."class", t."order", t.family, t.genus, t.species,
           t.scientific_name, t.taxonomic_name, t.tagged_name, t.common_name,
           t.class_index_kingdom, t.class_index_phylum, t.class_index_class, t.class_index_order,
           t.class_index_family, t.class_index_genus, t.class_index_species
    FROM shard_members AS m
    JOIN images AS i ON i.id = m.image_id
    JOIN taxa AS t ON t.id = i.taxon_id
    WHERE m.shard_id = :shard
    ORDER BY m.position"""


def sample_members(record, plan: Plan, jpeg: bytes) -> dict[str, bytes]:
    """The tar members of one sample (without `__key__`): jpg, json, txt and the ten caption fields."""
    (_, image_id, source, _, _, _, content_id, page_id, inat_file, inat_name, inat_num, part, bioscan_file,
     *rest) = record
    ranks, (scientific, taxonomic, tagged, common), indices = rest[:7], rest[7:11], rest[11:18]
    fields = naming.captions(scientific, taxonomic, tagged, common)
    shown = naming.display(tuple(ranks))
    catalog_record = {
        "treeoflife_id": image_id, "source": source,
        "eol_content_id": content_id, "eol_page_id": page_id, "bioscan_part": part,
        "bioscan_filename": bioscan_file, "inat21_filename": inat_file, "inat21_cls_name": inat_name,
        "inat21_cls_num": inat_num,
        **dict(zip(naming.RANK_NAMES, shown, strict=True)),
        "scientific_name": scientific, "taxonomic_name": taxonomic, "common": fields["common_name.txt"],
        "class_index": list(indices),
    }
    members = {extension: value.encode("utf-8") for extension, value in fields.items()}
    members["jpg"] = jpeg
    members["json"] = json.dumps(catalog_record, sort_keys=True, ensure_ascii=False,
                                 separators=(",", ":")).encode("utf-8")
    members["txt"] = fields[f"{plan.txt_field}.txt"].encode("utf-8")
    return members


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_stale_temporaries(directory: Path, final_name: str, keep: str) -> None:
    for stale in directory.glob(f".{final_name}.*.tmp"):
        if stale.name != keep:
            stale.unlink(missing_ok=True)


@dataclass
class ShardOutcome:
    """What writing one shard did."""

    shard_index: int
    status: str  # done, lost, failed, released
    samples: int = 0
    errors: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class WorkerContext:
    """What a worker needs besides the claim: catalog, plan, reader, settings, stop signals."""

    engine: Engine
    plan: Plan
    out_dir: Path
    reader: object
    worker: str
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_attempts: int = 3
    stop: threading.Event = field(default_factory=threading.Event)
    abandon: threading.Event = field(default_factory=threading.Event)
    timings: dict[str, float] | None = None  # seconds per step, for the write benchmark


def write_shard(context: WorkerContext, held: Claim) -> ShardOutcome:
    """Write one claimed shard atomically and commit its manifest (see the module docstring)."""
    started = time.monotonic()
    final = context.out_dir / held.path
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{held.token}.tmp")
    index_final = final.with_suffix(".idx")
    index_temporary = index_final.with_name(f".{index_final.name}.{held.token}.tmp")
    _remove_stale_temporaries(final.parent, final.name, temporary.name)
    _remove_stale_temporaries(final.parent, index_final.name, index_temporary.name)
    records = with_retries(_members, context.engine, held.shard_id)
    errors: list[tuple[str, str]] = []
    index_lines: list[str] = []
    written = 0
    outcome = ShardOutcome(held.shard_index, "done")
    with LeaseKeeper(context.engine, held, context.lease_seconds) as keeper:
        try:
            with open(temporary, "wb") as raw:
                hashing = _HashingFile(raw)
                writer = SampleTarWriter(hashing)
                for record in records:
                    if keeper.lost.is_set() or context.abandon.is_set():
                        break
                    image_id = record[1]
                    step = time.perf_counter()
                    try:
                        data = context.reader.read(record[2], record[3], record[4], record[5])
                        if context.timings is not None:
                            context.timings["read"] = context.timings.get("read", 0.0) + time.perf_counter() - step
                        jpeg = prepare(data, context.plan.target, context.timings)
                    except ImageProblem as exc:
                        errors.append((image_id, str(exc)))
                        continue
                    except OSError as exc:
                        errors.append((image_id, f"unreadable: {exc.strerror or exc}"))
                        continue
                    members = sample_members(record, context.plan, jpeg)
                    step = time.perf_counter()
                    placed = writer.write(image_id, members)
                    if context.timings is not None:
                        context.timings["tar"] = context.timings.get("tar", 0.0) + time.perf_counter() - step
                    index_lines.append(" ".join(f"{extension} {offset} {size} {image_id}.{extension}"
                                                for extension, offset, size in placed))
                    written += 1
                writer.close()
                raw.flush()
                os.fsync(raw.fileno())
            if keeper.lost.is_set():
                outcome.status = "lost"
            elif context.abandon.is_set():
                outcome.status = "released"
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    if outcome.status != "done":
        temporary.unlink(missing_ok=True)
        if outcome.status == "released":
            with_retries(release, context.engine, held)
        return outcome
    with open(index_temporary, "w", encoding="ascii") as handle:
        handle.write(f"v1.2 {written}\n" + "".join(line + "\n" for line in index_lines))
        handle.flush()
        os.fsync(handle.fileno())
    outcome.samples, outcome.errors = written, len(errors)
    outcome.seconds = time.monotonic() - started
    manifest = {"n_samples": written, "n_bytes": hashing.size, "sha256": hashing.sha256.hexdigest(),
                "md5": hashing.md5.hexdigest(), "duration_s": outcome.seconds}
    if not with_retries(_commit, context, held, temporary, final, index_temporary, index_final, manifest, errors):
        temporary.unlink(missing_ok=True)
        index_temporary.unlink(missing_ok=True)
        outcome.status = "lost"
    return outcome


def _members(engine: Engine, shard_id: int) -> list:
    with engine.connect() as connection:
        return connection.execute(text(MEMBER_QUERY), {"shard": shard_id}).all()


def _commit(context: WorkerContext, held: Claim, temporary: Path, final: Path, index_temporary: Path,
            index_final: Path, manifest: dict, errors: list[tuple[str, str]]) -> bool:
    """Rename into place and record the manifest, only while holding a lock on our still-valid claim."""
    with context.engine.begin() as connection:
        lock = " FOR UPDATE" if connection.dialect.name == "postgresql" else ""
        still_ours = connection.execute(text(
            f"SELECT id FROM shards WHERE id = :id AND claim_token = :token AND state = 'claimed'{lock}"),
            {"id": held.shard_id, "token": held.token}).first()
        if still_ours is None:
            return False
        if temporary.exists():
            os.replace(index_temporary, index_final)
            os.replace(temporary, final)
            _fsync_directory(final.parent)
        elif not (final.exists() and final.stat().st_size == manifest["n_bytes"]):
            # A retry after the connection dropped between the rename and the commit finds the file in place.
            raise OSError(f"{temporary.name} vanished before its shard was recorded")
        connection.execute(text("DELETE FROM image_errors WHERE shard_id = :id"), {"id": held.shard_id})
        if errors:
            connection.execute(text(
                "INSERT INTO image_errors (image_id, shard_id, stage, reason) VALUES (:image, :shard, 'write', :r)"),
                [{"image": image, "shard": held.shard_id, "r": reason} for image, reason in errors])
        connection.execute(text("""
            UPDATE shards SET state = 'done', n_samples = :n_samples, n_bytes = :n_bytes, sha256 = :sha256,
                   md5 = :md5, duration_s = :duration_s, done_at = :done_at, error = NULL, lease_until = NULL
            WHERE id = :id AND claim_token = :token"""),
            {**manifest, "done_at": time.time(), "id": held.shard_id, "token": held.token})
    return True


# ============================================================================================== workers


@dataclass
class WorkerStats:
    """What one worker did, for the summary."""

    worker: str
    shards: int = 0
    samples: int = 0
    errors: int = 0
    lost: int = 0
    failed: int = 0
    claims: int = 0
    seconds: float = 0.0
    slowest_shard_s: float = 0.0

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def unfinished(engine: Engine, plan_id: int) -> tuple[int, float | None]:
    """(shards neither done nor failed, the earliest lease expiry among claimed ones)."""
    with engine.connect() as connection:
        count, earliest = connection.execute(text(
            "SELECT COUNT(*), MIN(CASE WHEN state = 'claimed' THEN lease_until END) FROM shards "
            "WHERE plan_id = :p AND state IN ('pending', 'claimed')"), {"p": plan_id}).one()
    return int(count), earliest


def run_worker(context: WorkerContext, poll_seconds: float = 2.0,
               should_claim: Callable[[WorkerStats], bool] | None = None) -> WorkerStats:
    """Claim and write shards until the plan is finished (or `stop` is set, or `should_claim` says no)."""
    stats = WorkerStats(context.worker)
    started = time.monotonic()
    while not context.stop.is_set():
        if should_claim is not None and not should_claim(stats):
            break
        held = with_retries(claim, context.engine, context.plan.id, context.worker, context.lease_seconds,
                            context.max_attempts)
        if held is None:
            remaining, earliest = with_retries(unfinished, context.engine, context.plan.id)
            if remaining == 0:
                break
            wait = poll_seconds if earliest is None else min(poll_seconds, max(0.05, earliest - time.time()))
            context.stop.wait(wait)
            continue
        stats.claims += 1
        try:
            outcome = write_shard(context, held)
        except Exception as exc:  # a shard-level failure (unreadable archive, full disk): count the attempt
            with_retries(fail_attempt, context.engine, held, f"{type(exc).__name__}: {exc}", context.max_attempts)
            stats.failed += 1
            continue
        if outcome.status == "done":
            stats.shards += 1
            stats.samples += outcome.samples
            stats.errors += outcome.errors
            stats.slowest_shard_s = max(stats.slowest_shard_s, outcome.seconds)
        elif outcome.status == "lost":
            stats.lost += 1
        elif outcome.status == "released":
            break
    stats.seconds = time.monotonic() - started
    return stats


# ============================================================================================== status


@dataclass
class PlanStatus:
    """Counts of a plan's shards by state, samples written, rate and ETA."""

    plan: Plan
    states: dict[str, int]
    samples_written: int
    images_per_second: float
    eta_seconds: float | None
    workers: list[tuple[str, int, int]]  # worker, shards done, samples
    failed: list[tuple[int, str]]


def status(engine: Engine, name: str) -> PlanStatus:
    """The state of plan `name` (readable while workers run)."""
    plan = get_plan(engine, name)
    with engine.connect() as connection:
        states = dict.fromkeys(("pending", "claimed", "done", "failed"), 0)
        states.update({state: count for state, count in connection.execute(text(
            "SELECT state, COUNT(*) FROM shards WHERE plan_id = :p GROUP BY state"), {"p": plan.id})})
        samples, first_done, last_done = connection.execute(text(
            "SELECT COALESCE(SUM(n_samples), 0), MIN(done_at - duration_s), MAX(done_at) "
            "FROM shards WHERE plan_id = :p AND state = 'done'"),
            {"p": plan.id}).one()
        workers = [tuple(row) for row in connection.execute(text(
            "SELECT worker, COUNT(*), SUM(n_samples) FROM shards WHERE plan_id = :p AND state = 'done' "
            "GROUP BY worker ORDER BY worker"), {"p": plan.id})]
        failed = [tuple(row) for row in connection.execute(text(
            "SELECT shard_index, error FROM shards WHERE plan_id = :p AND state = 'failed' ORDER BY shard_index"),
            {"p": plan.id})]
    elapsed = (last_done - first_done) if first_done is not None and last_done is not None else 0.0
    rate = samples / elapsed if elapsed > 0 else 0.0
    remaining = plan.n_samples - samples
    eta = remaining / rate if rate > 0 else None
    return PlanStatus(plan, states, int(samples), rate, eta, workers, failed)


def write_shard_index(engine: Engine, plan: Plan, out_dir: Path) -> Path | None:
    """Write the wids `shardindex.json` of a finished plan (None while shards are not all done)."""
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT path, n_samples, n_bytes, md5, state FROM shards WHERE plan_id = :p ORDER BY shard_index"),
            {"p": plan.id}).all()
    if not rows or any(row[4] != "done" for row in rows):
        return None
    index = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": plan.name,
             "shardlist": [{"url": path, "nsamples": n, "filesize": size, "md5sum": md5}
                           for path, n, size, md5, _ in rows]}
    target = out_dir / "shardindex.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".shardindex.json.{os.getpid()}.tmp")
    partial.write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, target)
    return target
