"""`tol ingest <source>`: one command per registered source, catalogueing its images."""

from __future__ import annotations

from collections.abc import Callable

import click

from etl.commands.state import State, TolGroup, pass_state
from etl.sources import SOURCES, Source


@click.group("ingest", cls=TolGroup)
def ingest_group() -> None:
    """Catalogue the images of a source (re-runnable: adds new files, marks vanished ones missing).

    \b
    Example:
      tol ingest inat21 /data/inat21/train
      tol --config cluster.toml ingest eol
    """


def _ingest_command(source: Source) -> Callable[..., None]:
    """The callback of `tol ingest <source>`, with its ROOT argument and options; its help is the source's."""
    metadata_setting = source.METADATA.setting.name if source.METADATA is not None else None

    @click.argument("root", required=False, type=click.Path())
    @click.option("--workers", type=int, help="Processes listing units in parallel (setting `workers`).")
    @click.option("--no-check-images", is_flag=True,
                  help="Do not read each image's first and last bytes (faster on slow filesystems).")
    @click.option("--checksum", is_flag=True,
                  help="Also record each image's sha256 (reads every byte; see README for its cost).")
    @pass_state
    def command(state: State, root: str | None, workers: int | None, no_check_images: bool, checksum: bool,
                metadata: str | None = None) -> None:
        from etl import catalog

        flags = {source.ROOT.name: root, "workers": workers}
        if metadata_setting is not None:
            flags[metadata_setting] = metadata
        settings = state.config(**flags)
        summary = catalog.ingest(
            state.engine(), source.NAME, settings.path(source.ROOT.name, required_for=f"tol ingest {source.NAME}"),
            metadata=settings.path(metadata_setting) if metadata_setting is not None else None,
            workers=settings.get_value("workers"), check_images=not no_check_images, checksum=checksum,
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
