"""What every command shares: the `State` the top-level options give, `pass_state`, `TolGroup`, and the
option types that refuse bad values in one line."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import click
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from etl import config as config_mod
from etl import db, schema
from etl.errors import ExitCode, TolError


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

    def engine(self, *, check_schema: bool = True, create: bool = False) -> Engine:
        """The catalog engine; unless `check_schema` is False, refuse a catalog that is not at head.

        A SQLite catalog file that does not exist is refused, naming it, unless `create` is True (only the
        commands that make catalogs: `tol db upgrade`, `tol run`, `tol demo`).
        """
        if self._engine is None:
            settings = self.config()
            url = settings.database_url
            engine = db.make_engine(url, wait_seconds=settings.get_value("db_wait_seconds"))
            if not create:
                db.require_existing(url)
            db.check_reachable(engine)
            self._engine = engine
        if check_schema:
            schema.require_head(self._engine)
        return self._engine


pass_state = click.make_pass_decorator(State)


class TolGroup(click.Group):
    """A click group that turns `TolError` into a one-line message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, turning a `TolError` into click's one-line ``Error: …`` and the error's exit code."""
        try:
            return super().invoke(ctx)
        except TolError as exc:
            raise CodedClickException(str(exc), exc.exit_code) from None
        except DBAPIError as exc:
            if not db.is_transient(exc):
                raise
            # The catalog went away under a command that does not wait (one transaction, redone by rerunning).
            state = ctx.find_object(State)
            where = db.describe(state.config().database_url) if state is not None else "the catalog"
            raise CodedClickException(f"catalog database {where} became unavailable: {db.first_line(exc)}",
                                      ExitCode.ENVIRONMENT) from None


class CodedClickException(click.ClickException):
    """Click's one-line ``Error: …`` with the exit code of the `TolError` it reports."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it per class; ours is per error


class Percent(click.ParamType):
    """A finite percentage: in [0, 100], or with `open_interval` in (0, 100) (a share that must leave both
    parts non-empty)."""

    name = "percent"

    def __init__(self, *, open_interval: bool = False) -> None:
        self.open_interval = open_interval

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        """The value as a float, or a usage error naming the option."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        low_ok = number > 0 if self.open_interval else number >= 0
        high_ok = number < 100 if self.open_interval else number <= 100
        if not (math.isfinite(number) and low_ok and high_ok):
            bounds = "greater than 0 and less than 100" if self.open_interval else "between 0 and 100"
            self.fail(f"must be a percentage {bounds}, not {value}", param, ctx)
        return number
