"""The `tol` command line: a thin layer that parses options and calls the stage modules.

Every command's help ends with an example. Errors the user can act on arrive as `TolError` and are printed as
one line (``Error: …``) with exit status 1; Ctrl-C exits 130 after the stage has rolled back what it had not
committed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Engine

from etl import config as config_mod
from etl import db, schema
from etl.errors import TolError
from etl.sources import SOURCES, Source


@dataclass
class State:
    """What the top-level options gave, and the engine once opened."""

    config_file: str | None = None
    flags: dict[str, Any] = field(default_factory=dict)
    quiet: bool = False
    _engine: Engine | None = None

    def config(self, **overrides: Any) -> config_mod.Config:
        """The effective configuration, with this command's own flags on top of the global ones."""
        flags = {**self.flags, **{k: v for k, v in overrides.items() if v is not None}}
        return config_mod.resolve(flags, config_file=self.config_file)

    def engine(self, *, check_schema: bool = True) -> Engine:
        """The catalog engine; unless `check_schema` is False, refuse a catalog that is not at head."""
        if self._engine is None:
            self._engine = db.make_engine(self.config().database_url)
            db.check_reachable(self._engine)
        if check_schema:
            schema.require_head(self._engine)
        return self._engine


pass_state = click.make_pass_decorator(State)


class TolGroup(click.Group):
    """A click group that turns `TolError` into a one-line message and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TolError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=TolGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--config", "config_file", metavar="FILE", envvar="TOL_CONFIG",
              help="TOML config file (also TOL_CONFIG).")
@click.option("--database-url", metavar="URL", help="Catalog database URL (also TOL_DATABASE_URL).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.version_option(package_name="treeoflife-etl")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, database_url: str | None, quiet: bool) -> None:
    """Build a TreeOfLife WebDataset from iNat21, EOL and BIOSCAN-1M through one catalog database.

    Settings come from flags, then TOL_* environment variables, then the config file, then defaults.

    \b
    Example:
      tol --database-url sqlite:///catalog.sqlite db upgrade
      tol demo demo-run
    """
    ctx.obj = State(config_file=config_file, flags={"database_url": database_url}, quiet=quiet)


# --------------------------------------------------------------------------------------------------- db


@cli.group(cls=TolGroup)
def db_group() -> None:
    """Create, migrate and inspect the catalog schema.

    \b
    Example:
      tol db upgrade
    """


cli.add_command(db_group, "db")


@db_group.command("upgrade")
@click.argument("revision", default="head")
@pass_state
def db_upgrade(state: State, revision: str) -> None:
    """Migrate the catalog up to REVISION (default: head), creating it if needed.

    \b
    Example:
      tol db upgrade
      TOL_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/tol tol db upgrade
    """
    engine = state.engine(check_schema=False)
    schema.upgrade(engine, revision)
    click.echo(f"catalog {db.describe(state.config().database_url)} at {schema.current_revision(engine)}")


@db_group.command("downgrade")
@click.argument("revision")
@pass_state
def db_downgrade(state: State, revision: str) -> None:
    """Migrate the catalog down to REVISION (`base` removes every table).

    \b
    Example:
      tol db downgrade base
    """
    engine = state.engine(check_schema=False)
    schema.downgrade(engine, revision)
    click.echo(f"catalog at {schema.current_revision(engine) or 'base'}")


@db_group.command("current")
@pass_state
def db_current(state: State) -> None:
    """Print the catalog's schema revision and this tol's head revision.

    \b
    Example:
      tol db current
    """
    engine = state.engine(check_schema=False)
    current = schema.current_revision(engine)
    head = schema.head_revision()
    status = "up to date" if current == head else "run `tol db upgrade`"
    click.echo(f"current: {current or 'base'}\nhead:    {head}\n{status}")


# --------------------------------------------------------------------------------------------------- config


@cli.group("config", cls=TolGroup)
def config_group() -> None:
    """Inspect the effective configuration.

    \b
    Example:
      tol --config cluster.toml config show
    """


@config_group.command("show")
@pass_state
def config_show(state: State) -> None:
    """Print every setting, its effective value and where it came from (passwords masked).

    Precedence: flag > TOL_* environment variable > config file > default.

    \b
    Example:
      TOL_WORKERS=8 tol --config cluster.toml config show
    """
    effective = state.config()
    width = max(len(s.name) for s in config_mod.SETTINGS)
    if effective.file:
        click.echo(f"config file: {effective.file}")
    for setting in config_mod.SETTINGS:
        value = effective[setting.name]
        shown = config_mod.display_value(setting, value.value)
        click.echo(f"{setting.name:<{width}}  {shown}  ({value.origin})")


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="tol")
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


# --------------------------------------------------------------------------------------------------- sample data


@cli.command("sample-data")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--images", default=5000, show_default=True, help="About how many images to write.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same bytes.")
def sample_data(out: str, images: int, seed: int) -> None:
    """Write a sample collection laid out like the real iNat21, EOL and BIOSCAN-1M trees into OUT.

    Includes every reference file the later stages read, a `tol.toml` pointing at all of it, and
    `expected.json` saying what an ingest must find.

    \b
    Example:
      tol sample-data sample --images 2000 --seed 1
      tol --config sample/tol.toml ingest inat21
    """
    from etl import sampledata

    expected = sampledata.generate(out, images=images, seed=seed)
    total = sum(expected.catalogued.values())
    click.echo(f"wrote {total} catalogable images ({', '.join(f'{k} {v}' for k, v in expected.catalogued.items())})"
               f" and reference files to {out}; config: {Path(out) / 'tol.toml'}")


# --------------------------------------------------------------------------------------------------- ingest


@cli.group("ingest", cls=TolGroup)
def ingest_group() -> None:
    """Catalogue the images of a source (re-runnable: adds new files, marks vanished ones missing).

    \b
    Example:
      tol ingest inat21 /data/inat21/train
      tol --config cluster.toml ingest eol
    """


def _ingest_command(source: Source):
    metadata_setting = source.METADATA.setting.name if source.METADATA is not None else None

    @click.argument("root", required=False, type=click.Path())
    @click.option("--workers", type=int, help="Processes listing units in parallel (setting `workers`).")
    @click.option("--no-check-images", is_flag=True,
                  help="Do not read each image's first and last bytes (faster on slow filesystems).")
    @pass_state
    def command(state: State, root: str | None, workers: int | None, no_check_images: bool,
                metadata: str | None = None) -> None:
        from etl import catalog

        flags = {source.ROOT.name: root, "workers": workers}
        if metadata_setting is not None:
            flags[metadata_setting] = metadata
        settings = state.config(**flags)
        summary = catalog.ingest(
            state.engine(), source.NAME, settings.path(source.ROOT.name, required_for=f"tol ingest {source.NAME}"),
            metadata=settings.path(metadata_setting) if metadata_setting is not None else None,
            workers=settings.get_value("workers"), check_images=not no_check_images,
            progress=not state.quiet, echo=click.echo)
        for line in summary.lines():
            click.echo(line)

    command.__doc__ = source.INGEST_HELP
    if source.METADATA is not None:
        command = click.option("--metadata", type=click.Path(),
                               help=f"{source.METADATA.option_help} (setting `{metadata_setting}`).")(command)
    return command


for _source in SOURCES:
    ingest_group.command(_source.NAME)(_ingest_command(_source))


# --------------------------------------------------------------------------------------------------- splits


@cli.group("splits", cls=TolGroup)
def splits_group() -> None:
    """Define and inspect train / val / train_small splits (SQL view `image_splits`).

    \b
    Example:
      tol splits create main --seed 17 --val-percent 5 --train-small-percent 10
      tol splits show main
    """


@splits_group.command("create")
@click.argument("name")
@click.option("--seed", default=17, show_default=True, type=int)
@click.option("--val-percent", default=5.0, show_default=True, type=float)
@click.option("--train-small-percent", default=10.0, show_default=True, type=float,
              help="Share of train also in train_small.")
@pass_state
def splits_create(state: State, name: str, seed: int, val_percent: float, train_small_percent: float) -> None:
    """Record split definition NAME. A definition never changes; a new one needs a new name.

    An image's split depends only on the seed and its stable id, on either database, in any order.

    \b
    Example:
      tol splits create v1 --seed 17 --val-percent 5 --train-small-percent 10
      sqlite3 catalog.sqlite "SELECT split, COUNT(*) FROM image_splits WHERE split_name = 'v1' GROUP BY 1"
    """
    from etl import splits

    params, created = splits.create(state.engine(), name, seed, val_percent, train_small_percent)
    verb = "created" if created else "already exists, unchanged:"
    click.echo(f"split {name} {verb} seed {params.seed}, val {params.val_percent:g} %, "
               f"train_small {params.train_small_percent:g} % of train")


@splits_group.command("list")
@pass_state
def splits_list(state: State) -> None:
    """List split definitions.

    \b
    Example:
      tol splits list
    """
    from etl import splits

    for d in splits.list_definitions(state.engine()):
        click.echo(f"{d.name}\tseed {d.seed}\tval {d.val_percent:g} %\ttrain_small {d.train_small_percent:g} %")


@splits_group.command("show")
@click.argument("name")
@pass_state
def splits_show(state: State, name: str) -> None:
    """Counts of split NAME per split, source and kingdom, and val species never seen in train.

    \b
    Example:
      tol splits show v1
    """
    from etl import splits

    result = splits.report(state.engine(), name)
    d = result.definition
    click.echo(f"split {d.name}: seed {d.seed}, val {d.val_percent:g} %, train_small {d.train_small_percent:g} %")
    click.echo(f"{'split':<12} {'source':<8} {'kingdom':<20} {'images':>10}")
    for split, source, kingdom, count in result.counts:
        click.echo(f"{split:<12} {source:<8} {kingdom:<20} {count:>10,}")
    click.echo(f"val species never in train: {result.val_species_not_in_train} of {result.val_species}")


# --------------------------------------------------------------------------------------------------- exclude


@cli.group("exclude", cls=TolGroup)
def exclude_group() -> None:
    """Load exclusion lists and prove that no shard plan holds an excluded image.

    \b
    Example:
      tol exclude rare-species --seen seen_in_training.json --unseen unseen_in_training.json
      tol exclude report
    """


@exclude_group.command("rare-species")
@click.option("--seen", type=click.Path(), help="seen_in_training.json (setting `rare_seen`).")
@click.option("--unseen", type=click.Path(), help="unseen_in_training.json (setting `rare_unseen`).")
@pass_state
def exclude_rare_species(state: State, seen: str | None, unseen: str | None) -> None:
    """Exclude the Rare Species benchmark: listed images by file name, unseen species entirely.

    Re-running replaces the two lists.

    \b
    Example:
      tol exclude rare-species --seen rarespecies/seen_in_training.json --unseen rarespecies/unseen_in_training.json
    """
    from etl import exclusions

    settings = state.config(rare_seen=seen, rare_unseen=unseen)
    images, species = exclusions.load_rare_species(
        state.engine(), settings.path("rare_seen", required_for="tol exclude rare-species"),
        settings.path("rare_unseen", required_for="tol exclude rare-species"))
    click.echo(f"loaded {images} image entries and {species} species entries; see `tol exclude report`")


@exclude_group.command("report")
@click.option("--examples", default=10, show_default=True, help="Unmatched entries to print.")
@pass_state
def exclude_report(state: State, examples: int) -> None:
    """Counts per list, entries that match no image, and the overlap with shard plans (must be zero).

    Exits non-zero if any shard plan holds an excluded image or an image of an excluded species.

    \b
    Example:
      tol exclude report
    """
    from etl import exclusions

    result = exclusions.report(state.engine())
    for list_name, kind, entries, matched in result.per_list:
        click.echo(f"{list_name:<22} {kind:<8} {entries:>7} entries  {matched:>9} images matched")
    click.echo(f"excluded images in the catalog: {result.excluded_images}")
    if result.unmatched:
        click.echo(f"entries matching no catalogued image: {len(result.unmatched)}")
        for list_name, entry in result.unmatched[:examples]:
            click.echo(f"  {list_name}: {entry}")
    click.echo(f"shard plans: {result.plans}; planned samples that are excluded images: {result.planned_excluded}; "
               f"of excluded species: {result.planned_unseen_species}")
    if result.planned_excluded or result.planned_unseen_species:
        raise TolError("excluded images are in a shard plan")
    click.echo("overlap: none")


# --------------------------------------------------------------------------------------------------- taxa


@cli.group("taxa", cls=TolGroup)
def taxa_group() -> None:
    """Load the naming references, resolve every image's taxon and common name, check the result.

    \b
    Example:
      tol --config tol.toml taxa load
      tol --config tol.toml taxa resolve
      tol --config tol.toml taxa check
    """


def _reference_options(function):
    from etl.taxonomy import LOAD_SETTINGS

    for setting in reversed(LOAD_SETTINGS):
        function = click.option(f"--{setting.replace('_', '-')}", setting, type=click.Path(),
                                help=f"(setting `{setting}`)")(function)
    return function


@taxa_group.command("load")
@_reference_options
@pass_state
def taxa_load(state: State, **paths: str | None) -> None:
    """Load every reference file into the catalog (each replaces its previous load).

    A file that is not configured or not found is reported and skipped; resolving does what it can.

    \b
    Example:
      tol taxa load --eol-taxon-tab dh21/taxon.tab --itis-chains itis/species_level_taxonomy_chains.csv
    """
    from etl import taxonomy

    settings = state.config(**paths)
    results = taxonomy.load(state.engine(), {setting: settings.path(setting) for setting in taxonomy.LOAD_SETTINGS})
    for result in results:
        detail = f"{result.rows:,} rows from {result.path}" if result.status == "loaded" else result.status
        click.echo(f"{result.name:<18} {detail}")


@taxa_group.command("resolve")
@pass_state
def taxa_resolve(state: State) -> None:
    """Give every catalogued image a taxon and common name, once per EOL page, iNat21 class and BIOSCAN label.

    \b
    Example:
      tol taxa resolve
      sqlite3 catalog.sqlite "SELECT source, unnamed_reason, COUNT(*) FROM image_names GROUP BY 1, 2"
    """
    from etl import taxonomy

    summary = taxonomy.resolve(state.engine())
    for name in summary.missing_resources:
        click.echo(f"warning: reference {name} not loaded; naming without it")
    for source, count in sorted(summary.keys.items()):
        click.echo(f"{source}: {count} keys, {summary.unnamed_keys.get(source, 0)} without a taxon")
    click.echo(f"{summary.taxa} taxa; {summary.named_images} images named, {summary.unnamed_images} not; "
               f"{summary.upgraded_keys} keys upgraded or unified (see the `changes` columns of names_*)")
    for conflict in summary.conflicts[:10]:
        click.echo(f"conflict: {conflict}")


@taxa_group.command("check")
@click.option("--examples", default=5, show_default=True, help="Example rows per check.")
@pass_state
def taxa_check(state: State, examples: int) -> None:
    """Quality checks of the resolved taxa (the SQL in sql/checks/), with counts and example rows.

    \b
    Example:
      tol taxa check --examples 3
    """
    from etl import taxonomy

    for result in taxonomy.check(state.engine(), examples):
        click.echo(f"== {result.title}: {result.count}")
        if result.examples:
            click.echo("   " + " | ".join(result.columns))
        for row in result.examples:
            click.echo("   " + " | ".join("" if v is None else str(v) for v in row))


# --------------------------------------------------------------------------------------------------- shards


@cli.group("shards", cls=TolGroup)
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
@click.option("--samples-per-shard", type=int, help="Samples per shard (default 10000).")
@click.option("--shard-bytes", help="Target shard size instead, e.g. 3GB (from an estimate of sample size).")
@click.option("--txt-field", default="taxonTag_com", show_default=True,
              help="Caption copied to the `txt` member (what open_clip reads).")
@click.option("--seed", "shuffle_seed", default=0, show_default=True, help="Seed of the sample order.")
@click.option("--out", type=click.Path(file_okay=False), help="Folder of the shards (default OUTPUT_DIR/PLAN).")
@pass_state
def shards_plan(state: State, plan: str, split_name: str, split: str, size: str, resize: str, quality: int,
                samples_per_shard: int | None, shard_bytes: str | None, txt_field: str, shuffle_seed: int,
                out: str | None) -> None:
    """Record plan PLAN: every shard and its samples, in a seeded order that mixes sources and species.

    Excluded and unnamed images are left out and counted. A plan never changes.

    \b
    Example:
      tol shards plan main-train --splits main --split train --size 224x224 --samples-per-shard 10000
    """
    from etl.plan import PlanOptions, create_plan, parse_bytes, parse_size

    width, height = parse_size(size)
    out_dir = Path(out) if out else Path(state.config().get_value("output_dir")) / plan
    options = PlanOptions(
        split_name=split_name, split=split, width=width, height=height, resize=resize, quality=quality,
        samples_per_shard=samples_per_shard,
        shard_bytes=parse_bytes(shard_bytes) if shard_bytes else None,
        txt_field=txt_field, out_dir=str(out_dir.resolve()), shuffle_seed=shuffle_seed)
    result, created = create_plan(state.engine(), plan, options)
    verb = "planned" if created else "already planned, unchanged:"
    click.echo(f"{result.name} {verb} {result.n_samples:,} samples in {result.n_shards} shards "
               f"({result.split}, {result.width}x{result.height}) into {result.out_dir}; "
               f"left out: {result.n_excluded:,} excluded, {result.n_unnamed:,} unnamed")


@shards_group.command("write")
@click.argument("plan")
@click.option("--workers", type=int, help="Local worker processes (setting `workers`); 1 under MPI.")
@click.option("--lease", default=120.0, show_default=True, help="Seconds a claim lasts unless renewed.")
@click.option("--max-attempts", default=3, show_default=True, help="Attempts before a shard is marked failed.")
@click.option("--grace", default=60.0, show_default=True,
              help="Seconds to finish the shard in hand after SIGTERM before releasing it.")
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
    from etl.write.launch import WriteOptions, write_plan

    state.engine()  # refuses a catalog that is not at head
    options = WriteOptions.from_settings(state.config(), plan, lease_seconds=lease, max_attempts=max_attempts,
                                         grace_seconds=grace)
    report = write_plan(options, workers or state.config().get_value("workers"))
    for line in report.lines() if report else []:
        click.echo(line)


@shards_group.command("verify")
@click.argument("plan")
@click.option("--full", is_flag=True, help="Also read every sample back with the webdataset reader.")
@click.option("--reset", is_flag=True, help="Set bad shards back to pending, to be written again.")
@click.option("--workers", type=int, help="Processes checking shards in parallel (setting `workers`).")
@pass_state
def shards_verify(state: State, plan: str, full: bool, reset: bool, workers: int | None) -> None:
    """Check every shard of PLAN against its manifest (and, with --full, against the catalog).

    Prints the bad shards and exits non-zero if there is any.

    \b
    Example:
      tol shards verify main-val --full
      tol shards verify main-val --reset && tol shards write main-val
    """
    from etl import verify

    settings = state.config(workers=workers)
    results = verify.verify(state.engine(), settings.database_url, plan, full=full, reset=reset,
                            workers=settings.get_value("workers"))
    bad = [r for r in results if r.problems]
    for result in bad:
        click.echo(f"BAD {result.path}: " + "; ".join(result.problems[:5]))
    click.echo(f"{len(results) - len(bad)} of {len(results)} shards good" + (" (full check)" if full else ""))
    if bad:
        suffix = " (set back to pending)" if reset else ""
        raise TolError(f"{len(bad)} bad shards in plan {plan}{suffix}")


@cli.command("status")
@click.argument("plan", required=False)
@pass_state
def status_command(state: State, plan: str | None) -> None:
    """Shards pending / claimed / done / failed, samples written, rate and ETA (safe while workers run).

    \b
    Example:
      tol status
      watch -n 10 tol status main-train
    """
    from etl.plan import get_plan, plan_names
    from etl.write.queue import ShardQueue

    engine = state.engine()
    if plan is None:
        names = plan_names(engine)
        if not names:
            click.echo("no shard plans yet (tol shards plan)")
    else:
        names = [plan]
    queue = ShardQueue(engine)
    for name in names:
        result = queue.status(get_plan(engine, name))
        s = result.states
        eta = f", ETA {result.eta_seconds / 60:.1f} min" if result.eta_seconds else ""
        click.echo(f"{name}: {s['done']}/{result.plan.n_shards} shards done, {s['claimed']} claimed, "
                   f"{s['pending']} pending, {s['failed']} failed; {result.samples_written:,}/"
                   f"{result.plan.n_samples:,} samples, {result.images_per_second:,.1f} images/s{eta}")
        if plan is not None:
            for worker, count, samples in result.workers:
                click.echo(f"  {worker}: {count} shards, {samples or 0:,} samples")
            for index, error in result.failed:
                click.echo(f"  failed shard {index}: {error}")


# --------------------------------------------------------------------------------------------------- catalog


@cli.group("catalog", cls=TolGroup)
def catalog_group() -> None:
    """Export what was written.

    \b
    Example:
      tol catalog export main-train --format parquet --out catalog-train.parquet
    """


@catalog_group.command("export")
@click.argument("plan")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@pass_state
def catalog_export(state: State, plan: str, fmt: str, out: str) -> None:
    """One row per written sample of PLAN: the catalog.csv columns plus shard and position.

    \b
    Example:
      tol catalog export main-val --format csv --out catalog-val.csv
    """
    from etl import export

    count = export.export(state.engine(), plan, fmt, Path(out))
    click.echo(f"wrote {count:,} rows to {out}")


# --------------------------------------------------------------------------------------------------- pipeline


@cli.command("run")
@click.option("--split-name", default="main", show_default=True, help="Split definition to create and use.")
@click.option("--seed", default=17, show_default=True)
@click.option("--val-percent", default=5.0, show_default=True)
@click.option("--train-small-percent", default=10.0, show_default=True)
@click.option("--samples-per-shard", default=1000, show_default=True)
@click.option("--size", default="224x224", show_default=True)
@click.option("--workers", type=int, help="Processes for listing, writing and verifying (setting `workers`).")
@pass_state
def run_command(state: State, split_name: str, seed: int, val_percent: float, train_small_percent: float,
                samples_per_shard: int, size: str, workers: int | None) -> None:
    """Run the whole pipeline from the configuration, skipping what is already done.

    Ingest, taxa, exclusions, splits, a plan and its shards for train, val and train_small, verify, export.

    \b
    Example:
      tol --config cluster.toml run --workers 16
    """
    from etl import pipeline

    pipeline.run(state.config(workers=workers), state.engine(), split_name=split_name, seed=seed,
                 val_percent=val_percent, train_small_percent=train_small_percent,
                 samples_per_shard=samples_per_shard, size=size, quiet=state.quiet, echo=click.echo)


@cli.command("demo")
@click.argument("directory", default="demo", type=click.Path(file_okay=False))
@click.option("--images", default=2000, show_default=True, help="Size of the sample collection.")
@pass_state
def demo(state: State, directory: str, images: int) -> None:
    """Make a sample collection in DIRECTORY and run the whole pipeline on it with a SQLite catalog.

    \b
    Example:
      tol demo demo-run --images 1000
    """
    from etl import pipeline

    pipeline.demo(Path(directory), images=images, quiet=state.quiet, echo=click.echo)
