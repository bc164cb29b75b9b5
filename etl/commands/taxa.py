"""`tol taxa`: load the naming references, resolve every image's taxon and common name, check the result."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from etl.commands.state import State, TolGroup, pass_state

F = TypeVar("F", bound=Callable[..., None])


@click.group("taxa", cls=TolGroup)
def taxa_group() -> None:
    """Load the naming references, resolve every image's taxon and common name, check the result.

    \b
    Example:
      tol --config tol.toml taxa load
      tol --config tol.toml taxa resolve
      tol --config tol.toml taxa check
    """


def _reference_options(function: F) -> F:
    """Add one path option per reference file setting (`--eol-taxon-tab` …), in the order of LOAD_SETTINGS."""
    from etl.taxonomy import LOAD_SETTINGS

    for setting in reversed(LOAD_SETTINGS):
        # A file named on the command line must exist; one only configured is reported and skipped if missing.
        function = click.option(f"--{setting.replace('_', '-')}", setting,
                                type=click.Path(exists=True, dir_okay=False),
                                help=f"(setting `{setting}`)")(function)
    return function


@taxa_group.command("load")
@_reference_options
@pass_state
def taxa_load(state: State, **paths: str | None) -> None:
    """Load every reference file into the catalog (each replaces its previous load).

    A file that is not configured or not found is reported and skipped; resolving does what it can. A
    malformed row is recorded in `ref_rejects` and skipped (counts per reason are printed); a file fails as a
    whole for a wrong header, text that is not UTF-8, or more malformed rows than `reference_reject_percent`.

    \b
    Example:
      tol taxa load --eol-taxon-tab eol/dh21/taxon.tab --itis-chains itis/species_level_taxonomy_chains.csv
    """
    from etl import taxonomy

    settings = state.config(**paths)
    results = taxonomy.load(state.engine(), {setting: settings.path(setting) for setting in taxonomy.LOAD_SETTINGS},
                            settings.get_value("reference_reject_percent"), progress=not state.quiet)
    for result in results:
        for line in result.lines():
            click.echo(line)


@taxa_group.command("resolve")
@pass_state
def taxa_resolve(state: State) -> None:
    """Give every catalogued image a taxon and common name, once per EOL page, iNat21 class and BIOSCAN label.

    Two resolves at once take turns: the second waits for the first, then resolves again.

    \b
    Example:
      tol taxa resolve
      sqlite3 catalog.sqlite "SELECT source, unnamed_reason, COUNT(*) FROM image_names GROUP BY 1, 2"
    """
    from etl import db, taxonomy

    engine = state.engine()
    # One transaction, redone whole if the catalog goes away (or stays locked by another resolve) for a while.
    for line in db.retrying(engine, taxonomy.resolve, engine, progress=not state.quiet).lines():
        click.echo(line)


@taxa_group.command("check")
@click.option("--examples", default=5, show_default=True, help="Example rows per check.")
@click.option("--strict", is_flag=True, help="Exit non-zero when a gate check (kingdoms outside the vocabulary, "
              "placeholders, authority debris, species without genus, rank gaps) finds anything.")
@pass_state
def taxa_check(state: State, examples: int, strict: bool) -> None:
    """Quality checks of the resolved taxa (the SQL in sql/checks/), with counts and example rows.

    \b
    Example:
      tol taxa check --examples 3
      tol taxa check --strict    # gate a pipeline on it
    """
    from etl import taxonomy
    from etl.errors import WorkLeftError

    results = taxonomy.check(state.engine(), examples)
    for result in results:
        for line in result.lines():
            click.echo(line)
    failed = [result.name for result in results if result.failed]
    if strict and failed:
        raise WorkLeftError(f"taxa check --strict: {len(failed)} gate checks found defects: {', '.join(failed)}")
