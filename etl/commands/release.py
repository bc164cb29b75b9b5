"""`tol import-release` and `tol reproduce`: a published TreeOfLife-10M's ids and split, and its shards."""

from __future__ import annotations

from pathlib import Path

import click

from etl.commands.state import State, pass_state


@click.command("import-release")
@click.option("--mapping", type=click.Path(dir_okay=False), help="The release's metadata/mapping.sqlite.")
@click.option("--catalog", "catalog_csv", type=click.Path(dir_okay=False),
              help="The release's metadata/catalog.csv.")
@click.option("--name", default="release", show_default=True,
              help="Name of the split definition the release's split becomes.")
@pass_state
def import_release(state: State, mapping: str | None, catalog_csv: str | None, name: str) -> None:
    """Load a published release's identity map and split into the catalog.

    Every image the map names keeps its published treeoflife_id (images already catalogued take it now; new
    ones when ingested), and split definition NAME lists the release's train / val / train_small (see `tol
    splits list`). Malformed rows are counted per reason and kept in `release_rejects`; with both files, where
    they disagree is reported. Re-importing the same files changes nothing.

    \b
    Example:
      tol import-release --mapping TreeOfLife-10M/metadata/mapping.sqlite --catalog TreeOfLife-10M/metadata/catalog.csv
    """
    from etl.release import importer

    summary = importer.import_release(state.engine(), name, Path(mapping) if mapping else None,
                                   Path(catalog_csv) if catalog_csv else None, progress=not state.quiet)
    for line in summary.lines():
        click.echo(line)


@click.command("reproduce")
@click.argument("release", type=click.Path(file_okay=False))
@click.option("--name", default="release", show_default=True,
              help="Split definition and plan prefix (plans NAME-train, NAME-val, NAME-train_small).")
@click.option("--size", default="224x224", show_default=True)
@click.option("--samples-per-shard", type=int, help="Default: 10,000, fewer when that gives under --min-shards.")
@click.option("--min-shards", default=64, show_default=True)
@click.option("--workers", type=int, help="Processes for listing and writing (setting `workers`).")
@pass_state
def reproduce(state: State, release: str, name: str, size: str, samples_per_shard: int | None, min_shards: int,
              workers: int | None) -> None:
    """Rebuild a published release in folder RELEASE: its ids, its split, its shards.

    RELEASE holds metadata/mapping.sqlite and/or metadata/catalog.csv and dataset/EOL/*.tar.gz; iNat21,
    BIOSCAN-1M and the reference files come from the configuration. Ends with what could not be reproduced
    (images not downloaded, images the map lacks, names unlike the published catalog's). A second run writes
    nothing.

    \b
    Example:
      tol sample-data rel --images 200 --release
      tol --config rel/tol.toml reproduce rel/release
    """
    from etl.release.reproduce import reproduce as run_reproduce

    settings = state.config(workers=workers)
    report = run_reproduce(settings, state.engine(check_schema=False, create=True), Path(release), name=name,
                           size=size, samples_per_shard=samples_per_shard, min_shards=min_shards,
                           quiet=state.quiet, echo=click.echo)
    for line in report.lines():
        click.echo(line)
