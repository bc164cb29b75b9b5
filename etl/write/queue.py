"""The shard queue: the `shards` table, where a plan's shards wait, are claimed, and record their manifests.

This is the only code that reads or writes `shards`; its statements are the named queries of `queue.sql`.
A claim carries a lease the worker renews while it writes; an expired lease can be claimed again, and a shard
whose last allowed attempt expired is marked failed. A shard is done only through `commit`, which moves the
file into place while holding a row lock on the still-valid claim and records the manifest in the same
transaction: a worker that lost its lease can neither replace the file nor mark it done.

On PostgreSQL, through an engine, an operation that is one statement (a claim, a renewal, a release, a read) is
sent alone in autocommit: one round trip, where BEGIN, the statement and COMMIT (or the ROLLBACK that ends a
read) took three, and a claim took five. Every round trip is a wait for the server and, in a worker process with
a lease thread, for the GIL again, so on a busy node the claim latency grew with their number (bench/claims).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, TypeVar, get_args

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from etl import db, resources
from etl.write.tar import SampleRecord


class PlanTotals(Protocol):
    """What the queue needs to know of a plan (an `etl.plan.Plan` is one), so that it need not import the
    plan stage, which imports it to queue a new plan's shards."""

    id: int
    name: str
    n_shards: int
    n_samples: int

ShardState = Literal["pending", "claimed", "done", "failed"]
SHARD_STATES: tuple[ShardState, ...] = get_args(ShardState)
QUERIES = resources.named_queries("write/queue.sql")
# A claim (see claim_next in queue.sql): on SQLite two statements in one transaction; on PostgreSQL one, the
# failing of exhausted shards in the WITH of the claim itself.
CLAIM_SQLITE = QUERIES["claim_next"].format(skip_locked="", no_wal_wait="")
CLAIM_PG = (f"WITH exhausted AS (\n{QUERIES['fail_exhausted']}\nRETURNING id\n)\n"
            + QUERIES["claim_next"].format(
                skip_locked=" FOR UPDATE SKIP LOCKED",
                no_wal_wait="\n  AND set_config('synchronous_commit', 'off', true) = 'off'"))

T = TypeVar("T")


def _bind_of(operation: Callable[..., object], args: Sequence[object]) -> Engine | Connection | None:
    """The catalog an operation works on: its queue's, or its first engine or connection argument."""
    owner = getattr(operation, "__self__", None)
    bind = getattr(owner, "bind", None)
    if isinstance(bind, Engine | Connection):
        return bind
    return next((arg for arg in args if isinstance(arg, Engine | Connection)), None)


def with_retries(operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a catalog operation, waiting out the catalog's absence (the server restarting or refusing, the
    session killed, too many clients, another schema revision) with backoff up to the engine's budget
    (`etl.db.wait_out`; past it, `DatabaseUnavailable`, exit 4).

    Each queue operation is one transaction, so a retry either redoes it whole or finds it already done.
    """
    bind = _bind_of(operation, args)
    if bind is None:
        return db.wait_out(operation, *args, budget=db.DEFAULT_WAIT_SECONDS, database="the catalog", **kwargs)
    return db.retrying(bind, operation, *args, **kwargs)


class Claim(NamedTuple):
    """A shard a worker holds: its row, the token that proves the claim, and the attempt it is."""

    shard_id: int
    shard_index: int
    path: str
    token: str
    attempts: int
    n_planned: int


class Manifest(NamedTuple):
    """What a written shard holds, recorded when it is committed."""

    n_samples: int
    n_bytes: int
    sha256: str
    md5: str
    duration_s: float
    codec: str | None = None  # the codec stack that made its JPEGs (etl.images.CODEC_STACK)


class SkippedImage(NamedTuple):
    """An image left out of its shard, and why (recorded in `image_errors`)."""

    image_id: str
    reason: str
    planned_position: int  # its slot in the shard (shard_members.position)


class ShardRow(NamedTuple):
    """A shard's place in its plan and its manifest (None until written)."""

    id: int
    shard_index: int
    path: str
    state: ShardState
    n_planned: int
    n_samples: int | None
    n_bytes: int | None
    sha256: str | None
    md5: str | None


class WorkerShards(NamedTuple):
    """The shards one worker finished, and their samples."""

    worker: str
    shards: int
    samples: int | None


class FailedShard(NamedTuple):
    """A shard that failed for good, the attempts it had, and its last error."""

    shard_index: int
    attempts: int
    error: str | None

    def line(self) -> str:
        """One line for reports: index, attempts, last error."""
        return f"  failed shard {self.shard_index} after {plural(self.attempts, 'attempt')}: {self.error}"


class Claimed(NamedTuple):
    """A shard in a worker's hands: who, which, since when and until when its lease runs (epoch seconds)."""

    worker: str
    shard_index: int
    claimed_at: float
    lease_until: float


def plural(count: int, noun: str) -> str:
    """`1 shard`, `2 shards`, `1,000 samples`."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def images_per_second(samples: int, first_start: float | None, last_done: float | None) -> float:
    """Samples over the span from the start of the first finished shard to the end of the last one."""
    if first_start is None or last_done is None or last_done <= first_start:
        return 0.0
    return samples / (last_done - first_start)


def clock(seconds: float) -> str:
    """A duration as h:mm (rounded up to the minute, so a few seconds left never reads 0:00)."""
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes // 60}:{minutes % 60:02d}"


class WorkerRun(NamedTuple):
    """What one worker finished since a run started: shards, samples, busy seconds, image errors."""

    worker: str
    shards: int
    samples: int
    busy_seconds: float
    image_errors: int


@dataclass
class PlanStatus:
    """Counts of a plan's shards by state, samples written, rate and ETA (what `tol status` shows)."""

    plan: PlanTotals
    states: dict[ShardState, int]
    samples_written: int
    images_per_second: float
    eta_seconds: float | None
    workers: list[WorkerShards]
    failed: list[FailedShard]

    def lines(self, *, detail: bool = False) -> list[str]:
        """What `tol status` prints: one line for the plan; with `detail`, its workers and failed shards."""
        s = self.states
        eta = f", ETA {clock(self.eta_seconds)}" if self.eta_seconds else ""
        out = [f"{self.plan.name}: {s['done']}/{plural(self.plan.n_shards, 'shard')} done, {s['claimed']} claimed, "
               f"{s['pending']} pending, {s['failed']} failed; {self.samples_written:,}/"
               f"{self.plan.n_samples:,} samples, {self.images_per_second:,.1f} images/s{eta}"]
        if detail:
            out += [f"  {worker}: {plural(count, 'shard')}, {plural(samples or 0, 'sample')}"
                    for worker, count, samples in self.workers]
            out += [failed.line() for failed in self.failed]
        return out


class LiveClaims(NamedTuple):
    """Claims whose lease has not run out: how many, one worker holding one, and when the last lease ends."""

    claimed: int
    worker: str | None
    until: float | None


class ShardQueue:
    """The `shards` rows of a catalog, through an engine (each call its own transaction) or a connection (calls
    join the caller's transaction, as plan creation does)."""

    def __init__(self, bind: Engine | Connection) -> None:
        self.bind = bind

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        if isinstance(self.bind, Connection):
            yield self.bind
        else:
            with self.bind.begin() as connection:
                yield connection

    def _alone(self) -> Engine | None:
        """The engine through which a one-statement operation is sent alone, in autocommit: PostgreSQL's (a
        connection bind joins its caller's transaction; SQLite's writes need BEGIN IMMEDIATE); else None."""
        if isinstance(self.bind, Engine) and self.bind.dialect.name == "postgresql":
            return self.bind
        return None

    @contextmanager
    def _statement(self) -> Iterator[Connection]:
        """A connection for an operation that is one statement, so a transaction by itself: in autocommit where
        `_alone` (no BEGIN or COMMIT round trip), else `_transaction`."""
        engine = self._alone()
        if engine is None:
            with self._transaction() as connection:
                yield connection
            return
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        if isinstance(self.bind, Connection):
            yield self.bind
        else:
            with self.bind.connect() as connection:
                if self._alone():  # read committed: each statement sees its own snapshot, in a transaction or not
                    connection.execution_options(isolation_level="AUTOCOMMIT")
                yield connection

    # ------------------------------------------------------------------------------------------ plan creation

    def add_shards(self, plan_id: int, paths: Sequence[str], planned: Sequence[int]) -> None:
        """Queue a new plan's shards, pending: shard i at `paths[i]` with `planned[i]` samples."""
        with self._transaction() as connection:
            connection.execute(text(QUERIES["add_shards"]), [
                {"plan": plan_id, "index": index, "path": path, "planned": count}
                for index, (path, count) in enumerate(zip(paths, planned, strict=True))])

    def add_members(self, plan_id: int, per_shard: int, ranked_sql: str, params: dict[str, object]) -> None:
        """Fill the plan's shards, `per_shard` samples each, from `ranked_sql`: a query of (image_id, n), n
        numbering the plan's images from 1 in their planned order, with its `params`.

        `shard_members.shard_id` has no foreign key (migration 0017: PostgreSQL checked it row by row, a third
        of the insert). This queue is the only writer of shards and members, and a member's shard id comes from
        joining the plan's own `shards` rows, so every member names an existing shard; an image ranked past the
        last shard gets no row."""
        with self._transaction() as connection:
            connection.execute(text(QUERIES["add_members"].format(ranked=ranked_sql)),
                               {**params, "plan": plan_id, "per": per_shard})

    # ------------------------------------------------------------------------------------------ claims

    def claim(self, plan_id: int, worker: str, lease_seconds: float, max_attempts: int) -> Claim | None:
        """Claim the next pending (or lease-expired) shard of the plan, or None if there is none now."""
        token = str(uuid.uuid4())
        now = time.time()
        params = {"plan": plan_id, "now": now, "token": token, "worker": worker, "lease": now + lease_seconds,
                  "max": max_attempts}
        with self._statement() as connection:
            if connection.dialect.name == "postgresql":
                # One statement, one round trip; it also turns off the wait for its WAL flush (see queue.sql).
                row = connection.execute(text(CLAIM_PG), params).first()
            else:
                connection.execute(text(QUERIES["fail_exhausted"]), params)
                row = connection.execute(text(CLAIM_SQLITE), params).first()
        if row is None:
            return None
        return Claim(row.id, row.shard_index, row.path, token, row.attempts, row.n_planned)

    def renew(self, held: Claim, lease_seconds: float) -> bool:
        """Extend the lease; False if the claim is no longer ours."""
        with self._statement() as connection:
            return connection.execute(text(QUERIES["renew"]), {
                "lease": time.time() + lease_seconds, "id": held.shard_id, "token": held.token}).rowcount == 1

    def release(self, held: Claim, error: str | None = None, *, count_attempt: bool = False) -> None:
        """Give a claim back: pending again (the attempt is not counted unless `count_attempt`)."""
        with self._statement() as connection:
            connection.execute(text(QUERIES["release"]), {
                "id": held.shard_id, "token": held.token, "error": error, "uncounted": 0 if count_attempt else 1})

    def fail_attempt(self, held: Claim, error: str, max_attempts: int) -> None:
        """An attempt failed: the shard goes back to pending, or to failed after `max_attempts`."""
        with self._statement() as connection:
            connection.execute(text(QUERIES["fail_attempt"]), {
                "id": held.shard_id, "token": held.token, "error": error[:2000], "max": max_attempts})

    def unfinished(self, plan_id: int) -> tuple[int, float | None]:
        """(shards neither done nor failed, the earliest lease expiry among claimed ones)."""
        with self._reading() as connection:
            count, earliest = connection.execute(text(QUERIES["unfinished"]), {"plan": plan_id}).one()
        return int(count), earliest

    def commit(self, held: Claim, manifest: Manifest, skipped: Sequence[SkippedImage],
               move_into_place: Callable[[], None]) -> bool:
        """Finish a claimed shard: run `move_into_place` (the rename of its file) and record the manifest and the
        skipped images, all while holding a row lock on the claim. False, with nothing moved, if the claim is no
        longer ours."""
        with self._transaction() as connection:
            lock = "FOR UPDATE" if connection.dialect.name == "postgresql" else ""
            still_ours = connection.execute(text(QUERIES["lock_own_claim"].format(lock=lock)),
                                            {"id": held.shard_id, "token": held.token}).first()
            if still_ours is None:
                return False
            move_into_place()
            connection.execute(text(QUERIES["clear_image_errors"]), {"shard": held.shard_id})
            if skipped:
                connection.execute(text(QUERIES["record_image_error"]), [
                    {"image": image.image_id, "shard": held.shard_id, "reason": image.reason,
                     "slot": image.planned_position} for image in skipped])
            connection.execute(text(QUERIES["record_manifest"]), {
                **manifest._asdict(), "done_at": time.time(), "id": held.shard_id, "token": held.token})
        return True

    def reset(self, shard_ids: Sequence[int], reason: str = "reset by verify") -> None:
        """Set shards back to pending with no attempt counted and no manifest, to be written again."""
        if not shard_ids:
            return
        with self._transaction() as connection:
            connection.execute(text(QUERIES["reset"]), [{"id": shard_id, "reason": reason} for shard_id in shard_ids])

    # ------------------------------------------------------------------------------------------ reading

    def samples(self, shard_id: int) -> list[SampleRecord]:
        """The samples planned for a shard, in order."""
        with self._reading() as connection:
            result = connection.execute(text(QUERIES["shard_samples"]), {"shard": shard_id})
            # Positional construction is 10-20x cheaper per sample than by name; the query's column names are
            # checked against the record's fields once per shard, so a reordered query cannot shift values.
            if tuple(result.keys()) != SampleRecord._fields:
                raise RuntimeError(f"shard_samples columns {tuple(result.keys())} are not SampleRecord's fields")
            return [SampleRecord(*row) for row in result]

    def skipped_images(self, shard_id: int) -> set[str]:
        """The images the writer of a shard left out (undecodable, unreadable)."""
        with self._reading() as connection:
            return set(connection.execute(text(QUERIES["shard_image_errors"]), {"shard": shard_id}).scalars())

    def shards(self, plan_id: int) -> list[ShardRow]:
        """Every shard of a plan, in order, with its manifest."""
        with self._reading() as connection:
            return [ShardRow(*row) for row in connection.execute(text(QUERIES["manifests"]), {"plan": plan_id})]

    def states(self, plan_id: int) -> dict[ShardState, int]:
        """How many of the plan's shards are in each state."""
        with self._reading() as connection:
            counts: dict[str, int] = dict(connection.execute(text(QUERIES["status_states"]), {"plan": plan_id}).all())
        return {state: counts.get(state, 0) for state in SHARD_STATES}

    def status(self, plan: PlanTotals) -> PlanStatus:
        """The state of a plan (readable while workers run): the rate is that of its finished shards so far."""
        params = {"plan": plan.id, "since": 0}
        states = self.states(plan.id)
        with self._reading() as connection:
            samples, first_done, last_done = connection.execute(text(QUERIES["status_written"]), params).one()
            workers = [WorkerShards(*row) for row in connection.execute(text(QUERIES["status_workers"]), params)]
        rate = images_per_second(samples, first_done, last_done)
        eta = (plan.n_samples - samples) / rate if rate > 0 else None
        return PlanStatus(plan, states, int(samples), rate, eta, workers, self.failed(plan.id))

    def failed(self, plan_id: int) -> list[FailedShard]:
        """The plan's failed shards, with attempts and last error."""
        with self._reading() as connection:
            return [FailedShard(*row) for row in connection.execute(text(QUERIES["status_failed"]),
                                                                    {"plan": plan_id})]

    def samples_written(self, plan_id: int, since: float = 0) -> int:
        """Samples in the plan's done shards (those finished since `since`, epoch seconds)."""
        with self._reading() as connection:
            samples, _, _ = connection.execute(text(QUERIES["status_written"]),
                                               {"plan": plan_id, "since": since}).one()
        return int(samples)

    def claims(self, plan_id: int) -> list[Claimed]:
        """The plan's claimed shards: worker, shard index, claimed at, lease until (epoch seconds)."""
        with self._reading() as connection:
            rows = connection.execute(text(QUERIES["watch_claims"]), {"plan": plan_id}).all()
        return [Claimed(row[0], int(row[1]), float(row[2] or 0), float(row[3] or 0)) for row in rows]

    def rate_since(self, plan_id: int, since: float) -> float:
        """The rate of the shards finished since `since`, computed as `status` computes it."""
        with self._reading() as connection:
            samples, first, last = connection.execute(text(QUERIES["status_written"]),
                                                      {"plan": plan_id, "since": since}).one()
        return images_per_second(samples, first, last)

    def live_claims(self, *, hold: bool = False) -> LiveClaims:
        """Claims of any plan whose lease has not run out (a catalog without a `shards` table has none). With
        `hold`, inside a transaction, no claim can be taken, renewed or committed until it ends (PostgreSQL
        locks the table; SQLite's write transaction excludes every other writer already)."""
        with self._transaction() as connection:
            if not inspect(connection).has_table("shards"):
                return LiveClaims(0, None, None)
            if hold and connection.dialect.name == "postgresql":
                connection.execute(text(QUERIES["lock_claims"]))
            count, worker, until = connection.execute(text(QUERIES["live_claims"]), {"now": time.time()}).one()
        return LiveClaims(int(count), worker, until)

    def retry_failed(self, plan_id: int) -> int:
        """Set the plan's failed shards back to pending with no attempt counted; how many there were."""
        with self._transaction() as connection:
            return connection.execute(text(QUERIES["retry_failed"]), {"plan": plan_id}).rowcount

    def reopen_done(self, shard_ids: Sequence[int], reason: str) -> int:
        """Set done shards back to pending (no attempt counted, no manifest), to be written again; how many."""
        if not shard_ids:
            return 0
        with self._transaction() as connection:
            return sum(connection.execute(text(QUERIES["repair_reset"]), {"id": shard_id, "reason": reason}).rowcount
                       for shard_id in shard_ids)

    def live_tokens(self, plan_id: int) -> set[str]:
        """The claim tokens of the plan's shards in hand whose lease has not run out."""
        with self._reading() as connection:
            return set(connection.execute(text(QUERIES["live_tokens"]),
                                          {"plan": plan_id, "now": time.time()}).scalars())

    def done_image_errors(self, plan_id: int) -> list[tuple[int, str]]:
        """(shard id, reason) of every image error recorded by the plan's done shards."""
        with self._reading() as connection:
            return [(int(shard), str(reason)) for shard, reason in
                    connection.execute(text(QUERIES["done_image_errors"]), {"plan": plan_id})]

    def finished_since(self, plan_id: int, since: float) -> list[WorkerRun]:
        """Per worker, what it finished of the plan since the Unix time `since`."""
        with self._reading() as connection:
            return [WorkerRun(*row) for row in connection.execute(
                text(QUERIES["summary_workers"]), {"plan": plan_id, "since": since})]
