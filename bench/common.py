"""Helpers shared by the benchmarks: fresh catalogs, peak memory, figures."""

from __future__ import annotations

import contextlib
import os
import resource
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from etl import db, schema

PG_ADMIN_URL = os.environ.get("TOL_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB.

    Linux's `ru_maxrss` survives fork and exec, so a measuring child started by a parent that once held a lot
    (say, while generating a sample collection) would report the parent's peak; the kernel's VmHWM belongs
    to this process image alone.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def fresh_catalog(backend: str, workdir: Path) -> Iterator[str]:
    """A catalog at head on `backend` (`sqlite` or `postgresql`), removed afterwards."""
    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.sqlite"
        url = f"sqlite:///{path}"
        engine = db.make_engine(url)
        schema.upgrade(engine)
        engine.dispose()
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = f"tol_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(db.parse_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = db.parse_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def kept_catalog(backend: str, keep: Path) -> Iterator[str]:
    """A catalog at head on `backend` that outlives the run: made on first use, found again on the next run
    with the same `keep` folder (its URL is in `keep/<backend>.url`), so later runs can time one stage again
    on the same data. Removing it is the user's: delete the folder (and, on PostgreSQL, the database named in
    the URL file)."""
    keep.mkdir(parents=True, exist_ok=True)
    url_file = keep / f"{backend}.url"
    if url_file.exists():
        url = url_file.read_text().strip()
        engine = db.make_engine(url)
        schema.upgrade(engine)  # the code may have gained migrations since the catalog was made
        engine.dispose()
        yield url
        return
    if backend == "sqlite":
        url = f"sqlite:///{keep.resolve() / 'catalog.sqlite'}"
    else:
        name = f"tol_bench_keep_{uuid.uuid4().hex[:8]}"
        admin = create_engine(db.parse_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        admin.dispose()
        url = db.parse_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    url_file.write_text(url + "\n")
    yield url


def machine() -> str:
    """One line naming the machine the figures come from: CPU model, cores and RAM."""
    model, ram = "unknown CPU", "? GB"
    with contextlib.suppress(OSError, StopIteration):
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    with contextlib.suppress(OSError, StopIteration):
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
        ram = f"{kb / 1024 ** 2:.1f} GB"
    return f"{model}, {os.cpu_count()} cores, {ram} RAM"
