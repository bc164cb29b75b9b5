"""One write worker: claim a shard, write it under a temporary name, commit it, repeat.

Every worker, a local process or an MPI rank, runs the same loop (`claim_and_write`) until no shard of the
plan is left unfinished. Nothing in it waits on another worker, so a dead worker cannot hang the others: its
claims expire and they take them over.

On SIGTERM (Slurm's warning before the time limit, or scancel) a worker stops claiming, finishes the shard in
hand if it can within the grace time, otherwise abandons it and releases the claim without counting an
attempt, and exits 0. A worker also stops claiming when the job's end (SLURM_JOB_END_TIME) is nearer than
the time a shard takes.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from etl import db, sources
from etl.atomic import fsync_directory, remove_stale_temporaries, temporary_name
from etl.errors import TolError
from etl.images import CODEC_STACK, ImageProblem, prepare
from etl.plan import Plan, get_plan
from etl.reader import ImageReader, source_roots
from etl.write.queue import Claim, Manifest, ShardQueue, SkippedImage, with_retries
from etl.write.tar import HashingFile, SampleRecord, SampleTarWriter, idx_line, idx_text, sample_members

if TYPE_CHECKING:
    from etl.config import Config

DEFAULT_LEASE_SECONDS = 120.0
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

    @classmethod
    def from_settings(cls, settings: Config, plan_name: str, *, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                      max_attempts: int = 3, grace_seconds: float = 60.0) -> WriteOptions:
        """The options for `plan_name` from the effective configuration (database, source roots, cache)."""
        return cls(
            database_url=settings.database_url, plan_name=plan_name,
            roots={source.NAME: settings.path(source.ROOT.name) for source in sources.SOURCES},
            read_settings={setting.name: settings.get_value(setting.name)
                           for source in sources.SOURCES for setting in source.READ_SETTINGS},
            cache_dir=Path(settings.get_value("cache_dir")).resolve(),
            lease_seconds=lease_seconds, max_attempts=max_attempts, grace_seconds=grace_seconds)


def worker_name(rank: int | None = None, size: int | None = None) -> str:
    """`host:pid` (with `:rank/size` under MPI): who holds a claim."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}:{rank}/{size}" if rank is not None else name


class LeaseKeeper:
    """Renews a claim's lease in the background; `lost` is set when the claim is no longer ours."""

    def __init__(self, queue: ShardQueue, held: Claim, lease_seconds: float) -> None:
        self.queue, self.held, self.lease_seconds = queue, held, lease_seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{held.shard_index}")

    def _run(self) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        while not self._stop.wait(interval):
            try:
                if not self.queue.renew(self.held, self.lease_seconds):
                    self.lost.set()
                    return
            except OperationalError:
                continue  # the database is away for a moment: try again; the lease has slack for this

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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
    queue: ShardQueue = field(init=False)

    def __post_init__(self) -> None:
        self.queue = ShardQueue(self.engine)

    def time(self, step: str, since: float) -> None:
        """Add the time since `since` (perf_counter) to `step`, when timing."""
        if self.timings is not None:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - since


def _write_samples(context: WorkerContext, records: list[SampleRecord], writer: SampleTarWriter,
                   lost: threading.Event) -> tuple[list[str], list[SkippedImage]]:
    """Write the samples into the tar until done, the claim is lost or the shard abandoned; returns the `.idx`
    lines of the samples written and the images skipped."""
    index_lines: list[str] = []
    skipped: list[SkippedImage] = []
    for record in records:
        if lost.is_set() or context.abandon.is_set():
            break
        step = time.perf_counter()
        try:
            data = context.reader.read(record.source, record.path, record.member_offset, record.byte_size)
            context.time("read", step)
            jpeg = prepare(data, context.plan.target, context.timings)
        except ImageProblem as exc:
            skipped.append(SkippedImage(record.image_id, str(exc)))
            continue
        except OSError as exc:
            skipped.append(SkippedImage(record.image_id, f"unreadable: {exc.strerror or exc}"))
            continue
        members = sample_members(record, context.plan.txt_field, jpeg, context.plan.caption_case)
        step = time.perf_counter()
        placed = writer.write(record.image_id, members)
        context.time("tar", step)
        index_lines.append(idx_line(record.image_id, placed))
    return index_lines, skipped


def write_shard(context: WorkerContext, held: Claim) -> ShardOutcome:
    """Write one claimed shard under hidden temporary names, then commit it (see etl.write.queue)."""
    started = time.monotonic()
    final = context.out_dir / held.path
    final.parent.mkdir(parents=True, exist_ok=True)
    index_final = final.with_suffix(".idx")
    temporary, index_temporary = temporary_name(final, held.token), temporary_name(index_final, held.token)
    remove_stale_temporaries(final, keep=temporary)
    remove_stale_temporaries(index_final, keep=index_temporary)
    records = with_retries(context.queue.samples, held.shard_id)
    outcome = ShardOutcome(held.shard_index, "done")
    with LeaseKeeper(context.queue, held, context.lease_seconds) as keeper:
        try:
            with open(temporary, "wb") as raw:
                hashing = HashingFile(raw)
                writer = SampleTarWriter(hashing)
                index_lines, skipped = _write_samples(context, records, writer, keeper.lost)
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
            with_retries(context.queue.release, held)
        return outcome
    with open(index_temporary, "w", encoding="ascii") as handle:
        handle.write(idx_text(index_lines))
        handle.flush()
        os.fsync(handle.fileno())
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
        temporary.unlink(missing_ok=True)
        index_temporary.unlink(missing_ok=True)
        outcome.status = "lost"
    return outcome


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


def claim_and_write(context: WorkerContext, poll_seconds: float = 2.0,
                    should_claim: Callable[[WorkerStats], bool] | None = None) -> WorkerStats:
    """Claim and write shards until the plan is finished (or `stop` is set, or `should_claim` says no)."""
    queue, plan_id = context.queue, context.plan.id
    stats = WorkerStats(context.worker)
    started = time.monotonic()
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
        except Exception as exc:  # a shard-level failure (unreadable archive, full disk): count the attempt
            with_retries(queue.fail_attempt, held, f"{type(exc).__name__}: {exc}", context.max_attempts)
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


def check_codec(plan: Plan, stack: str = CODEC_STACK) -> None:
    """Refuse, in one line, to write plan `plan` with a codec stack other than the one it was planned with:
    its shards would not be the bytes its other shards (or a rerun) have."""
    if plan.codec != stack:
        raise TolError(f"plan {plan.name} was planned with codec stack {plan.codec!r} but this installation has "
                       f"{stack!r}: write it where that stack is installed, or plan it again under a new name")


def run_worker(options: WriteOptions, rank: int | None = None, size: int | None = None) -> WorkerStats:
    """One worker in this process: claim and write shards until the plan is finished or told to stop."""
    engine = db.make_engine(options.database_url)
    signals = Signals(options.grace_seconds)
    signals.install()
    try:
        plan = with_retries(get_plan, engine, options.plan_name)
        check_codec(plan)
        reader = ImageReader(with_retries(source_roots, engine, options.roots), options.cache_dir,
                             options.read_settings)
        context = WorkerContext(engine, plan, Path(plan.out_dir), reader, worker_name(rank, size),
                                options.lease_seconds, options.max_attempts, signals.stop, signals.abandon)
        end = job_end_time()

        def time_left_for_a_shard(stats: WorkerStats) -> bool:
            # Claim only if the slowest shard so far (with a margin) still fits before the job ends.
            return end is None or time.time() + 1.2 * stats.slowest_shard_s < end

        stats = claim_and_write(context, options.poll_seconds, should_claim=time_left_for_a_shard)
        reader.close()
        return stats
    finally:
        signals.cancel()
        engine.dispose()
