"""`tol sample-data`: write a sample collection laid out like the real ones."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("sample-data")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--images", default=5000, show_default=True, help="About how many images to write.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--release", is_flag=True,
              help="Also write OUT/release: a published-release-shaped fixture (mapping.sqlite, catalog.csv, EOL "
                   "archives of <treeoflife_id>.jpg) made from the collection, for tol import-release / reproduce.")
def sample_data(out: str, images: int, seed: int, release: bool) -> None:
    """Write a sample collection laid out like the real iNat21, EOL and BIOSCAN-1M trees into OUT.

    Includes every reference file the later stages read, a `tol.toml` pointing at all of it, and
    `expected.json` saying what an ingest must find.

    \b
    Example:
      tol sample-data sample --images 2000 --seed 1
      tol --config sample/tol.toml db upgrade
      tol --config sample/tol.toml ingest inat21
    """
    from etl import sampledata

    expected = sampledata.generate(out, images=images, seed=seed)
    total = sum(expected.catalogued.values())
    if release:
        from etl.sampledata import release as release_fixture

        made = release_fixture.write(out, seed=seed)
        click.echo(f"wrote a release fixture of {len(made['splits'])} ids to {Path(out) / 'release'}")
    click.echo(f"wrote {total} catalogable images ({', '.join(f'{k} {v}' for k, v in expected.catalogued.items())})"
               f" and reference files to {out}; config: {Path(out) / 'tol.toml'}")
