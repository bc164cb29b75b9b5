"""`tol licenses`: load who owns each image and under which license, and list the images whose license is unknown."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from etl.commands.state import State, TolGroup, pass_state
from etl.sources.licensing import provenance_settings


@click.group("licenses", cls=TolGroup)
def licenses_group() -> None:
    """Load each image's license and rights holder from its collection's files; list those without one.

    \b
    Example:
      tol --config tol.toml licenses load
      tol licenses unknown --source eol --limit 20
    """


F = TypeVar("F", bound=Callable[..., None])


def _file_options(function: F) -> F:
    """One path option per provenance file setting (`--eol-media-manifest` …)."""
    for setting in reversed(provenance_settings()):
        function = click.option(f"--{setting.name.replace('_', '-')}", setting.name,
                                type=click.Path(exists=True), help=f"{setting.help} (setting `{setting.name}`)")(
            function)
    return function


@licenses_group.command("load")
@click.option("--source", "only", multiple=True, help="Load only this source (repeatable; default: every one).")
@_file_options
@pass_state
def licenses_load(state: State, only: tuple[str, ...], **paths: str | None) -> None:
    """Load every source's provenance: EOL's media manifests and iNat21's train.json per image (each replaces
    its previous load), BIOSCAN-1M's dataset license, and every collection's citation.

    Prints per source the records read, rejected rows by reason, and how many images have a known license and
    how many not, by reason. A license is never guessed: blank or unreadable license text is unknown.

    \b
    Example:
      tol licenses load --eol-media-manifest eol/media_manifest --inat21-annotations inat21/train.json
    """
    from etl import provenance, sources

    for name in only:
        sources.by_name(name)
    settings = state.config(**paths)
    results = provenance.load(state.engine(), {s.name: settings.path(s.name) for s in provenance_settings()},
                              progress=not state.quiet, only=only or None)
    for result in results:
        for line in result.lines():
            click.echo(line)


@licenses_group.command("unknown")
@click.option("--source", help="Only this source's images.")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many images.")
@pass_state
def licenses_unknown(state: State, source: str | None, limit: int | None) -> None:
    """List the present images whose license is not known: id, source, file and why (tab-separated).

    \b
    Example:
      tol licenses unknown --source inat21 --limit 10
    """
    from etl import provenance, sources

    if source is not None:
        sources.by_name(source)
    for image in provenance.unknown(state.engine(), source, limit):
        click.echo("\t".join(image))
