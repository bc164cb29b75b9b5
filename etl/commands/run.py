"""`tol run` and `tol demo`: the whole pipeline, from a configuration or on a generated sample collection."""

from __future__ import annotations

from pathlib import Path

import click

from etl.commands.state import Percent, State, pass_state


@click.command("run")
@click.option("--split-name", default="main", show_default=True, help="Split definition to create and use.")
@click.option("--seed", default=17, show_default=True)
@click.option("--val-percent", type=Percent(open_interval=True), default=5.0, show_default=True,
              help="Share of images in val (0 < P < 100).")
@click.option("--train-small-percent", type=Percent(open_interval=True), default=10.0, show_default=True,
              help="Share of the train images also in train_small (0 < P < 100).")
@click.option("--samples-per-shard", default=1000, show_default=True)
@click.option("--min-shards", default=64, show_default=True,
              help="Warn about a plan with fewer shards than this (loaders need ranks x workers shards).")
@click.option("--size", default="224x224", show_default=True)
@click.option("--workers", type=int, help="Processes for listing, writing and verifying (setting `workers`).")
@pass_state
def run_command(state: State, split_name: str, seed: int, val_percent: float, train_small_percent: float,
                samples_per_shard: int, min_shards: int, size: str, workers: int | None) -> None:
    """Run the whole pipeline from the configuration, skipping what is already done.

    Every option is checked before the first stage. The catalog is created or upgraded to head if needed.
    Ingest, taxa, exclusions, splits, a plan and its shards for train, val and train_small, verify, export.

    \b
    Example:
      tol --config cluster.toml run --workers 16
    """
    from etl import pipeline

    settings = state.config(workers=workers)
    # Checked before the catalog is opened (or created), and again by `run` for callers of the Python API.
    pipeline.check_run_options(settings, split_name=split_name, seed=seed, val_percent=val_percent,
                               train_small_percent=train_small_percent, samples_per_shard=samples_per_shard,
                               size=size, min_shards=min_shards)
    pipeline.run(settings, state.engine(check_schema=False, create=True), split_name=split_name, seed=seed,
                 val_percent=val_percent, train_small_percent=train_small_percent,
                 samples_per_shard=samples_per_shard, size=size, quiet=state.quiet, echo=click.echo,
                 min_shards=min_shards)


@click.command("demo")
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
