"""`tol exclude`: load exclusion lists and prove that no shard plan holds an excluded image."""

from __future__ import annotations

import click

from etl.commands.state import State, TolGroup, pass_state
from etl.errors import TolError


@click.group("exclude", cls=TolGroup)
def exclude_group() -> None:
    """Load exclusion lists and prove that no shard plan holds an excluded image.

    \b
    Example:
      tol exclude rare-species --seen rarespecies/seen_in_training.json --unseen rarespecies/unseen_in_training.json
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
    engine = state.engine()
    seen_path = settings.path("rare_seen", required_for="tol exclude rare-species")
    unseen_path = settings.path("rare_unseen", required_for="tol exclude rare-species")
    assert seen_path is not None and unseen_path is not None  # required_for raises instead of giving None
    loaded = exclusions.load_rare_species(engine, seen_path, unseen_path,
                                          settings.get_value("reference_reject_percent"))
    for line in loaded.lines():
        click.echo(line)
    click.echo("see `tol exclude report`")


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
    for line in result.lines(examples):
        click.echo(line)
    if result.overlaps:
        raise TolError("excluded images are in a shard plan")
