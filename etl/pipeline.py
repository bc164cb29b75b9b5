"""Whole-pipeline runs: `tol run` from a config file, and `tol demo` on a generated sample collection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from etl import db, schema


def demo(directory: str | Path, *, quiet: bool, echo: Callable[[str], None]) -> None:
    """Create a SQLite catalog in `directory` and bring it to head (later stages are added as they exist)."""
    folder = Path(directory).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'catalog.sqlite'}"
    engine = db.make_engine(url)
    schema.upgrade(engine)
    echo(f"catalog {url} at {schema.current_revision(engine)}")
    engine.dispose()
