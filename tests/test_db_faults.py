"""The catalog database as part of the environment: an unavailable catalog is waited out with backoff up to a
budget (then exit 4, one line, password hidden), concurrent resolves and same-name plans take turns, a
downgrade refuses while claims are live and names the column values it would drop, and SQLite migrations keep
the shards of a table they rebuild. Both databases wherever the behaviour exists on both."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from etl import db, schema
from etl.errors import ExitCode
from etl.plan import PlanOptions, create_plan
from etl.verify import manifest_gaps, verify
from etl.write.queue import ShardQueue, ShardRow, with_retries
from tests.helpers import TOL, prepared_catalog, tol_env

# ------------------------------------------------------------------------------------------ helpers


def run_tol(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([TOL, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def one_line(result: subprocess.CompletedProcess, code: int, fragment: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    return lines[0]


def operational(message: str) -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception(message))


def add_plan_with_shards(engine, shards: list[dict], name: str = "p") -> int:
    """A plan row (and its split definition) with the given shard rows, straight in SQL."""
    with engine.begin() as connection:
        definition = connection.execute(text(
            "INSERT INTO split_definitions (name, seed, val_percent, train_small_percent, multiplier, increment, "
            "val_threshold, train_small_threshold) VALUES (:n, 1, 5, 10, 1, 1, 1, 1) RETURNING id"),
            {"n": f"s-{name}"}).scalar_one()
        plan = connection.execute(text(
            "INSERT INTO shard_plans (name, split_definition_id, split, width, height, resize, quality, txt_field, "
            "out_dir, shuffle_seed, n_shards) VALUES (:n, :d, 'train', 8, 8, 'center-crop', 95, 'taxonTag_com', "
            ":o, 0, :k) RETURNING id"), {"n": name, "d": definition, "o": f"/nowhere/{name}",
                                         "k": len(shards)}).scalar_one()
        for index, shard in enumerate(shards):
            row = {"state": "done", "md5": None, "sha256": None, "n_bytes": None, "n_samples": None,
                   "lease_until": None, "worker": None, "claim_token": None, **shard}
            connection.execute(text(
                "INSERT INTO shards (plan_id, shard_index, path, state, n_planned, md5, sha256, n_bytes, n_samples, "
                "lease_until, worker, claim_token) VALUES (:plan, :index, :path, :state, 1, :md5, :sha256, "
                ":n_bytes, :n_samples, :lease_until, :worker, :claim_token)"),
                {"plan": plan, "index": index, "path": f"shard-{index:06d}.tar", **row})
    return plan


def done(index: int) -> dict:
    return {"state": "done", "md5": f"{index:032x}", "sha256": f"{index:064x}", "n_bytes": 10, "n_samples": 1}


# ------------------------------------------------------------------------------- what counts as transient

@pytest.mark.parametrize(("message", "transient"), [
    ('connection failed: FATAL:  database "x" is not currently accepting connections', True),
    ("FATAL:  sorry, too many clients already", True),
    ("FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute", True),
    ("FATAL:  terminating connection due to administrator command", True),
    ("server closed the connection unexpectedly", True),
    ("connection failed: connection to server at \"h\", port 1 failed: Connection refused", True),
    ("FATAL:  the database system is starting up", True),
    ("database is locked", True),
    ('FATAL:  database "nope" does not exist', False),
    ('FATAL:  password authentication failed for user "u"', False),
    ("no such column: shards.md5", False),
    ("division by zero", False),
])
def test_which_operational_errors_are_the_environments(message, transient):
    assert db.is_transient(operational(message)) is transient


def test_other_driver_errors_are_not_transient():
    assert not db.is_transient(ProgrammingError("SELECT", {}, Exception("too many clients")))
    assert not db.is_transient(ValueError("database is locked"))


def test_wait_out_backs_off_then_succeeds(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(db.time, "sleep", slept.append)
    calls = iter([operational("database is locked")] * 7 + [None])

    def operation(value: int) -> int:
        error = next(calls)
        if error is not None:
            raise error
        return value * 2

    assert db.wait_out(operation, 21, budget=3600, database="d") == 42
    assert len(slept) == 7
    # Doubling from 0.25 s, capped at 5 s, each jittered by 0.5-1.5x.
    for n, delay in enumerate(slept):
        nominal = min(0.25 * 2**n, 5.0)
        assert 0.5 * nominal <= delay <= 1.5 * nominal


def test_wait_out_past_the_budget_is_one_line_with_exit_4(monkeypatch):
    monkeypatch.setattr(db.time, "sleep", lambda _s: None)
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(db.time, "monotonic", lambda: float(next(clock)))

    def never() -> None:
        raise operational("FATAL:  sorry, too many clients already\nDETAIL: more")

    with pytest.raises(db.DatabaseUnavailable) as caught:
        db.wait_out(never, budget=25, database="postgresql+psycopg://u:***@h/db")
    assert caught.value.exit_code == ExitCode.ENVIRONMENT == 4
    assert str(caught.value) == ("catalog database postgresql+psycopg://u:***@h/db unavailable for 25 s "
                                 "(setting db_wait_seconds): FATAL:  sorry, too many clients already")


def test_wait_out_raises_other_errors_at_once(monkeypatch):
    monkeypatch.setattr(db.time, "sleep", lambda _s: pytest.fail("must not wait"))

    def broken() -> None:
        raise ProgrammingError("SELECT", {}, Exception("syntax error"))

    with pytest.raises(ProgrammingError):
        db.wait_out(broken, budget=100, database="d", check_revision=lambda: None)


def test_a_catalog_at_another_revision_is_waited_for_then_named(catalog_url, engine_of, monkeypatch):
    engine = engine_of(catalog_url, wait_seconds=0)
    schema.downgrade(engine, "0008")

    def query_new_table(bind) -> None:  # ref_rejects came with 0009
        with bind.connect() as connection:
            connection.execute(text("SELECT COUNT(*) FROM ref_rejects"))

    with pytest.raises(db.DatabaseUnavailable, match=r"at schema revision 0008, not " + schema.head_revision()):
        with_retries(query_new_table, engine)
    assert db.wait_budget(engine) == 0


def test_budget_comes_from_the_setting_with_its_precedence(tmp_path: Path):
    from etl import config

    file = tmp_path / "tol.toml"
    file.write_text("db_wait_seconds = 30\n")
    assert config.resolve({}, {}, file).get_value("db_wait_seconds") == 30
    assert config.resolve({}, {"TOL_DB_WAIT_SECONDS": "7"}, file).get_value("db_wait_seconds") == 7
    assert config.resolve({}, {}).get_value("db_wait_seconds") == 300


# ------------------------------------------------------------------------------------ outages, PostgreSQL

def block_connections(admin, name: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})


def allow_connections(admin, name: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))


def test_a_short_outage_is_waited_out_by_a_claim(pg_databases, pg_template, pg_admin, engine_of):
    url = pg_databases.create(template=pg_template)
    name = make_url(url).database
    engine = engine_of(url, short_lived=True)
    plan = add_plan_with_shards(engine, [{"state": "pending"}])
    queue = ShardQueue(engine)
    block_connections(pg_admin, name)
    reopen = threading.Timer(3.0, allow_connections, (pg_admin, name))
    reopen.start()
    try:
        held = with_retries(queue.claim, plan, "w", 60.0, 3)
    finally:
        reopen.join()
        allow_connections(pg_admin, name)
    assert held is not None and held.attempts == 1


def test_past_the_budget_a_command_exits_4_naming_the_database(pg_databases, pg_template, pg_admin,
                                                                tmp_path: Path):
    url = pg_databases.create(template=pg_template)
    name = make_url(url).database
    with_password = make_url(url).set(password="s3cret").render_as_string(hide_password=False)
    block_connections(pg_admin, name)
    try:
        result = run_tol("status", env=tol_env(with_password, tmp_path, TOL_DB_WAIT_SECONDS="1"), cwd=tmp_path)
    finally:
        allow_connections(pg_admin, name)
    line = one_line(result, 4, "unavailable for 1 s")
    assert f"/{name}" in line and "***" in line and "s3cret" not in result.stderr


def test_sqlite_locked_beyond_busy_timeout_is_waited_out(empty_sqlite_url, monkeypatch):
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 50)
    engine = db.make_engine(empty_sqlite_url)
    schema.upgrade(engine)
    plan = add_plan_with_shards(engine, [{"state": "pending"}])
    blocker = db.make_engine(empty_sqlite_url)
    holding = blocker.connect()
    holding.begin()
    holding.execute(text("UPDATE shard_plans SET n_excluded = 1"))  # holds SQLite's write lock
    release = threading.Timer(1.0, holding.commit)
    release.start()
    try:
        held = with_retries(ShardQueue(engine).claim, plan, "w", 60.0, 3)
    finally:
        release.join()
        holding.close()
        blocker.dispose()
        engine.dispose()
    assert held is not None


def test_sqlite_locked_past_the_budget_is_an_environment_fault(empty_sqlite_url, monkeypatch):
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 50)
    engine = db.make_engine(empty_sqlite_url, wait_seconds=0.3)
    schema.upgrade(engine)
    plan = add_plan_with_shards(engine, [{"state": "pending"}])
    blocker = db.make_engine(empty_sqlite_url)
    try:
        with blocker.begin() as holding:
            holding.execute(text("UPDATE shard_plans SET n_excluded = 1"))
            with pytest.raises(db.DatabaseUnavailable, match="database is locked"):
                with_retries(ShardQueue(engine).claim, plan, "w", 60.0, 3)
    finally:
        blocker.dispose()
        engine.dispose()


# ------------------------------------------------------------------------------------ downgrades

@pytest.mark.parametrize("empty_url", ["sqlite", "postgresql"], indirect=True)
def test_downgrade_names_the_md5_values_it_would_drop(empty_url, tmp_path: Path, engine_of):
    url = empty_url
    engine = engine_of(url)
    schema.upgrade(engine)
    add_plan_with_shards(engine, [done(1), done(2), {"state": "pending"}])
    lost = schema.downgrade_losses(engine, "0004")
    assert lost["shards.md5"] == 2
    assert "shards" not in lost  # the rows stay; only the column's values go
    result = run_tol("db", "downgrade", "0004", env=tol_env(url, tmp_path), cwd=tmp_path)
    one_line(result, 2, "shards.md5 (2 values)")
    assert schema.current_revision(engine) == schema.head_revision()


@pytest.mark.parametrize("empty_url", ["sqlite", "postgresql"], indirect=True)
def test_downgrade_and_upgrade_across_a_rebuilt_table_keep_the_manifests(empty_url, engine_of):
    # 0008's downgrade rebuilds shard_plans on SQLite (batch mode); with foreign keys on, that deleted every shard.
    url = empty_url
    engine = engine_of(url)
    schema.upgrade(engine)
    add_plan_with_shards(engine, [done(1), done(2)])
    lost = schema.downgrade_losses(engine, "0007")
    # Columns added after 0007 lose their values (one plan, one split definition); no shard and no md5.
    assert lost["shard_plans.caption_case"] == 1
    assert not any(name == "shards" or name.startswith("shards.") for name in lost)
    schema.downgrade(engine, "0007")
    schema.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT shard_index, state, md5, sha256 FROM shards ORDER BY 1")).all()
    assert [tuple(r) for r in rows] == [(0, "done", f"{1:032x}", f"{1:064x}"), (1, "done", f"{2:032x}", f"{2:064x}")]


@pytest.mark.parametrize("empty_url", ["sqlite", "postgresql"], indirect=True)
def test_downgrade_refuses_while_claims_are_live(empty_url, tmp_path: Path, engine_of):
    url = empty_url
    engine = engine_of(url)
    schema.upgrade(engine)
    add_plan_with_shards(engine, [{"state": "claimed", "lease_until": time.time() + 600, "worker": "node7:42",
                                   "claim_token": "t"}])
    env = tol_env(url, tmp_path)
    result = run_tol("db", "downgrade", "0008", "--yes", env=env, cwd=tmp_path)
    line = one_line(result, 3, "refusing to downgrade")
    assert "1 shard(s) claimed" in line and "node7:42" in line
    assert schema.current_revision(engine) == schema.head_revision()
    # Once the lease has run out (the worker is gone), the downgrade goes ahead.
    with engine.begin() as connection:
        connection.execute(text("UPDATE shards SET lease_until = :t"), {"t": time.time() - 1})
    result = run_tol("db", "downgrade", "0008", "--yes", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert schema.current_revision(engine) == "0008"


def test_the_guard_runs_inside_the_downgrade_transaction(catalog_url, engine_of):
    engine = engine_of(catalog_url)
    seen: list[str | None] = []

    def guard(connection) -> None:
        seen.append(connection.execute(text("SELECT version_num FROM alembic_version")).scalar())
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        schema.downgrade(engine, "0008", guard=guard)
    assert seen == [schema.head_revision()]
    assert schema.current_revision(engine) == schema.head_revision()


# ------------------------------------------------------------------------------------ verify

def shard_row(**fields) -> ShardRow:
    base = {"id": 1, "shard_index": 0, "path": "shard-000000.tar", "state": "done", "n_planned": 1,
            "n_samples": 1, "n_bytes": 10, "sha256": "a" * 64, "md5": "b" * 32}
    return ShardRow(**{**base, **fields})


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, []),
    ({"md5": None}, ["manifest has no md5 (verify --reset writes the shard again)"]),
    ({"md5": None, "sha256": None}, ["manifest has no sha256, md5 (verify --reset writes the shard again)"]),
    ({"state": "pending", "md5": None, "sha256": None, "n_bytes": None, "n_samples": None}, []),
])
def test_manifest_gaps(fields, expected):
    assert manifest_gaps(shard_row(**fields)) == expected


def test_verify_flags_a_done_shard_whose_md5_was_lost(catalog_url, engine_of, tmp_path: Path):
    import hashlib

    engine = engine_of(catalog_url)
    out = tmp_path / "out"
    out.mkdir()
    body = b"x" * 1024
    (out / "shard-000000.tar").write_bytes(body)
    (out / "shard-000001.tar").write_bytes(body)
    (out / "shard-000002.tar").write_bytes(body)
    good = {"state": "done", "n_bytes": len(body), "n_samples": 1, "sha256": hashlib.sha256(body).hexdigest()}
    plan = add_plan_with_shards(engine, [{**good, "md5": hashlib.md5(body).hexdigest()}, {**good, "md5": None},
                                         {**good, "md5": "0" * 32}])
    with engine.begin() as connection:
        connection.execute(text("UPDATE shard_plans SET out_dir = :o WHERE id = :p"), {"o": str(out), "p": plan})
    results = verify(engine, catalog_url, "p")
    assert [r.problems for r in results] == [[], ["manifest has no md5 (verify --reset writes the shard again)"],
                                             ["md5 differs from the manifest"]]


# ------------------------------------------------------------------------------------ concurrent commands

@pytest.fixture(scope="module")
def small_collection(tmp_path_factory) -> Path:
    from etl import sampledata

    out = tmp_path_factory.mktemp("small") / "collection"
    sampledata.generate(out, images=60, seed=11)
    return out


def run_both(first, second) -> list[object]:
    """Run two callables at once in threads; their results (or exceptions) in order."""
    results: list[object] = [None, None]

    def run(slot: int, function) -> None:
        try:
            results[slot] = function()
        except BaseException as exc:  # the test inspects it
            results[slot] = exc

    threads = [threading.Thread(target=run, args=(n, f)) for n, f in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return results


def test_two_same_name_plans_at_once_make_one_plan(catalog_url, engine_of, small_collection, tmp_path: Path):
    engine = engine_of(catalog_url)
    prepared_catalog(engine, small_collection)
    options = PlanOptions(split_name="main", split="train", samples_per_shard=5, out_dir=str(tmp_path / "o"))
    other = engine_of(catalog_url)
    results = run_both(lambda: create_plan(engine, "same", options), lambda: create_plan(other, "same", options))
    assert not any(isinstance(r, BaseException) for r in results), results
    (first, created_first), (second, created_second) = results  # type: ignore[misc]
    assert sorted([created_first, created_second]) == [False, True]
    assert first.id == second.id
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM shard_plans")).scalar() == 1
        assert connection.execute(text("SELECT COUNT(*) FROM shards")).scalar() == first.n_shards


def test_a_resolve_waits_for_the_one_running(catalog_url, engine_of, small_collection):
    from etl import taxonomy

    engine = engine_of(catalog_url)
    prepared_catalog(engine, small_collection)
    with engine.connect() as connection:
        before = connection.execute(text("SELECT COUNT(*), SUM(class_index_species) FROM taxa")).one()
    other = engine_of(catalog_url)
    results = run_both(lambda: taxonomy.resolve(engine), lambda: taxonomy.resolve(other))
    assert not any(isinstance(r, BaseException) for r in results), results
    with engine.connect() as connection:
        after = connection.execute(text("SELECT COUNT(*), SUM(class_index_species) FROM taxa")).one()
        unnamed = connection.execute(text(
            "SELECT COUNT(*) FROM images WHERE taxon_id IS NULL AND unnamed_reason IS NULL")).scalar()
    assert tuple(after) == tuple(before) and unnamed == 0


def test_the_resolve_lock_is_held_for_the_whole_transaction(pg_databases, pg_template, pg_admin, engine_of):
    from etl import taxonomy

    url = pg_databases.create(template=pg_template)
    engine = engine_of(url)
    holder = engine.connect()
    holder.begin()
    db.take_turns(holder, "taxa resolve")
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(taxonomy.resolve(engine_of(url))))
    thread.start()
    name = make_url(url).database
    admin = create_engine(db.parse_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        waiting = 0
        for _ in range(600):  # until the second resolve is seen waiting on the advisory lock
            with admin.connect() as connection:
                waiting = connection.execute(text(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = :n AND wait_event = 'advisory'"),
                    {"n": name}).scalar_one()
            if waiting:
                break
            time.sleep(0.05)
        assert waiting == 1 and not outcome
    finally:
        holder.rollback()
        holder.close()
        thread.join(timeout=300)
        admin.dispose()
    assert len(outcome) == 1 and not isinstance(outcome[0], BaseException)


# ------------------------------------------------------------------------------------ many ranks

def test_a_rank_refused_for_too_many_clients_waits_and_retries(pg_databases, pg_template, engine_of, monkeypatch):
    import psycopg
    from sqlalchemy import event

    monkeypatch.setattr(db.time, "sleep", lambda _s: None)
    url = pg_databases.create(template=pg_template)
    engine = engine_of(url, short_lived=True)
    plan = add_plan_with_shards(engine, [{"state": "pending"}])
    engine.dispose()
    refusals = []

    @event.listens_for(engine, "do_connect")
    def refuse(dialect, record, cargs, cparams):  # the server's answer when max_connections is reached
        if len(refusals) < 5:
            refusals.append(1)
            raise psycopg.OperationalError("connection failed: FATAL:  sorry, too many clients already")
        return None

    held = with_retries(ShardQueue(engine).claim, plan, "rank-511", 60.0, 3)
    assert len(refusals) == 5
    assert held is not None and held.attempts == 1  # refusals are not attempts


def backends(admin, name: str) -> list[int]:
    with admin.connect() as connection:
        return list(connection.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = :n AND application_name = 'tol'"), {"n": name}).scalars())


def test_a_worker_engine_keeps_its_connection_between_close_operations_only(pg_databases, pg_template, pg_admin,
                                                                             engine_of, monkeypatch):
    monkeypatch.setattr(db, "IDLE_CLOSE_SECONDS", 0.2)
    url = pg_databases.create(template=pg_template)
    name = make_url(url).database
    engine = engine_of(url, short_lived=True)

    def backend_pid() -> int:
        with engine.connect() as connection:
            return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()

    first, second = backend_pid(), backend_pid()
    assert first == second  # the next operation, right after, reuses the connection
    for _ in range(200):  # then, unused, it is closed (the server sees no session of ours)
        if not backends(pg_admin, name):
            break
        time.sleep(0.05)
    assert backends(pg_admin, name) == []
    assert backend_pid() != first  # and a later operation opens a new one


def test_returning_a_connection_starts_no_thread(pg_databases, pg_template, engine_of, monkeypatch):
    url = pg_databases.create(template=pg_template)
    engine = engine_of(url, short_lived=True)
    with engine.connect() as connection:  # the process's closer thread runs from the first return on
        connection.execute(text("SELECT 1"))
    started: list[str] = []
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: (started.append(thread.name), start(thread))[1])
    for _ in range(20):
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    assert started == []  # a return only schedules the close; it used to start a threading.Timer each time


def traced_messages(engine, trace: Path):
    """Make the engine's next connections write libpq's trace of their messages to `trace`; returns a function
    giving the messages the client sent since the last call (a round trip ends with each Sync or Query)."""
    import psycopg
    from sqlalchemy import event

    out = trace.open("w")
    seen = [0]

    @event.listens_for(engine, "connect")
    def traced(dbapi_connection, _record):
        dbapi_connection.pgconn.trace(out.fileno())
        dbapi_connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    def sent() -> list[str]:
        lines = trace.read_text().splitlines()
        new, seen[0] = lines[seen[0]:], len(lines)
        return [line.split("\t")[2].split()[0] for line in new if line.startswith("F\t")]

    return sent


def test_a_claim_and_a_renewal_are_one_round_trip_each_on_postgres(pg_databases, pg_template, engine_of,
                                                                    tmp_path: Path):
    url = pg_databases.create(template=pg_template)
    engine = engine_of(url, short_lived=True)
    plan = add_plan_with_shards(engine, [{"state": "pending"}, {"state": "pending"}])
    engine.dispose()
    sent = traced_messages(engine, tmp_path / "libpq.trace")
    queue = ShardQueue(engine)

    with engine.connect() as connection:  # the session the claim will use, set to wait for WAL flushes
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        connection.execute(text("SET synchronous_commit = on"))
        connection.commit()
    sent()
    held = queue.claim(plan, "w", 60.0, 3)
    claim = sent()
    assert queue.renew(held, 60.0)
    renewal = sent()
    for messages in (claim, renewal):  # one statement alone: no BEGIN, no COMMIT, one Sync
        assert messages.count("Sync") == 1 and "Query" not in messages, messages
    # Its transaction was the statement's own: committed, and its synchronous_commit = off did not outlive it
    with engine.begin() as connection:
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid  # the same session
        assert connection.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
    with create_engine(db.parse_url(url)).connect() as other:
        assert other.execute(text("SELECT claim_token FROM shards WHERE id = :i"),
                             {"i": held.shard_id}).scalar_one() == held.token


def test_a_claim_fails_the_shards_whose_last_lease_ran_out_and_takes_over_expired_ones(catalog_url, engine_of):
    engine = engine_of(catalog_url, short_lived=True)
    lost = {"state": "claimed", "lease_until": 1.0, "worker": "lost"}
    plan = add_plan_with_shards(engine, [{**lost, "claim_token": "a"}, {**lost, "claim_token": "b"},
                                         {"state": "pending"}])
    with engine.begin() as connection:
        connection.execute(text("UPDATE shards SET attempts = CASE shard_index WHEN 0 THEN 3 ELSE 1 END "
                                "WHERE plan_id = :p AND shard_index < 2"), {"p": plan})
    queue = ShardQueue(engine)
    held = queue.claim(plan, "w", 60.0, 3)
    assert held is not None and (held.shard_index, held.attempts) == (1, 2)  # an expired lease, attempts left
    with engine.connect() as connection:
        state, error, token = connection.execute(text(
            "SELECT state, error, claim_token FROM shards WHERE plan_id = :p AND shard_index = 0"),
            {"p": plan}).one()
    assert (state, error, token) == ("failed", "lease expired (worker lost) after 3 attempts", None)
    assert queue.claim(plan, "w", 60.0, 3).shard_index == 2
    assert queue.claim(plan, "w", 60.0, 3) is None


def test_ranks_claiming_at_once_take_every_shard_exactly_once(catalog_url, engine_of):
    plan = add_plan_with_shards(engine_of(catalog_url), [{"state": "pending"}] * 40)
    taken: list[int] = []

    def rank(number: int) -> None:
        queue = ShardQueue(engine_of(catalog_url, short_lived=True))  # an engine each, as worker processes have
        while (held := with_retries(queue.claim, plan, f"rank-{number}", 60.0, 3)) is not None:
            taken.append(held.shard_index)

    ranks = [threading.Thread(target=rank, args=(number,)) for number in range(8)]
    for thread in ranks:
        thread.start()
    for thread in ranks:
        thread.join()
    assert sorted(taken) == list(range(40))
