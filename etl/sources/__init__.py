"""The image collections, one module each, and their registry.

Everything the pipeline knows about one collection lives in its module here: how its root is listed and its
files identified, what its images' rows hold, how their bytes are read, its naming keys and the table they are
resolved into, and any metadata file it comes with. The rest of the pipeline iterates `SOURCES`.

A module is a source when it defines the members of `Source` (helpers such as `common` do not define `NAME`).
Adding a collection is adding its module, a migration for its columns and names table, and the views.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from etl.errors import TolError
from etl.sources.common import (
    ImageStore,
    KeyResult,
    MetadataFile,
    NameLookups,
    NamesTable,
    ReadOptions,
    Reject,
    SourceSetting,
    UnitResult,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


class Source(Protocol):
    """What a collection module defines (a module implements this protocol with its top-level names)."""

    NAME: str  # as stored in images.source
    ORDER: int  # the sources' order: ingest order, and the tie-break when binomials are unified
    ROOT: SourceSetting  # the setting naming its root folder
    UNIT_NAME: str  # what its listing units are called, plural ("class folders")
    INGEST_HELP: str  # the help of `tol ingest NAME`
    FIELDS: tuple[str, ...]  # the image row fields it fills (etl.sources.common.ImageRow)
    STAGE_TYPES: Mapping[str, str]  # SQL types of its own fields in the ingest staging table
    METADATA: MetadataFile | None  # a metadata file its images are checked against, if any
    READ_SETTINGS: tuple[SourceSetting, ...]  # settings telling shard writers how to read its bytes
    NAMES: NamesTable  # where its resolved naming keys go, and how its images are named from them

    def list_units(self, root: Path) -> tuple[list[str], list[Reject]]:
        """The listing units under `root`, sorted, and the entries there that are not units."""
        ...

    def scan_unit(self, root: str, unit: str, check_images: bool = True) -> UnitResult:
        """Catalogue the images of one unit."""
        ...

    def open_store(self, root: Path, options: ReadOptions) -> ImageStore:
        """Where the shard writers read its image bytes."""
        ...

    def resolve_keys(self, connection: Connection, lookups: NameLookups) -> list[KeyResult]:
        """The taxon of every distinct naming key of its catalogued images."""
        ...


def _discover() -> tuple[Source, ...]:
    """The source modules of this package, in their ORDER."""
    modules = (importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__))
    found: list[Source] = [module for module in modules if hasattr(module, "NAME")]  # type: ignore[misc]
    for attribute in ("NAME", "ORDER"):
        values = [getattr(source, attribute) for source in found]
        if len(set(values)) != len(values):
            raise RuntimeError(f"two modules of etl/sources share a {attribute}: {sorted(values)}")
    return tuple(sorted(found, key=lambda source: source.ORDER))


SOURCES: tuple[Source, ...] = _discover()
SOURCE_NAMES: tuple[str, ...] = tuple(source.NAME for source in SOURCES)
_BY_NAME: dict[str, Source] = {source.NAME: source for source in SOURCES}


def by_name(name: str) -> Source:
    """The registered source called `name`; TolError listing the known ones otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise TolError(f"unknown source {name} (known: {', '.join(SOURCE_NAMES)})") from None
