"""One write worker: claim a shard, write it under a temporary name, commit it, repeat.

Every worker, a local process or an MPI rank, runs the same loop (`claim_and_write`) until no shard of the
plan is left unfinished. Nothing in it waits on another worker, so a dead worker cannot hang the others: its
claims expire and they take them over.

On SIGTERM (Slurm's warning before the time limit, or scancel) a worker stops claiming, finishes the shard in
hand if it can within the grace time, otherwise abandons it and releases the claim without counting an
attempt, and exits 0. A worker also stops claiming when the job's end (SLURM_JOB_END_TIME) is nearer than
the time a shard takes.

Every failure is classified (etl/write/faults.py). An image's is recorded and the image skipped. The
environment's (a source root gone, a full cache or output disk) gives the shard back with no attempt counted
and waits with backoff, up to `environment_budget_seconds`, then exits 4 naming the path. A shard's counts an
attempt; `breaker_failures` of them in a row of one kind stop the worker (exit 3), so one cause never drains
the queue.

Nothing blocks for ever: a shard's samples are read, decoded and written in a helper thread that gives a sign
of life once an image, with a time limit counted from the last one (`TimedCalls`); an image that stalls past
it is skipped and the rest of the shard goes on in a fresh thread. The main thread keeps listening for
SIGTERM meanwhile, and the lease is renewed only while the writer makes progress.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue as queues
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from etl import db, sources
from etl.atomic import fsync_directory, remove_stale_temporaries, temporary_name
from etl.errors import EnvironmentFault, TolError, WorkLeftError
from etl.images import CODEC_STACK, ImageProblem, Target, prepare
from etl.plan import Plan, get_plan
from etl.reader import ImageReader, changed_since_ingest, source_roots
from etl.sources.common import NotRegularFile
from etl.write.faults import (
    EnvironmentProblem,
    Fault,
    Probe,
    ReadTimeout,
    Where,
    classify,
    is_passing,
    passing_errors_exceeded,
    signature,
)
from etl.write.queue import Claim, Manifest, ShardQueue, SkippedImage, with_retries
from etl.write.tar import HashingFile, SampleLayout, SampleRecord, SampleTarWriter, idx_text

if TYPE_CHECKING:
    from etl.config import Config

DEFAULT_LEASE_SECONDS = 120.0
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_ENVIRONMENT_BUDGET = 600.0
DEFAULT_BREAKER_FAILURES = 3
DEFAULT_PASSING_ERROR_PERCENT = 20.0
MAX_BACKOFF_SECONDS = 30.0
T = TypeVar("T")
Outcome = Literal["done", "lost", "released"]  # written; claim lost to another worker; given back on a signal

# What signal.signal returns and accepts: a Python handler, SIG_DFL/SIG_IGN, or None (set outside Python).
SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


@dataclass(frozen=True)
class WriteOptions:
    """How workers run: catalog URL, plan, where sources and caches are, lease and retry settings."""

    database_url: str
    plan_name: str
    roots: dict[str, Path | None]
    cache_dir: Path
    read_settings: dict[str, object] = field(default_factory=dict)  # the sources' READ_SETTINGS by name
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_attempts: int = 3
    grace_seconds: float = 60.0
    poll_seconds: float = 2.0
    db_wait_seconds: float = db.DEFAULT_WAIT_SECONDS  # how long an unavailable catalog is waited for
    read_timeout: float = DEFAULT_READ_TIMEOUT
    environment_budget: float = DEFAULT_ENVIRONMENT_BUDGET
    breaker_failures: int = DEFAULT_BREAKER_FAILURES
    passing_error_percent: float = DEFAULT_PASSING_ERROR_PERCENT

    @classmethod
    def from_settings(cls, settings: Config, plan_name: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                      max_attempts: int = 3, grace_seconds: float = 60.0) -> WriteOptions:
        """The options for `plan_name` from the effective configuration (database, source roots, cache, fault
        budgets)."""
        return cls(
            database_url=settings.database_url, plan_name=plan_name,
            roots={source.NAME: settings.path(source.ROOT.name) for source in sources.SOURCES},
            read_settings={setting.name: settings.get_value(setting.name)
                           for source in sources.SOURCES for setting in source.READ_SETTINGS},
            cache_dir=Path(settings.get_value("cache_dir")).resolve(),
            lease_seconds=lease_seconds, max_attempts=max_attempts, grace_seconds=grace_seconds,
            db_wait_seconds=float(settings.get_value("db_wait_seconds")),
            read_timeout=float(settings.get_value("read_timeout_seconds")),
            environment_budget=float(settings.get_value("environment_budget_seconds")),
            breaker_failures=int(settings.get_value("breaker_failures")),
            passing_error_percent=float(settings.get_value("passing_error_percent")))


def worker_name(rank: int | None = None, size: int | None = None) -> str:
    """`host:pid` (with `:rank/size` under MPI): who holds a claim."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}:{rank}/{size}" if rank is not None else name


class LeaseKeeper:
    """Renews a claim's lease in the background while the writer makes progress; `lost` is set when the claim is
    no longer ours. With `last_progress` (a monotonic time) and `stall_seconds`, a writer silent for longer is
    stalled: the lease is left to run out, so another worker can take the shard over."""

    def __init__(self, queue: ShardQueue, held: Claim, lease_seconds: float,
                 last_progress: Callable[[], float] | None = None, stall_seconds: float | None = None) -> None:
        self.queue, self.held, self.lease_seconds = queue, held, lease_seconds
        self.last_progress, self.stall_seconds = last_progress, stall_seconds
        self.lost = threading.Event()
        self.stalled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{held.shard_index}")

    def _run(self) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        while not self._stop.wait(interval):
            if self.last_progress is not None and self.stall_seconds is not None \
                    and time.monotonic() - self.last_progress() > self.stall_seconds:
                self.stalled.set()
                continue  # no renewal while the writer makes no progress
            try:
                if not self.queue.renew(self.held, self.lease_seconds):
                    self.lost.set()
                    return
            except DBAPIError:
                continue  # the database is away for a moment: try again; the lease has slack for this

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Abandoned(Exception):
    """The worker was told to give its shard back while waiting on a read."""


# How often a waiting caller looks at its cancel flag. Each look wakes the main thread, which takes the GIL from
# the writer: looking ten times a second cost about 0.7 % of the writer's CPU time, once a second 0.06 %.
WAIT_SLICE = 1.0


class TimedCalls:
    """Runs calls in a helper thread, so that the caller can stop waiting for one: when it shows no sign of life
    (`beat`) for `limit` seconds, or when `cancel` is set (SIGTERM's grace ran out). A call given up on keeps its
    thread, as a blocked read cannot be interrupted; the next call gets a fresh thread.

    Each thread has its own pair of queues (calls in, outcomes out), so a thread given up on that returns late
    puts its outcome where no one looks. A call costs two queue operations and no lock or event of its own:
    the writer makes one per shard (and one more after each image that stalled)."""

    def __init__(self) -> None:
        self.last_beat = time.monotonic()
        self._jobs: queues.SimpleQueue[Callable[[], Any] | None] = queues.SimpleQueue()
        self._outcomes: queues.SimpleQueue[tuple[bool, Any]] = queues.SimpleQueue()
        self._start()

    def _start(self) -> None:
        self._jobs, self._outcomes = queues.SimpleQueue(), queues.SimpleQueue()
        threading.Thread(target=self._serve, args=(self._jobs, self._outcomes), daemon=True,
                         name="tol-read").start()

    @staticmethod
    def _serve(jobs: queues.SimpleQueue[Callable[[], Any] | None],
               outcomes: queues.SimpleQueue[tuple[bool, Any]]) -> None:
        while (function := jobs.get()) is not None:
            try:
                outcome: tuple[bool, Any] = (True, function())
            except BaseException as exc:  # handed to the caller, who raises it
                outcome = (False, exc)
            outcomes.put(outcome)

    def beat(self) -> None:
        """A sign of life from the running call (or from the writer between calls)."""
        self.last_beat = time.monotonic()

    def call(self, function: Callable[[], T], limit: float, cancel: threading.Event) -> T:
        """`function()`'s result (or exception); `ReadTimeout` after `limit` seconds without a beat, `Abandoned`
        when `cancel` is set first."""
        outcomes = self._outcomes
        self.beat()
        self._jobs.put(function)
        while True:
            try:  # wake for the cancel flag, or when the time limit would run out if no beat came meanwhile
                returned, value = outcomes.get(timeout=min(WAIT_SLICE, max(
                    0.01, limit - (time.monotonic() - self.last_beat))))
                break
            except queues.Empty:
                if cancel.is_set() or time.monotonic() - self.last_beat > limit:
                    self._jobs.put(None)  # the stuck thread ends if its call ever returns
                    self._start()
                    if cancel.is_set():
                        raise Abandoned() from None
                    raise ReadTimeout(f"no progress reading and decoding for {limit:g} s") from None
        self.beat()
        if not returned:
            raise value
        return cast(T, value)

    def close(self) -> None:
        """Let the helper thread end."""
        self._jobs.put(None)


@dataclass
class ShardOutcome:
    """What writing one shard did."""

    shard_index: int
    status: Outcome
    samples: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass
class WorkerContext:
    """What a worker needs besides the claim: catalog, plan, reader, settings, stop signals."""

    engine: Engine
    plan: Plan
    out_dir: Path
    reader: ImageReader
    worker: str
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_attempts: int = 3
    stop: threading.Event = field(default_factory=threading.Event)
    abandon: threading.Event = field(default_factory=threading.Event)
    timings: dict[str, float] | None = None  # seconds per step, for the write benchmark
    read_timeout: float = DEFAULT_READ_TIMEOUT
    environment_budget: float = DEFAULT_ENVIRONMENT_BUDGET
    breaker_failures: int = DEFAULT_BREAKER_FAILURES
    passing_error_percent: float = DEFAULT_PASSING_ERROR_PERCENT
    calls: TimedCalls = field(default_factory=TimedCalls)
    queue: ShardQueue = field(init=False)
    layout: SampleLayout = field(init=False)  # kept across shards: taxa recur across a plan's shards
    target: Target = field(init=False)  # the plan's, made once rather than once an image

    def __post_init__(self) -> None:
        self.queue = ShardQueue(self.engine)
        self.layout = SampleLayout(self.plan.txt_field, self.plan.caption_case)
        self.target = self.plan.target

    def time(self, step: str, since: float) -> None:
        """Add the time since `since` (perf_counter) to `step`, when timing."""
        if self.timings is not None:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - since


def _read_and_prepare(context: WorkerContext, record: SampleRecord) -> bytes | Fault:
    """The sample JPEG of one record, or the fault that kept it from being read (run in the helper thread).

    When a read fails, the image's root and unit are looked at. If both are there, the read is tried once
    more (the root may have come back between the read and the look); a file still missing next to its
    siblings is the image's fault, a missing root or unit the environment's."""
    reader, step = context.reader, time.perf_counter()

    def read() -> bytes:
        return reader.read(record.source, record.path, record.member_offset, record.byte_size)

    def fault_of(error: OSError) -> Fault:
        where = reader.locate(record.source, record.path)
        return classify(error, Where("read", reader.options.cache_dir, context.out_dir, where.root, where.unit,
                                     Probe(where.root_present, where.unit_present)))

    try:
        data = read()
    except NotRegularFile as exc:
        return classify(exc, Where("read", reader.options.cache_dir))
    except OSError as exc:
        fault = fault_of(exc)
        if fault.kind != "image":
            return fault
        try:  # the source looked whole: the root may have come back between the read and the look
            data = read()
        except OSError as again:
            return fault_of(again)
    context.time("read", step)
    return prepare(data, context.target, context.timings)


class _ShardProgress:
    """The state of a shard being written, shared by the writer thread and the caller watching it. Whatever the
    writer does to it (a sample written, an image skipped) is done under `lock` and only while `generation` is
    the writer's own, so a writer given up on that wakes up later changes nothing."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = 0
        self.position = 0  # the record being worked on
        self.index_lines: list[str] = []
        self.skipped: list[SkippedImage] = []
        self.passing = 0  # passing image errors so far

    def give_up(self) -> int:
        """End the running writer's turn; returns the position it was working on."""
        with self.lock:
            self.generation += 1
            return self.position


def _skip(context: WorkerContext, progress: _ShardProgress, record: SampleRecord, fault: Fault) -> None:
    """Record an image fault (the caller holds the lock); raises `EnvironmentProblem` for any other fault, and
    when too many passing image errors show the environment is at fault."""
    if fault.kind != "image":
        raise EnvironmentProblem(fault)
    progress.skipped.append(SkippedImage(record.image_id, fault.reason, record.position))
    progress.passing += is_passing(fault.reason)
    seen = progress.position + 1
    if passing_errors_exceeded(progress.passing, seen, context.passing_error_percent):
        root = context.reader.roots.get(record.source)
        raise EnvironmentProblem(Fault(
            "environment", f"{progress.passing} of the first {seen} images of the shard failed to read "
            f"(last: {fault.reason})", str(root) if root else record.source))


def _write_from(context: WorkerContext, records: list[SampleRecord], start: int, stream: HashingFile,
                lost: threading.Event, progress: _ShardProgress, generation: int) -> None:
    """Write the samples from `start` on (run in the helper thread, beating once an image), until done, the
    claim is lost, the shard abandoned, or this writer given up on."""
    layout = context.layout
    roots, beat, abandon = context.reader.roots, context.calls.beat, context.abandon
    for position in range(start, len(records)):
        record = records[position]
        with progress.lock:
            if progress.generation != generation:
                return
            progress.position = position
        if lost.is_set() or abandon.is_set():
            return
        beat()
        changed = changed_since_ingest(roots, record)
        if changed is not None:  # never publish bytes the catalog did not see
            with progress.lock:
                if progress.generation != generation:
                    return
                progress.skipped.append(SkippedImage(record.image_id, changed, record.position))
            continue
        try:
            result = _read_and_prepare(context, record)
        except ImageProblem as exc:
            result = classify(exc, Where("read", context.reader.options.cache_dir))
        with progress.lock:
            if progress.generation != generation:
                return
            if isinstance(result, Fault):
                _skip(context, progress, record, result)
                continue
            step = time.perf_counter()
            progress.index_lines.append(layout.write(stream, record, result))
            context.time("tar", step)
    beat()


def _write_samples(context: WorkerContext, records: list[SampleRecord], stream: HashingFile,
                   lost: threading.Event) -> tuple[list[str], list[SkippedImage]]:
    """Write the samples into the tar until done, the claim is lost or the shard abandoned; returns the `.idx`
    lines of the samples written and the images skipped. Raises `EnvironmentProblem` on a fault of the
    environment, including too many passing image errors in the shard.

    The samples are written in one call of the helper thread (`TimedCalls`), which beats once an image: handing
    each image over between threads cost about 4 % of the writer's CPU time. When an image gives no sign of
    life for `read_timeout`, it is skipped and the rest go on in a fresh thread."""
    progress = _ShardProgress()
    start = 0
    while start < len(records):
        generation = progress.generation
        try:
            context.calls.call(functools.partial(_write_from, context, records, start, stream, lost, progress,
                                                 generation), context.read_timeout, context.abandon)
            break
        except Abandoned:
            progress.give_up()
            break
        except ReadTimeout as exc:
            position = progress.give_up()
            with progress.lock:
                _skip(context, progress, records[position],
                      classify(exc, Where("read", context.reader.options.cache_dir)))
            start = position + 1
        except BaseException:
            progress.give_up()
            raise
    return progress.index_lines, progress.skipped


def write_shard(context: WorkerContext, held: Claim) -> ShardOutcome:
    """Write one claimed shard under hidden temporary names, then commit it (see etl.write.queue). Whatever
    happens, no temporary of the shard is left behind."""
    started = time.monotonic()
    final = context.out_dir / held.path
    final.parent.mkdir(parents=True, exist_ok=True)
    index_final = final.with_suffix(".idx")
    temporary, index_temporary = temporary_name(final, held.token), temporary_name(index_final, held.token)
    remove_stale_temporaries(final, keep=temporary)
    remove_stale_temporaries(index_final, keep=index_temporary)
    records = with_retries(context.queue.samples, held.shard_id)
    outcome = ShardOutcome(held.shard_index, "done")
    try:
        context.calls.beat()
        with LeaseKeeper(context.queue, held, context.lease_seconds, lambda: context.calls.last_beat,
                         context.read_timeout + context.lease_seconds) as keeper:
            with open(temporary, "wb") as raw:
                hashing = HashingFile(raw)
                index_lines, skipped = _write_samples(context, records, hashing, keeper.lost)
                SampleTarWriter(hashing).close()
                raw.flush()
                os.fsync(raw.fileno())
            if keeper.lost.is_set():
                outcome.status = "lost"
            elif context.abandon.is_set():
                outcome.status = "released"
            else:
                with open(index_temporary, "w", encoding="ascii") as handle:
                    handle.write(idx_text(index_lines))
                    handle.flush()
                    os.fsync(handle.fileno())
        if outcome.status != "done":
            if outcome.status == "released":
                with_retries(context.queue.release, held)
            return outcome
        outcome.samples, outcome.errors = len(index_lines), len(skipped)
        outcome.seconds = time.monotonic() - started
        manifest = Manifest(n_samples=outcome.samples, n_bytes=hashing.size, sha256=hashing.sha256.hexdigest(),
                            md5=hashing.md5.hexdigest(), duration_s=outcome.seconds, codec=CODEC_STACK)

        def move_into_place() -> None:
            if temporary.exists():
                os.replace(index_temporary, index_final)
                os.replace(temporary, final)
                fsync_directory(final.parent)
            elif not (final.exists() and final.stat().st_size == manifest.n_bytes):
                # A retry after the connection dropped between the rename and the commit finds the file in place.
                raise OSError(f"{temporary.name} vanished before its shard was recorded")

        if not with_retries(context.queue.commit, held, manifest, skipped, move_into_place):
            outcome.status = "lost"
        return outcome
    finally:
        temporary.unlink(missing_ok=True)  # gone already once renamed into place
        index_temporary.unlink(missing_ok=True)


@dataclass
class WorkerStats:
    """What one worker did, for the summary."""

    worker: str
    shards: int = 0
    samples: int = 0
    errors: int = 0
    lost: int = 0
    failed: int = 0
    environment_faults: int = 0  # shards given back because of the environment
    stopped_by: str | None = None  # why the circuit breaker stopped this worker, if it did
    claims: int = 0
    seconds: float = 0.0
    slowest_shard_s: float = 0.0


class CircuitOpen(WorkLeftError):
    """A worker stopped claiming after too many shard failures of one kind in a row (exit 3); raised by an MPI
    rank that reports nothing else."""


def claim_and_write(context: WorkerContext, poll_seconds: float = 2.0,
                    should_claim: Callable[[WorkerStats], bool] | None = None) -> WorkerStats:
    """Claim and write shards until the plan is finished (or `stop` is set, or `should_claim` says no).

    Raises `EnvironmentFault` (exit 4) when a fault of the environment outlasts `environment_budget`, and stops
    (setting `stopped_by`) after `breaker_failures` shard failures of one kind in a row; either way the shards
    not written stay pending."""
    queue, plan_id = context.queue, context.plan.id
    stats = WorkerStats(context.worker)
    started = time.monotonic()
    faulty_since: float | None = None  # when the environment fault now being waited out was first met
    backoff = poll_seconds
    streak: list[str] = []  # signatures of the shard failures in a row
    while not context.stop.is_set():
        if should_claim is not None and not should_claim(stats):
            break
        held = with_retries(queue.claim, plan_id, context.worker, context.lease_seconds, context.max_attempts)
        if held is None:
            remaining, earliest = with_retries(queue.unfinished, plan_id)
            if remaining == 0:
                break
            wait = poll_seconds if earliest is None else min(poll_seconds, max(0.05, earliest - time.time()))
            context.stop.wait(wait)
            continue
        stats.claims += 1
        try:
            outcome = write_shard(context, held)
        except EnvironmentFault:  # e.g. the catalog away past its budget: not the shard's fault, no attempt
            with contextlib.suppress(DBAPIError):  # give the shard back uncounted if the catalog answers now
                queue.release(held)
            raise
        except Exception as exc:
            fault = exc.fault if isinstance(exc, EnvironmentProblem) else \
                classify(exc, Where("write", context.reader.options.cache_dir, context.out_dir))
            if fault.kind == "environment":
                # Never the shard's fault: give it back with its attempts unchanged, wait, and try again.
                with_retries(queue.release, held, f"environment: {fault.reason}"[:2000])
                stats.environment_faults += 1
                now = time.monotonic()
                faulty_since = now if faulty_since is None else faulty_since
                if now - faulty_since >= context.environment_budget:
                    raise EnvironmentFault(
                        f"{fault.resource}: {fault.reason}; still failing after {context.environment_budget:g} s "
                        f"(plan {context.plan.name}: shards left pending; fix it and run the write again)"
                    ) from None
                context.stop.wait(min(backoff, MAX_BACKOFF_SECONDS,
                                      max(0.05, faulty_since + context.environment_budget - now)))
                backoff *= 2
                continue
            with_retries(queue.fail_attempt, held, f"{type(exc).__name__}: {exc}", context.max_attempts)
            stats.failed += 1
            kind = signature(exc)
            streak = [*streak, kind] if streak and streak[-1] == kind else [kind]
            if len(streak) >= context.breaker_failures:
                stats.stopped_by = (f"{context.worker} stopped claiming after {len(streak)} shard failures in a "
                                    f"row of one kind ({kind}; last: {str(exc)[:300]}); the shards not written "
                                    "stay pending: fix the cause and run the write again")
                break
            continue
        faulty_since, backoff, streak = None, poll_seconds, []
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


# ============================================================================================== signals


def job_end_time() -> float | None:
    """The Slurm job's end as a Unix time, if known."""
    value = os.environ.get("SLURM_JOB_END_TIME")
    try:
        return float(value) if value else None
    except ValueError:
        return None


class Signals:
    """SIGTERM/SIGINT handling: stop claiming at once; abandon the shard in hand after the grace time."""

    def __init__(self, grace_seconds: float) -> None:
        self.stop = threading.Event()
        self.abandon = threading.Event()
        self.grace_seconds = grace_seconds
        self._timer: threading.Timer | None = None
        self._previous: dict[int, SignalHandler] = {}

    def install(self) -> None:
        """Handle SIGTERM and SIGINT from now on (only the main thread can)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop.is_set():
            self.abandon.set()  # a second signal: give the shard back now
            return
        self.stop.set()
        self._timer = threading.Timer(self.grace_seconds, self.abandon.set)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        """Stop the grace timer and give the signals back to whoever handled them before."""
        if self._timer is not None:
            self._timer.cancel()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def remove_stale_shard_temporaries(context: WorkerContext) -> list[Path]:
    """Delete the plan's shard temporaries left by killed workers: older than the lease, and tagged with a claim
    token no live claim holds. Returns what was deleted."""
    live = with_retries(context.queue.live_tokens, context.plan.id)
    removed: list[Path] = []
    if not context.out_dir.is_dir():
        return removed
    now = time.time()
    for partial in context.out_dir.glob(".shard-*.tmp"):
        token = partial.name.rsplit(".", 2)[-2]  # .NAME.TOKEN.tmp
        try:
            if token in live or now - partial.stat().st_mtime < context.lease_seconds:
                continue
            partial.unlink()
            removed.append(partial)
        except OSError:
            continue
    return removed


def check_codec(plan: Plan, stack: str = CODEC_STACK) -> None:
    """Refuse, in one line, to write plan `plan` with a codec stack other than the one it was planned with:
    its shards would not be the bytes its other shards (or a rerun) have."""
    if plan.codec != stack:
        raise TolError(f"plan {plan.name} was planned with codec stack {plan.codec!r} but this installation has "
                       f"{stack!r}: write it where that stack is installed, or plan it again under a new name")


def run_worker(options: WriteOptions, rank: int | None = None, size: int | None = None) -> WorkerStats:
    """One worker in this process: claim and write shards until the plan is finished or told to stop."""
    engine = db.make_engine(options.database_url, wait_seconds=options.db_wait_seconds, short_lived=True)
    signals = Signals(options.grace_seconds)
    signals.install()
    try:
        plan = with_retries(get_plan, engine, options.plan_name)
        check_codec(plan)
        calls = TimedCalls()
        reader = ImageReader(with_retries(source_roots, engine, options.roots), options.cache_dir,
                             options.read_settings, heartbeat=calls.beat, stale_seconds=options.lease_seconds)
        context = WorkerContext(engine, plan, Path(plan.out_dir), reader, worker_name(rank, size),
                                options.lease_seconds, options.max_attempts, signals.stop, signals.abandon,
                                read_timeout=options.read_timeout, environment_budget=options.environment_budget,
                                breaker_failures=options.breaker_failures,
                                passing_error_percent=options.passing_error_percent, calls=calls)
        remove_stale_shard_temporaries(context)
        end = job_end_time()

        def time_left_for_a_shard(stats: WorkerStats) -> bool:
            # Claim only if the slowest shard so far (with a margin) still fits before the job ends.
            return end is None or time.time() + 1.2 * stats.slowest_shard_s < end

        try:
            return claim_and_write(context, options.poll_seconds, should_claim=time_left_for_a_shard)
        finally:
            reader.close()
            calls.close()
    finally:
        signals.cancel()
        engine.dispose()
