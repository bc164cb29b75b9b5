"""Scale benchmark (see bench/scale).

Builds a synthetic catalog directly in the database (no image files) with the real mix of sources (EOL 63 %,
iNat21 26 %, BIOSCAN 11 %) and naming keys, then times each catalog stage in its own process, so that each
figure's peak RSS is that stage's alone: ingest-load, taxa resolve, the split view over all images,
exclusions, plans for train / val / train_small, claiming every shard of the train plan (no writing; the
slowest claim is reported), catalog export to Parquet, `tol status`, and the exclusion report once plans exist
(what `tol exclude report` and the pipeline's summary run: the plans' samples checked against the lists).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fresh_catalog, kept_catalog, machine, peak_rss_mb
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from etl import db

SHARES = (0.63, 0.26, 0.11)
STAGES = ("ingest-load", "taxa resolve", "split view", "exclusions", "plans", "claim all shards",
          "export parquet", "status", "exclusion report")


def database_size(url: str) -> int:
    engine = db.make_engine(url, readonly=True)
    try:
        if engine.dialect.name == "sqlite":
            path = db.sqlite_file(db.parse_url(url))
            assert path is not None, url
            return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        with engine.connect() as connection:
            return connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    finally:
        engine.dispose()


SERVER_SETTINGS = ("shared_buffers", "max_wal_size", "checkpoint_timeout", "work_mem", "maintenance_work_mem")


def server_settings(url: str) -> str:
    """The PostgreSQL settings that decide bulk-update speed, as the figures' context."""
    engine = db.make_engine(url, readonly=True)
    try:
        with engine.connect() as connection:
            return ", ".join(f"{name}={connection.exec_driver_sql(f'SHOW {name}').scalar_one()}"
                             for name in SERVER_SETTINGS)
    finally:
        engine.dispose()


def _drop_plans(engine: Engine) -> None:
    """Remove the bench's plans (left by an earlier run on a kept catalog), so the plans stage times them again."""
    with engine.begin() as connection:
        plans = "SELECT id FROM shard_plans WHERE name LIKE 'scale-%'"
        for table in ("image_errors", "shard_members"):
            connection.execute(text(
                f"DELETE FROM {table} WHERE shard_id IN (SELECT id FROM shards WHERE plan_id IN ({plans}))"))
        for statement in (f"DELETE FROM shards WHERE plan_id IN ({plans})",
                          f"DELETE FROM plan_license_filters WHERE plan_id IN ({plans})",
                          "DELETE FROM shard_plans WHERE name LIKE 'scale-%'"):
            connection.execute(text(statement))
    if engine.dialect.name == "postgresql":
        # The plans then insert into a table whose dead rows are reclaimed, as autovacuum would leave a catalog,
        # rather than one that depends on when autovacuum last ran.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in ("shard_members", "shards"):
                connection.exec_driver_sql(f"VACUUM {table}")


SLOW_STATEMENT_SECONDS = 2.0


def _time_statements(engine: Engine, over: float) -> list[str]:
    """A list that gets "seconds: first words" of each statement `engine` runs for longer than `over` seconds
    (wall time, as the server's work is not in this process's CPU on PostgreSQL)."""
    slow: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def started(connection, cursor, statement, parameters, context, executemany) -> None:
        connection.info["bench_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def ended(connection, cursor, statement, parameters, context, executemany) -> None:
        seconds = time.perf_counter() - connection.info.pop("bench_started")
        if seconds > over:
            words = " ".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
            slow.append(f"{seconds:.1f} s: {' '.join(words.split())[:60]}")

    return slow


def run_stage(stage: str, url: str, images: int, taxa: int, dh_rows: int, workdir: str) -> dict:
    """One stage in this process; returns its figures."""
    from etl import exclusions, export, splits, taxonomy
    from etl.plan import PlanOptions, create_plan, get_plan
    from etl.write.queue import Manifest, ShardQueue

    engine = db.make_engine(url)
    rows = images
    extra: dict = {}
    started, cpu = time.perf_counter(), time.process_time()
    if stage == "ingest-load":
        from taxa_bench import build

        shape = build(url, images, taxa, SHARES, dh_rows)
        extra = {"seconds_images_only": shape["load_seconds"], "dh_rows": shape["dh_rows"]}
    elif stage == "taxa resolve":
        summary = taxonomy.resolve(engine)
        extra = {"taxa": summary.taxa}
    elif stage == "split view":
        splits.create(engine, "scale", 17, 5.0, 10.0)
        with engine.connect() as connection:
            extra = {"counts": dict(connection.execute(text(
                "SELECT split, COUNT(*) FROM image_splits WHERE split_name = 'scale' GROUP BY split")).all())}
    elif stage == "exclusions":
        seen, unseen = Path(workdir) / "seen.json", Path(workdir) / "unseen.json"
        # Entries shaped like the real lists: 4,000 images, 400 species; ordered, so that both databases exclude the
        # same images and their plans hold the same members.
        with engine.connect() as connection:
            members = [m for (m,) in connection.execute(text(
                "SELECT member FROM images WHERE source = 'eol' AND eol_content_id % 997 = 0 "
                "ORDER BY member LIMIT 4000"))]
            species = connection.execute(text(
                "SELECT genus, species FROM taxa WHERE species <> '' AND genus <> '' AND id % 101 = 0 "
                "ORDER BY id LIMIT 400"))
            keys = [f"Animalia-P-C-O-F-{genus.capitalize()}-{epithet}" for genus, epithet in species]
        seen.write_text(json.dumps({"Seen species": [f"/data/rare/{m}" for m in members]}))
        unseen.write_text(json.dumps({key: [] for key in keys}))
        exclusions.load_rare_species(engine, seen, unseen)
        report = exclusions.report(engine)
        rows = report.excluded_images
        extra = {"excluded": report.excluded_images}
    elif stage == "plans":
        _drop_plans(engine)
        slow = _time_statements(engine, SLOW_STATEMENT_SECONDS)
        started, cpu = time.perf_counter(), time.process_time()
        for split in ("train", "val", "train_small"):
            plan, _ = create_plan(engine, f"scale-{split}", PlanOptions(
                split_name="scale", split=split, samples_per_shard=10_000, out_dir=str(Path(workdir) / split)))
            extra[split] = plan.n_samples
            extra[f"{split} statements over {SLOW_STATEMENT_SECONDS:g} s"] = slow[:]
            slow.clear()
    elif stage == "claim all shards":
        plan = get_plan(engine, "scale-train")
        queue = ShardQueue(engine)
        queue.claim(plan.id + 10_000, "warm-up", 600, 3)  # connects; claims nothing (no such plan)
        took: list[float] = []
        while True:
            tick = time.perf_counter()
            held = queue.claim(plan.id, "bench", 600, 3)
            took.append(1000 * (time.perf_counter() - tick))
            if held is None:
                break
            # As if written (no file): the export below reads done shards.
            queue.commit(held, Manifest(held.n_planned, 0, "", "", 0.0), [], lambda: None)
        rows = len(took) - 1
        ordered = sorted(took)
        extra = {"claims": rows, "claim_ms_median": round(ordered[len(ordered) // 2], 2),
                 "claim_ms_p99": round(ordered[int(len(ordered) * 0.99)], 2), "claim_ms_max": round(ordered[-1], 2)}
    elif stage == "export parquet":
        rows = export.export(engine, "scale-train", "parquet", Path(workdir) / "catalog.parquet")
    elif stage == "status":
        ShardQueue(engine).status(get_plan(engine, "scale-train"))
        rows = 1
    elif stage == "exclusion report":
        report = exclusions.report(engine)
        rows = report.excluded_images
        extra = {"planned_excluded": report.planned_excluded, "planned_unseen": report.planned_unseen_species}
    seconds = time.perf_counter() - started
    # This process's CPU (all on SQLite; on PostgreSQL the server's own work is not in it): on a loaded
    # machine the wall clock says more about the neighbours than about the stage.
    extra["cpu_s"] = round(time.process_time() - cpu, 1)
    engine.dispose()
    return {"stage": stage, "seconds": seconds, "rss": peak_rss_mb(), "rows": rows, **extra}


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares fit of seconds = a × images^b through (images, seconds) points, in log-log; (a, b)."""
    xs, ys = [math.log(n) for n, _ in points], [math.log(max(t, 1e-3)) for _, t in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    b = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread if spread else 1.0
    return math.exp(mean_y - b * mean_x), b


def fit_affine(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares fit of seconds = fixed + per_image × images; (fixed, per_image). A stage with a fixed part
    (the 2.5M-row DH, the 450k naming keys every size shares) fits the power law with an exponent below 1,
    which would promise too much at 200M; this fit keeps the per-image cost constant instead."""
    mean_n = sum(n for n, _ in points) / len(points)
    mean_t = sum(t for _, t in points) / len(points)
    spread = sum((n - mean_n) ** 2 for n, _ in points)
    per_image = sum((n - mean_n) * (t - mean_t) for n, t in points) / spread if spread else 0.0
    return mean_t - per_image * mean_n, per_image


def print_fit(backend: str, timings: dict[str, list[tuple[int, float]]], target: int, budget: float) -> None:
    """Each stage's growth exponent and its time extrapolated to `target` images by two fits (a power law, and a
    fixed part plus a constant cost per image), as a Markdown table; names the first stage (in pipeline order)
    whose larger projection is over `budget` seconds."""
    sizes = [n for n, _ in next(iter(timings.values()))]
    print(f"\n{backend}: fits over {', '.join(f'{n:,}' for n in sizes)} images, extrapolated to {target:,}\n")
    print(f"| stage | {' | '.join(f'{n / 1e6:g}M s' for n in sizes)} | exponent b | images/s at largest | "
          f"{target / 1e6:g}M, a × n^b | {target / 1e6:g}M, fixed + per image |")
    print("|---|" + "---|" * (len(sizes) + 4))
    first_over = None
    for stage, points in timings.items():
        if len(points) < 2:
            continue
        a, b = fit(points)
        fixed, per_image = fit_affine(points)
        power, affine = a * target ** b, fixed + per_image * target
        if max(power, affine) > budget and first_over is None:
            first_over = stage
        largest_n, largest_t = points[-1]
        print(f"| {stage} | {' | '.join(f'{t:.1f}' for _, t in points)} | {b:.2f} | "
              f"{largest_n / largest_t:,.0f} | {power / 60:,.1f} min | {affine / 60:,.1f} min |")
    print(f"\nfirst stage over {budget / 3600:g} h at {target:,} images (by the larger projection): "
          f"{first_over or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", default="10000000",
                        help="Images (default 10,000,000); several, comma-separated, run each size on a fresh "
                        "catalog and fit each stage's growth (see --extrapolate).")
    parser.add_argument("--extrapolate", type=int, default=200_000_000,
                        help="With several --images: the catalog size each stage's fit is extrapolated to.")
    parser.add_argument("--budget", type=float, default=3600.0, help="Seconds a stage may take at --extrapolate.")
    parser.add_argument("--taxa", type=int, default=450_000, help="Distinct naming keys.")
    parser.add_argument("--dh-rows", type=int, default=2_500_000,
                        help="Dynamic Hierarchy rows, most for pages no image shows (the real DH has 2.5M).")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help="Comma-separated stages to run, in order (each needs the ones before it).")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--keep", type=Path, help="Keep the catalogs in this folder and reuse them on the next run "
                        "with the same folder (then give --stages the stages to time again).")
    parser.add_argument("--stage", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        stage, url, images, workdir = args.stage
        print(json.dumps(run_stage(stage, url, int(images), args.taxa, args.dh_rows, workdir)))
        return
    stages = args.stages.split(",")
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        parser.error(f"--stages: unknown stage {unknown[0]!r}; choose from {', '.join(STAGES)}")
    try:
        sizes = sorted(int(value.replace("_", "")) for value in args.images.split(","))
    except ValueError:
        parser.error(f"--images: whole numbers, comma-separated, not {args.images!r}")
    if args.keep and len(sizes) > 1:
        parser.error("--keep takes one --images size")
    print(f"scale benchmark: {', '.join(f'{n:,}' for n in sizes)} images, {args.taxa:,} naming keys, DH of "
          f"{args.dh_rows:,} rows, load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}\n"
          f"machine: {machine()}")
    for backend in args.backends.split(","):
        timings: dict[str, list[tuple[int, float]]] = {}
        for images in sizes:
            for stage, seconds in run_size(backend, images, stages, args).items():
                timings.setdefault(stage, []).append((images, seconds))
        if len(sizes) > 1:
            print_fit(backend, timings, args.extrapolate, args.budget)


def run_size(backend: str, images: int, stages: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Every stage of `stages` on a catalog of `images` images; prints a line each; returns their seconds."""
    seconds: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        if args.keep:
            workdir = str(args.keep.resolve())
            url = stack.enter_context(kept_catalog(backend, args.keep))
        else:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(dir=os.environ.get("TOL_BENCH_DIR")))
            url = stack.enter_context(fresh_catalog(backend, Path(workdir)))
        print(f"\n{backend}, {images:,} images (load average {os.getloadavg()[0]:.1f}):")
        if backend == "postgresql":
            print("  server settings: " + server_settings(url))
        print(f"  {'stage':<18} {'wall':>9} {'rows/s':>12} {'peak RSS':>9} {'db size':>9}  notes")
        for stage in stages:
            out = subprocess.run([sys.executable, __file__, "--taxa", str(args.taxa), "--dh-rows",
                                  str(args.dh_rows), "--stage", stage, url,
                                  str(images), workdir], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"  {stage:<18} FAILED: {out.stderr.strip().splitlines()[-1]}")
                break
            r = json.loads(out.stdout.strip().splitlines()[-1])
            notes = {k: v for k, v in r.items() if k not in ("stage", "seconds", "rss", "rows")}
            rate = r["rows"] / r["seconds"] if r["seconds"] else 0.0
            seconds[stage] = r["seconds"]
            print(f"  {stage:<18} {r['seconds']:>7.1f} s {rate:>12,.0f} {r['rss']:>6.0f} MB "
                  f"{database_size(url) / 1e9:>6.2f} GB  {notes}", flush=True)
    return seconds


if __name__ == "__main__":
    main()
