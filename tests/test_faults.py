"""Write-stage faults: each failure is the image's, the shard's or the environment's (table-driven), and the
worker acts on each as promised on SQLite and PostgreSQL: image errors recorded and skipped, environment
faults never recorded nor counted and waited out up to a budget (exit 4), shard failures counted and stopped
by a circuit breaker, nothing blocking for ever, no temporary left, repair and retry with no manual SQL."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from etl.cli import cli
from etl.errors import EnvironmentFault, ExitCode, WorkLeftError
from etl.images import ImageProblem
from etl.reader import ImageReader, source_roots
from etl.sources import eol_archives
from etl.sources.common import NotRegularFile, read_regular_file
from etl.write import faults
from etl.write.faults import Fault, Probe, ReadTimeout, Where
from etl.write.launch import reopen_for_repair, run_local_workers, write_plan
from etl.write.queue import Claim, ShardQueue
from etl.write.worker import (
    Abandoned,
    LeaseKeeper,
    TimedCalls,
    WorkerContext,
    remove_stale_shard_temporaries,
    run_worker,
    write_shard,
)
from tests.helpers import make_plan, prepared_catalog, roots, sha256_of, write_options

CACHE, OUT, ROOT = Path("/cache"), Path("/out"), Path("/data/inat21")
UNIT = ROOT / "cls"
BOTH = Probe(True, True)


def oserror(code: int, filename: str | None = None) -> OSError:
    return OSError(code, os.strerror(code), filename)


# ------------------------------------------------------------------------------------------ the classifier

READS = [
    # (error, probe, expected kind, expected reason start, expected resource)
    (ImageProblem("cannot decode: broken data stream"), None, "image", "cannot decode", None),
    (NotRegularFile(0, "FIFO", "/data/inat21/cls/a.jpg"), None, "image", "not a regular file (FIFO)", None),
    (ReadTimeout("no progress for 5 s"), None, "image", "timeout: ", None),
    (oserror(errno.ENOENT, "/data/inat21/cls/a.jpg"), BOTH, "image", "missing file: ", None),
    (oserror(errno.EACCES, "/data/inat21/cls/a.jpg"), BOTH, "image", "unreadable: ", None),
    (oserror(errno.EIO, "/data/inat21/cls/a.jpg"), BOTH, "image", "unreadable: ", None),
    (oserror(errno.ENOENT, "/data/inat21/cls/a.jpg"), Probe(False, False), "environment", "source root missing",
     str(ROOT)),
    (oserror(errno.ENOENT, "/data/inat21/cls/a.jpg"), Probe(True, False), "environment", "unit missing",
     str(UNIT)),
    (oserror(errno.EIO, "/data/inat21/cls/a.jpg"), Probe(False, False), "environment", "source root missing",
     str(ROOT)),
    (oserror(errno.ESTALE, "/data/inat21/cls/a.jpg"), BOTH, "environment", "source mount unavailable", str(ROOT)),
    (oserror(errno.ENOTCONN), BOTH, "environment", "source mount unavailable", str(ROOT)),
    (oserror(errno.ENOSPC, "/cache/eol-tar/.a.tar.1.tmp"), BOTH, "environment", "cache: ", str(CACHE)),
    (oserror(errno.ENOSPC), BOTH, "environment", "cache: ", str(CACHE)),
    (oserror(errno.EROFS), BOTH, "environment", "cache: ", str(CACHE)),
    (oserror(errno.ENOENT, "/cache/eol-tar/a.tar"), BOTH, "environment", "cache: ", str(CACHE)),
    (OperationalError("SELECT 1", {}, Exception("server closed the connection")), None, "environment",
     "database unreachable", "database"),
    (faults.DatabaseUnavailable("no route to host"), None, "environment", "database unreachable", "database"),
    (RuntimeError("bug"), None, "shard", "RuntimeError: bug", None),
]


@pytest.mark.parametrize(("error", "probe", "kind", "reason", "resource"), READS,
                         ids=[f"{type(r[0]).__name__}-{getattr(r[0], 'errno', '')}-{r[2]}" for r in READS])
def test_read_failures_are_classified(error, probe, kind, reason, resource):
    fault = faults.classify(error, Where("read", CACHE, OUT, ROOT, UNIT, probe))
    assert fault.kind == kind
    assert fault.reason.startswith(reason), fault.reason
    assert fault.resource == resource


WRITES = [
    (oserror(errno.ENOSPC, "/out/.shard-000001.tar.t.tmp"), "environment", str(OUT)),
    (oserror(errno.EDQUOT), "environment", str(OUT)),
    (oserror(errno.EROFS, "/out/shard-000001.tar"), "environment", str(OUT)),
    (oserror(errno.EIO), "environment", str(OUT)),
    (oserror(errno.EACCES, "/out/x"), "shard", None),
    (OSError("archive a.tar ends before the member's 10 bytes"), "shard", None),
    (ValueError("bad record"), "shard", None),
    (OperationalError("UPDATE", {}, Exception("terminating connection")), "environment", "database"),
]


@pytest.mark.parametrize(("error", "kind", "resource"), WRITES)
def test_write_failures_are_classified(error, kind, resource):
    fault = faults.classify(error, Where("write", CACHE, OUT))
    assert (fault.kind, fault.resource) == (kind, resource)


@pytest.mark.parametrize(("reason", "passing"), [
    ("unreadable: Permission denied", True), ("missing file: No such file or directory", True),
    ("timeout: no progress reading and decoding for 300 s", True), ("cannot decode: image file is truncated", False),
    ("not a regular file (FIFO)", False), ("empty file (0 bytes)", False), ("not an image Pillow can identify", False),
])
def test_passing_reasons(reason, passing):
    assert faults.is_passing(reason) is passing


def test_shards_to_repair_picks_only_passing_causes_once_each():
    errors = [(7, "missing file: x"), (3, "cannot decode: y"), (7, "timeout: z"), (5, "unreadable: EIO"),
              (3, "not a regular file (FIFO)")]
    assert faults.shards_to_repair(errors) == [5, 7]


@pytest.mark.parametrize(("passing", "seen", "percent", "exceeded"), [
    (4, 4, 20, False),  # too few to judge
    (5, 5, 20, True), (5, 25, 20, False), (6, 25, 20, True), (5, 100, 20, False), (50, 100, 50, False),
    (51, 100, 50, True),
])
def test_passing_error_threshold(passing, seen, percent, exceeded):
    assert faults.passing_errors_exceeded(passing, seen, percent) is exceeded


def test_signature_groups_failures_of_one_kind():
    assert faults.signature(oserror(errno.EACCES, "/a")) == faults.signature(oserror(errno.EACCES, "/b")) \
        == "PermissionError [EACCES]"
    assert faults.signature(oserror(errno.EACCES)) != faults.signature(oserror(errno.EPERM))
    assert faults.signature(ValueError("shard 12 bad")) == faults.signature(ValueError("shard 13 bad"))
    assert faults.signature(ValueError("bad")) != faults.signature(KeyError("bad"))


# -------------------------------------------------------------------------------- blocking, without a catalog


def test_special_files_are_never_opened_for_reading(tmp_path: Path):
    fifo = tmp_path / "a.jpg"
    os.mkfifo(fifo)  # opening it for reading without O_NONBLOCK would wait for a writer for ever
    with pytest.raises(NotRegularFile, match="FIFO"):
        read_regular_file(fifo)
    with pytest.raises(NotRegularFile, match="folder"):
        read_regular_file(tmp_path)
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xffabc")
    assert read_regular_file(tmp_path / "b.jpg") == b"\xff\xd8\xffabc"


def test_timed_calls_give_up_on_a_call_that_does_not_return():
    calls, never = TimedCalls(), threading.Event()
    with pytest.raises(ReadTimeout):
        calls.call(never.wait, 0.3, threading.Event())
    assert calls.call(lambda: 42, 5, threading.Event()) == 42  # a fresh thread serves the next call
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(Abandoned):
        calls.call(never.wait, 3600, cancel)
    with pytest.raises(ZeroDivisionError):
        calls.call(lambda: 1 // 0, 5, threading.Event())
    never.set()
    calls.close()


def test_a_call_given_up_on_that_returns_late_answers_no_later_call():
    calls, release = TimedCalls(), threading.Event()
    with pytest.raises(ReadTimeout):
        calls.call(lambda: release.wait() and "late", 0.2, threading.Event())
    release.set()
    time.sleep(0.1)  # the given-up call has returned "late" by now
    assert [calls.call(lambda n=n: n, 5, threading.Event()) for n in range(3)] == [0, 1, 2]
    calls.close()


def test_timed_calls_count_from_the_last_sign_of_life():
    calls = TimedCalls()

    def slow_but_alive() -> str:
        for _ in range(8):
            time.sleep(0.1)
            calls.beat()
        return "done"

    assert calls.call(slow_but_alive, 0.5, threading.Event()) == "done"  # 0.8 s in all, never 0.5 s silent
    calls.close()


class CountingQueue:
    def __init__(self) -> None:
        self.renewals = 0

    def renew(self, held, lease_seconds) -> bool:
        self.renewals += 1
        return True


def test_lease_is_renewed_only_while_the_writer_makes_progress():
    queue = CountingQueue()
    progress = [time.monotonic()]
    held = Claim(1, 0, "shard-000000.tar", "token", 1, 10)
    with LeaseKeeper(queue, held, 0.15, lambda: progress[0], stall_seconds=0.3) as keeper:  # type: ignore[arg-type]
        while queue.renewals < 2:
            progress[0] = time.monotonic()
            time.sleep(0.01)
        while not keeper.stalled.is_set():  # no progress from here on
            time.sleep(0.01)
        stalled_at = queue.renewals
        time.sleep(0.3)
    assert queue.renewals == stalled_at


def test_stale_cache_temporaries_are_removed_unless_a_restage_holds_them(tmp_path: Path):
    folder = tmp_path / "eol-tar"
    folder.mkdir()
    stale, live, fresh = (folder / f".a{n}.tar.123.tmp" for n in range(3))
    for path in (stale, live, fresh):
        path.write_bytes(b"partial")
    for path in (stale, live):
        os.utime(path, (time.time() - 600, time.time() - 600))
    with open(folder / ".a1.tar.lock", "a+b") as lock:  # a live restage of a1.tar holds its lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        removed = eol_archives.remove_stale_cache(tmp_path, older_than=60)
    assert removed == [stale]
    assert not stale.exists() and live.exists() and fresh.exists()


def test_a_restage_replaces_a_killed_restages_partial_file(tmp_path: Path):
    import gzip

    archive = tmp_path / "media.tar.gz"
    archive.write_bytes(gzip.compress(b"tar bytes" * 1000))
    target = tmp_path / "cache" / "eol-tar" / "media.tar"
    target.parent.mkdir(parents=True)
    killed = target.with_name(".media.tar.99999.tmp")  # a restage killed half-way, just now
    killed.write_bytes(b"tar by")
    eol_archives.restage(archive, target)
    assert target.read_bytes() == b"tar bytes" * 1000
    assert sorted(p.name for p in target.parent.iterdir()) == [".media.tar.lock", "media.tar"]


# ------------------------------------------------------------------------------- the worker, on a catalog


@pytest.fixture
def prepared(catalog_url, engine_of, sample_collection: Path):
    engine = engine_of(catalog_url)
    prepared_catalog(engine, sample_collection)
    return catalog_url, engine


def shard_states(engine, plan_id: int) -> list[tuple[str, int]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(
            "SELECT state, attempts FROM shards WHERE plan_id = :p ORDER BY shard_index"), {"p": plan_id})]


def image_errors(engine) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT image_id, reason FROM image_errors")).all())


def planned_inat21(engine, plan_id: int) -> list[tuple[str, str, int]]:
    """(image id, path, shard index) of the plan's iNat21 images, in plan order."""
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(
            "SELECT i.id, i.path, s.shard_index FROM shard_members AS m JOIN shards AS s ON s.id = m.shard_id "
            "JOIN images AS i ON i.id = m.image_id WHERE s.plan_id = :p AND i.source = 'inat21' "
            "ORDER BY s.shard_index, m.position"), {"p": plan_id})]


def tar_keys(path: Path) -> list[str]:
    with tarfile.open(path) as archive:
        return list(dict.fromkeys(name.split(".", 1)[0] for name in archive.getnames()))


def test_missing_root_is_waited_out_then_fails_with_exit_4_and_nothing_recorded(prepared, tmp_path: Path):
    url, engine = prepared
    plan = make_plan(engine, tmp_path / "out", name="p-val", split="val", per_shard=20)
    gone = tmp_path / "moved-away"
    options = write_options(url, plan.name, tmp_path / "cache", roots={"inat21": gone}, environment_budget=0.6)
    started = time.monotonic()
    with pytest.raises(EnvironmentFault, match=f"^{gone}: source root missing") as caught:
        run_worker(options)
    assert caught.value.exit_code == ExitCode.ENVIRONMENT == 4
    assert time.monotonic() - started >= 0.6  # it waited with backoff before giving up
    states = shard_states(engine, plan.id)
    assert {state for state, _ in states} <= {"pending", "done"} and ("pending", 0) in states
    assert all(attempts == (1 if state == "done" else 0) for state, attempts in states)
    assert image_errors(engine) == {} or all(not faults.is_passing(r) for r in image_errors(engine).values())
    # The root is back: a plain rerun completes, no reset needed, and no iNat21 image was lost.
    run_worker(write_options(url, plan.name, tmp_path / "cache"))
    assert {state for state, _ in shard_states(engine, plan.id)} == {"done"}
    assert not any(faults.is_passing(reason) for reason in image_errors(engine).values())


def test_root_moved_away_and_back_during_a_write_loses_no_image(prepared, sample_collection: Path,
                                                                tmp_path: Path):
    url, engine = prepared
    plan = make_plan(engine, tmp_path / "out", name="p-val", split="val", per_shard=10)
    root = tmp_path / "inat21"
    shutil.copytree(roots(sample_collection)["inat21"], root)
    away = tmp_path / "inat21-away"
    root.rename(away)
    threading.Timer(1.0, away.rename, args=(root,)).start()  # back after a second
    stats = run_worker(write_options(url, plan.name, tmp_path / "cache", roots={"inat21": root},
                                     environment_budget=60))
    assert stats.environment_faults >= 1
    assert {state for state, _ in shard_states(engine, plan.id)} == {"done"}
    assert not any(faults.is_passing(reason) for reason in image_errors(engine).values())


def test_fifo_missing_file_then_repair_keeps_order_with_a_new_manifest(prepared, sample_collection: Path,
                                                                        tmp_path: Path):
    url, engine = prepared
    out = tmp_path / "out"
    plan = make_plan(engine, out, name="p-val", split="val", per_shard=20)
    root = tmp_path / "inat21"
    shutil.copytree(roots(sample_collection)["inat21"], root)
    (fifo_id, fifo_path, _), (missing_id, missing_path, missing_shard) = planned_inat21(engine, plan.id)[:2]
    (root / fifo_path).unlink()
    os.mkfifo(root / fifo_path)
    kept = (root / missing_path).read_bytes()
    kept_stamp = (root / missing_path).stat()
    (root / missing_path).unlink()
    options = write_options(url, plan.name, tmp_path / "cache", roots={"inat21": root})
    run_local_workers(options, 1)
    errors = image_errors(engine)
    assert errors[fifo_id] == "not a regular file (FIFO)"
    assert errors[missing_id].startswith("missing file: ")
    assert {state for state, _ in shard_states(engine, plan.id)} == {"done"}
    shard_file = out / f"shard-{missing_shard:06d}.tar"
    with engine.connect() as connection:
        before = connection.execute(text("SELECT sha256 FROM shards WHERE plan_id = :p AND shard_index = :i"),
                                    {"p": plan.id, "i": missing_shard}).scalar_one()
    assert missing_id not in tar_keys(shard_file)
    (root / missing_path).write_bytes(kept)  # the file is back, as a remounted one is: same bytes, same mtime
    os.utime(root / missing_path, ns=(kept_stamp.st_atime_ns, kept_stamp.st_mtime_ns))
    assert reopen_for_repair(options) == 1  # only the shard with a passing cause; the FIFO's is permanent
    report = write_plan(options, 1)
    assert report is not None and report.complete
    errors = image_errors(engine)
    assert missing_id not in errors and errors[fifo_id] == "not a regular file (FIFO)"
    with engine.connect() as connection:
        after = connection.execute(text("SELECT sha256 FROM shards WHERE plan_id = :p AND shard_index = :i"),
                                   {"p": plan.id, "i": missing_shard}).scalar_one()
        planned = connection.execute(text(
            "SELECT m.image_id FROM shard_members AS m JOIN shards AS s ON s.id = m.shard_id "
            "WHERE s.plan_id = :p AND s.shard_index = :i ORDER BY m.position"),
            {"p": plan.id, "i": missing_shard}).scalars().all()
    keys = tar_keys(shard_file)
    assert after != before and missing_id in keys
    assert keys == [image for image in planned if image not in errors]  # the plan's order
    from etl import verify

    assert not any(r.problems for r in verify.verify(engine, url, plan.name, full=True, workers=1))


def test_full_cache_fails_once_per_archive_and_counts_no_attempt(prepared, tmp_path: Path, monkeypatch):
    url, engine = prepared
    plan = make_plan(engine, tmp_path / "out", name="p-val", split="val", per_shard=1000)  # one shard
    calls = []

    def full_disk(archive: Path, target: Path, heartbeat=None) -> None:
        calls.append(archive)
        with open(tmp_path / "partial", "wb"):
            pass
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(eol_archives, "restage", full_disk)
    with pytest.raises(EnvironmentFault, match=f"^{tmp_path / 'cache'}: cache: No space left"):
        run_worker(write_options(url, plan.name, tmp_path / "cache", environment_budget=0))
    assert len(calls) == 1  # the first EOL image stopped the shard: not one restage per image
    assert shard_states(engine, plan.id) == [("pending", 0)]
    assert image_errors(engine) == {}
    assert list((tmp_path / "out").glob(".*")) == []


def test_circuit_breaker_stops_one_cause_from_draining_the_queue(prepared, tmp_path: Path, monkeypatch):
    url, engine = prepared
    plan = make_plan(engine, tmp_path / "out", name="p-val", split="val", per_shard=5)
    assert plan.n_shards >= 6

    def broken(self, source, path, member_offset, byte_size):
        raise ValueError("a bug in one code path")

    monkeypatch.setattr(ImageReader, "read", broken)
    report = write_plan(write_options(url, plan.name, tmp_path / "cache", max_attempts=5), 1)
    assert report is not None and not report.complete
    assert len(report.stopped) == 1
    assert "stopped claiming after 3 shard failures in a row of one kind (ValueError" in report.stopped[0]
    assert any(line.startswith("circuit breaker: ") for line in report.lines())
    with pytest.raises(WorkLeftError) as caught:
        report.check_complete()
    assert caught.value.exit_code == ExitCode.WORK_LEFT == 3
    states = shard_states(engine, plan.id)
    assert sum(attempts for _, attempts in states) == 3
    assert [state for state, _ in states].count("pending") == plan.n_shards
    assert list((tmp_path / "out").glob(".*")) == []


def test_sigterm_grace_is_honoured_during_a_blocked_read(prepared, tmp_path: Path, monkeypatch):
    _url, engine = prepared
    plan = make_plan(engine, tmp_path / "out", name="p-val", split="val", per_shard=1000)
    blocked = threading.Event()

    def hangs(self, source, path, member_offset, byte_size):
        blocked.set()
        threading.Event().wait()  # a read that never returns

    monkeypatch.setattr(ImageReader, "read", hangs)
    reader = ImageReader({}, tmp_path / "cache")
    context = WorkerContext(engine, plan, tmp_path / "out", reader, "w", lease_seconds=60, read_timeout=3600)
    held = ShardQueue(engine).claim(plan.id, "w", 60, 3)
    assert held is not None

    def grace_runs_out() -> None:  # as SIGTERM's grace does, once the read has blocked
        if blocked.wait(30):
            time.sleep(0.2)
            context.abandon.set()

    ender = threading.Thread(target=grace_runs_out)
    ender.start()
    outcome = write_shard(context, held)
    ender.join()
    assert blocked.is_set() and outcome.status == "released"
    assert shard_states(engine, plan.id) == [("pending", 0)]
    assert list((tmp_path / "out").glob(".*")) == []


def test_an_image_whose_read_stalls_is_skipped_and_the_rest_of_its_shard_written(prepared, tmp_path: Path,
                                                                                monkeypatch):
    _url, engine = prepared
    plan = make_plan(engine, tmp_path / "out", name="p-val", split="val", per_shard=1000)
    stalled_id, stalled_path, _ = planned_inat21(engine, plan.id)[1]
    release, read = threading.Event(), ImageReader.read

    def stalls(self, source, path, member_offset, byte_size):
        if path == stalled_path:
            release.wait()  # stalls until the test ends, then returns the bytes to a writer given up on
        return read(self, source, path, member_offset, byte_size)

    monkeypatch.setattr(ImageReader, "read", stalls)
    reader = ImageReader(source_roots(engine, {}), tmp_path / "cache")
    context = WorkerContext(engine, plan, tmp_path / "out", reader, "w", lease_seconds=60, read_timeout=0.5)
    queue = ShardQueue(engine)
    held = queue.claim(plan.id, "w", 60, 3)
    assert held is not None
    planned = [record.image_id for record in queue.samples(held.shard_id)]
    try:
        outcome = write_shard(context, held)
    finally:
        release.set()
    time.sleep(0.3)  # the given-up writer has woken up by now: it must have written nothing
    errors = image_errors(engine)
    assert outcome.status == "done" and errors[stalled_id].startswith("timeout: no progress")
    written = [key for key in planned if key not in errors]
    shard = tmp_path / "out" / held.path
    assert tar_keys(shard) == written and outcome.samples == len(written) and len(written) > 1
    manifest = next(row for row in queue.shards(plan.id) if row.id == held.shard_id)
    assert sha256_of(shard) == manifest.sha256 and shard.stat().st_size == manifest.n_bytes


BLOCKED_WORKER = """
import sys, threading
from pathlib import Path
from etl.reader import ImageReader
from etl.write.worker import WriteOptions, run_worker

def never_returns(self, *args):
    print("blocked", flush=True)
    threading.Event().wait()

ImageReader.read = never_returns
stats = run_worker(WriteOptions(database_url=sys.argv[1], plan_name=sys.argv[2], roots={}, cache_dir=Path(sys.argv[3]),
                                grace_seconds=0.5, read_timeout=3600))
print("returned after", stats.claims, "claim", flush=True)
"""


def test_sigterm_ends_a_worker_blocked_in_a_read(prepared, tmp_path: Path):
    url, engine = prepared
    plan = make_plan(engine, tmp_path / "out", name="p-val", split="val", per_shard=1000)
    worker = subprocess.Popen([sys.executable, "-c", BLOCKED_WORKER, url, plan.name, str(tmp_path / "cache")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "blocked"
        worker.send_signal(signal.SIGTERM)
        stdout, stderr = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, stderr
    assert "returned after 1 claim" in stdout
    assert shard_states(engine, plan.id) == [("pending", 0)]  # released, no attempt counted


def test_stale_shard_temporaries_are_removed_at_start(prepared, tmp_path: Path):
    _url, engine = prepared
    out = tmp_path / "out"
    plan = make_plan(engine, out, name="p-val", split="val", per_shard=1000)
    out.mkdir(parents=True, exist_ok=True)
    held = ShardQueue(engine).claim(plan.id, "alive", 600, 3)
    assert held is not None
    old = time.time() - 3600
    dead_tar, dead_idx = out / ".shard-000000.tar.dead.tmp", out / ".shard-000000.idx.dead.tmp"
    live, young = out / f".shard-000000.tar.{held.token}.tmp", out / ".shard-000000.tar.young.tmp"
    for path in (dead_tar, dead_idx, live, young):
        path.write_bytes(b"partial")
    for path in (dead_tar, dead_idx, live):
        os.utime(path, (old, old))
    context = WorkerContext(engine, plan, out, ImageReader({}, tmp_path / "cache"), "w", lease_seconds=120)
    assert sorted(remove_stale_shard_temporaries(context)) == sorted([dead_tar, dead_idx])
    assert live.exists() and young.exists()


def test_ingest_rejects_special_files_without_opening_them(catalog_url, engine_of, sample_collection: Path,
                                                          tmp_path: Path):
    from etl import catalog

    engine = engine_of(catalog_url)
    root = tmp_path / "inat21"
    shutil.copytree(roots(sample_collection)["inat21"], root)
    folder = next(path for path in sorted(root.iterdir()) if path.is_dir())
    os.mkfifo(folder / "0a0a0a0a-0000-4000-8000-000000000000.jpg")
    (folder / "0b0b0b0b-0000-4000-8000-000000000000.jpg").mkdir()
    catalog.ingest(engine, "inat21", root, workers=1, echo=lambda _: None)
    with engine.connect() as connection:
        rejects = dict(connection.execute(text("SELECT path, reason FROM ingest_rejects")).all())
    assert rejects[f"{folder.name}/0a0a0a0a-0000-4000-8000-000000000000.jpg"] == "not a regular file"
    assert rejects[f"{folder.name}/0b0b0b0b-0000-4000-8000-000000000000.jpg"] == "not a regular file"


def test_retry_returns_failed_shards_to_pending_with_no_sql(prepared, tmp_path: Path):
    url, engine = prepared
    plan = make_plan(engine, tmp_path / "out", name="p-val", split="val", per_shard=1000)
    queue = ShardQueue(engine)
    for _ in range(3):
        held = queue.claim(plan.id, "w", 60, 3)
        queue.fail_attempt(held, "disk broken", 3)
    assert shard_states(engine, plan.id) == [("failed", 3)]
    result = CliRunner().invoke(cli, ["--database-url", url, "shards", "retry", plan.name])
    assert result.exit_code == 0, result.output
    assert "1 failed shard set back to pending" in result.output
    assert shard_states(engine, plan.id) == [("pending", 0)]
    # `repair` reopens no done shard here (none holds a passing image error) and writes what is pending.
    result = CliRunner(env={"TOL_CACHE_DIR": str(tmp_path / "cache")}).invoke(
        cli, ["--database-url", url, "-q", "shards", "repair", plan.name, "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "p-val: 0 done shards with passing image errors set back to pending" in result.output
    assert shard_states(engine, plan.id) == [("done", 1)]


def test_environment_fault_never_counts_as_a_shard_failure_kind():
    # The breaker counts shard failures only: an environment fault is released, not failed.
    fault = faults.classify(oserror(errno.ENOSPC, "/out/x"), Where("write", CACHE, OUT))
    assert fault == Fault("environment", f"{os.strerror(errno.ENOSPC)} writing /out/x", str(OUT))
