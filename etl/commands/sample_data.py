"""`tol sample-data`: write a sample collection laid out like the real ones."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("sample-data")
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
      tol --config sample/tol.toml db upgrade
      tol --config sample/tol.toml ingest inat21
    """
    from etl import sampledata

    expected = sampledata.generate(out, images=images, seed=seed)
    total = sum(expected.catalogued.values())
    click.echo(f"wrote {total} catalogable images ({', '.join(f'{k} {v}' for k, v in expected.catalogued.items())})"
               f" and reference files to {out}; config: {Path(out) / 'tol.toml'}")
