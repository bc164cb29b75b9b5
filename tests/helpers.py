"""Running the first stages of the pipeline on a sample collection, for tests of the later ones."""

from __future__ import annotations

from pathlib import Path

from etl import config, taxonomy
from tests.test_ingest import ingest_all


def reference_paths(collection: Path) -> dict[str, Path | None]:
    """The reference-file settings of a sample collection, read from its own tol.toml."""
    settings = config.resolve({}, {}, collection / "tol.toml")
    return {r.setting: settings.path(r.setting) for r in taxonomy.RESOURCES}


def ingest_and_name(engine, collection: Path) -> taxonomy.ResolveSummary:
    """Ingest every source of `collection`, load its references and resolve names."""
    ingest_all(engine, collection)
    taxonomy.load(engine, reference_paths(collection))
    return taxonomy.resolve(engine)
