"""`tol shards`: plan, write and verify WebDataset shards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from etl.commands.state import State, TolGroup, pass_state
from etl.errors import ExitCode, TolError, WorkLeftError

if TYPE_CHECKING:
    from etl.write.launch import WriteOptions


def worker_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options of every command that runs write workers: --workers, --lease, --max-attempts, --grace."""
    for option in reversed([
        click.option("--workers", type=int, help="Local worker processes (setting `workers`); 1 under MPI."),
        click.option("--lease", default=120.0, show_default=True, help="Seconds a claim lasts unless renewed."),
        click.option("--max-attempts", default=3, show_default=True,
                     help="Attempts before a shard is marked failed."),
        click.option("--grace", default=60.0, show_default=True,
                     help="Seconds to finish the shard in hand after SIGTERM before releasing it."),
    ]):
        command = option(command)
    return command


def _run_workers(state: State, options: WriteOptions, workers: int | None) -> None:
    """Run the write workers, print the report (rank 0 under MPI) and exit 3 unless every shard is done."""
    from etl.write.launch import write_plan

    report = write_plan(options, workers or state.config().get_value("workers"), progress=not state.quiet)
    if report is not None:  # MPI ranks other than 0 leave the report to rank 0
        for line in report.lines():
            click.echo(line)
        report.check_complete()


@click.group("shards", cls=TolGroup)
def shards_group() -> None:
    """Plan, write and verify WebDataset shards.

    \b
    Example:
      tol shards plan main-val --splits main --split val
      tol shards write main-val --workers 4
      tol shards verify main-val --full
    """


@shards_group.command("plan")
@click.argument("plan")
@click.option("--splits", "split_name", required=True, help="Split definition (see tol splits create).")
@click.option("--split", type=click.Choice(["train", "val", "train_small"]), required=True)
@click.option("--size", default="224x224", show_default=True, help="Output WIDTHxHEIGHT.")
@click.option("--resize", type=click.Choice(["squash", "center-crop", "pad"]), default="center-crop",
              show_default=True)
@click.option("--quality", default=95, show_default=True, help="JPEG quality.")
@click.option("--samples-per-shard", type=int,
              help="Samples per shard (default 10000, or fewer so the plan has --min-shards shards).")
@click.option("--shard-bytes", help="Target shard size instead, e.g. 3GB (from an estimate of sample size).")
@click.option("--min-shards", default=64, show_default=True,
              help="Shards a loader needs (ranks x workers): the default size is cut to reach it; "
                   "a plan with fewer shards than this (but samples enough) is warned about.")
@click.option("--txt-field", default="taxonTag_com", show_default=True,
              help="Caption copied to the `txt` member (what open_clip reads).")
@click.option("--lower-case-captions", is_flag=True,
              help="Name caption members in lower case (taxontag_com.txt), as webdataset-based readers see them.")
@click.option("--seed", "shuffle_seed", default=0, show_default=True, help="Seed of the sample order.")
@click.option("--out", type=click.Path(file_okay=False), help="Folder of the shards (default OUTPUT_DIR/PLAN).")
@click.option("--licenses", help="Take only images under these licenses, e.g. cc0,pd,cc-by,cc-by-sa (keys as "
              "tol licenses load normalises them); others, and images of unknown license, are left out and counted.")
@pass_state
def shards_plan(state: State, plan: str, split_name: str, split: str, size: str, resize: str, quality: int,
                samples_per_shard: int | None, shard_bytes: str | None, min_shards: int, txt_field: str,
                lower_case_captions: bool, shuffle_seed: int, out: str | None, licenses: str | None) -> None:
    """Record plan PLAN: every shard and its samples, in a seeded order that mixes sources and species.

    Excluded and unnamed images are left out and counted. A plan never changes.

    \b
    Example:
      tol shards plan main-train --splits main --split train --size 224x224 --samples-per-shard 10000
    """
    from etl.plan import PlanOptions, Split, create_plan, few_shards_warning, license_filter, parse_bytes, parse_size
    from etl.provenance import parse_allowed

    width, height = parse_size(size)
    out_dir = Path(out) if out else Path(state.config().get_value("output_dir")) / plan
    options = PlanOptions(
        split_name=split_name, split=cast(Split, split), width=width, height=height, resize=resize,
        quality=quality, samples_per_shard=samples_per_shard,
        shard_bytes=parse_bytes(shard_bytes) if shard_bytes else None,
        txt_field=txt_field, out_dir=str(out_dir.resolve()), shuffle_seed=shuffle_seed,
        caption_case="lower" if lower_case_captions else "original", min_shards=min_shards,
        licenses=parse_allowed(licenses) if licenses is not None else None)
    result, created = create_plan(state.engine(), plan, options, progress=not state.quiet)
    verb = "planned" if created else "already planned, unchanged:"
    allowed = license_filter(state.engine(), result.id)
    by_license = f", {allowed.n_left_out:,} by license" if allowed else ""
    click.echo(f"{result.name} {verb} {result.n_samples:,} samples in {result.n_shards} shards "
               f"({result.split}, {result.width}x{result.height}) into {result.out_dir}; "
               f"left out: {result.n_excluded:,} excluded, {result.n_unnamed:,} unnamed{by_license}")
    warning = few_shards_warning(result.name, result.n_samples, result.n_shards, min_shards)
    if warning:
        click.echo(warning, err=True)


@shards_group.command("write")
@click.argument("plan")
@worker_options
@pass_state
def shards_write(state: State, plan: str, workers: int | None, lease: float, max_attempts: int,
                 grace: float) -> None:
    """Write the shards of PLAN that are not done yet (a finished plan makes no claim).

    Under MPI (srun --mpi=pmi2, mpiexec) each rank is one worker; rank 0 prints the summary of all ranks.

    \b
    Example:
      tol shards write main-train --workers 8
      srun --mpi=pmi2 -n 64 tol shards write main-train
    """
    from etl.write.launch import WriteOptions

    state.engine()  # refuses a catalog that is not at head
    options = WriteOptions.from_settings(state.config(), plan, lease_seconds=lease, max_attempts=max_attempts,
                                         grace_seconds=grace)
    _run_workers(state, options, workers)


@shards_group.command("repair")
@click.argument("plan")
@worker_options
@pass_state
def shards_repair(state: State, plan: str, workers: int | None, lease: float, max_attempts: int,
                  grace: float) -> None:
    """Write again the done shards of PLAN holding image errors whose cause may have passed (unreadable,
    missing file, timeout), e.g. after a source was away during the write.

    Each shard keeps its planned sample order; its new bytes get a new manifest. Images that still fail are
    recorded again. Run it as one process (not under MPI).

    \b
    Example:
      tol shards repair main-train --workers 8
    """
    from etl.write.launch import WriteOptions, reopen_for_repair
    from etl.write.queue import plural

    state.engine()  # refuses a catalog that is not at head
    options = WriteOptions.from_settings(state.config(), plan, lease_seconds=lease, max_attempts=max_attempts,
                                         grace_seconds=grace)
    count = reopen_for_repair(options)
    click.echo(f"{plan}: {plural(count, 'done shard')} with passing image errors set back to pending")
    _run_workers(state, options, workers)


@shards_group.command("retry")
@click.argument("plan")
@pass_state
def shards_retry(state: State, plan: str) -> None:
    """Set the failed shards of PLAN back to pending, their attempts forgiven, for the next write.

    \b
    Example:
      tol shards retry main-train && tol shards write main-train
    """
    from etl.plan import get_plan
    from etl.write.queue import ShardQueue, plural

    engine = state.engine()
    count = ShardQueue(engine).retry_failed(get_plan(engine, plan).id)
    click.echo(f"{plan}: {plural(count, 'failed shard')} set back to pending")


@shards_group.command("verify")
@click.argument("plan", required=False)
@click.option("--full", is_flag=True, help="Also read every sample back with the webdataset reader.")
@click.option("--reset", is_flag=True, help="Set bad shards back to pending, to be written again.")
@click.option("--workers", type=int, help="Processes checking shards in parallel (setting `workers`).")
@click.option("--shardlist", metavar="PATTERN",
              help="Check these shards with no catalog instead: brace expansion (shard-{000000..000031}.tar), globs.")
@click.option("--no-decode", is_flag=True, help="With --shardlist: skip decoding images and texts.")
@pass_state
def shards_verify(state: State, plan: str | None, full: bool, reset: bool, workers: int | None,
                  shardlist: str | None, no_decode: bool) -> None:
    """Check every shard of PLAN against its manifest (and, with --full, against the catalog), or any shards
    named by --shardlist against the WebDataset format (no catalog needed).

    Prints the bad shards and exits 3 if there is any (with --reset, after setting them back to pending, so
    `||` runs the write that replaces them).

    \b
    Example:
      tol shards verify main-val --full
      tol shards verify main-val --reset || tol shards write main-val
      tol shards verify --shardlist 'downloads/shard-{000003..000031}.tar'
    """
    if shardlist is not None:
        if plan is not None or full or reset:
            raise TolError("--shardlist checks shards without the catalog: give no PLAN, --full or --reset with it")
        _verify_shardlist(state, shardlist, workers, decode=not no_decode)
        return
    if plan is None:
        raise TolError("give a PLAN, or --shardlist PATTERN")
    from etl import verify
    from etl.write.queue import plural

    settings = state.config(workers=workers)
    results = verify.verify(state.engine(), settings.database_url, plan, full=full, reset=reset,
                            workers=settings.get_value("workers"), progress=not state.quiet)
    for line in verify.report_lines(results, full=full):
        click.echo(line)
    bad = sum(1 for result in results if result.problems)
    if bad:
        suffix = " (set back to pending)" if reset else ""
        raise WorkLeftError(f"{plural(bad, 'bad shard')} in plan {plan}{suffix}")


def _verify_shardlist(state: State, pattern: str, workers: int | None, decode: bool) -> None:
    from etl import shardcheck

    paths = shardcheck.expand_shardlist(pattern)
    count = workers if workers is not None else state.config().get_value("workers")
    reports = shardcheck.check_shardlist(paths, decode=decode, workers=count)
    for line in shardcheck.report_lines(reports):
        click.echo(line)
    if any(report.problems for report in reports):
        raise SystemExit(ExitCode.WORK_LEFT)


@shards_group.command("index")
@click.argument("plan")
@pass_state
def shards_index(state: State, plan: str) -> None:
    """Write the sidecars of finished plan PLAN again: sizes.json, __len__, shardindex.json and README.md.

    They are written when the last shard of a plan is done; this rewrites them from the catalog's manifests.
    A README.md that tol report wrote (the fuller dataset card) is kept; tol report refreshes it.

    \b
    Example:
      tol shards index main-train
    """
    from etl.plan import get_plan
    from etl.write.queue import ShardQueue
    from etl.write.sidecars import write_sidecars

    engine = state.engine()
    found = get_plan(engine, plan)
    rows = ShardQueue(engine).shards(found.id)
    unfinished = sum(1 for row in rows if row.state != "done")
    if unfinished:
        raise WorkLeftError(f"{plan}: {unfinished} of {len(rows)} shards not done; no sidecar written")
    written = write_sidecars(Path(found.out_dir), found, rows)
    for path in written:
        click.echo(str(path))
    if not any(path.name == "README.md" for path in written):
        click.echo(f"{Path(found.out_dir) / 'README.md'} kept: it is tol report's dataset card "
                   f"(tol report {plan} refreshes it)")
