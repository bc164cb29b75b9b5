"""What every command shares: the `State` the top-level options give, `pass_state`, and `TolGroup`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click
from sqlalchemy.engine import Engine

from etl import config as config_mod
from etl import db, schema
from etl.errors import TolError


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
        """Run the command, turning a `TolError` into click's one-line ``Error: …`` and exit status 1."""
        try:
            return super().invoke(ctx)
        except TolError as exc:
            raise click.ClickException(str(exc)) from None
