"""The image collections, one module each, and their registry.

Everything the pipeline knows about one collection lives in its module here: how its root is listed and its
files identified, what its images' rows hold, how their bytes are read, its naming keys and the table they are
resolved into, and any metadata file it comes with. The rest of the pipeline iterates `SOURCES`.

A module is a source when it defines the members of `Source` (helpers such as `common` do not define `NAME`).
Adding a collection is adding its module, a migration for its columns and names table, and the views.

A source module living elsewhere (a test, a site's plug-in) joins the registry with `register`, or for a
while with `registered`. It may only fill the row fields that exist (`etl.sources.common.STAGE_COLUMNS`): a
source with identity columns of its own belongs in this package. Registration is per process, and settings
and commands are built from the registry when etl.config and etl.cli are imported: a registered source is
ingested, named, planned and written through the Python API, by processes that registered it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from etl.errors import TolError
from etl.sources.common import (
    STAGE_COLUMNS,
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


def _members_missing(module: object) -> list[str]:
    """The members of `Source` a module does not define."""
    members = [*Source.__annotations__, *(name for name in vars(Source) if not name.startswith("_"))]
    return [name for name in dict.fromkeys(members) if not hasattr(module, name)]


def _checked(found: Iterable[Source]) -> tuple[Source, ...]:
    """`found` in their ORDER, refusing two with one NAME or ORDER."""
    found = list(found)
    for attribute in ("NAME", "ORDER"):
        values = [getattr(source, attribute) for source in found]
        if len(set(values)) != len(values):
            raise RuntimeError(f"two source modules share a {attribute}: {sorted(values)}")
    return tuple(sorted(found, key=lambda source: source.ORDER))


def _discover() -> tuple[Source, ...]:
    """The source modules of this package, in their ORDER."""
    modules = (importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__))
    return _checked(module for module in modules if hasattr(module, "NAME"))  # type: ignore[misc]


SOURCES: tuple[Source, ...] = _discover()
SOURCE_NAMES: tuple[str, ...] = tuple(source.NAME for source in SOURCES)
_BY_NAME: dict[str, Source] = {source.NAME: source for source in SOURCES}


def _install(found: tuple[Source, ...]) -> None:
    global SOURCES, SOURCE_NAMES, _BY_NAME
    SOURCES = found
    SOURCE_NAMES = tuple(source.NAME for source in found)
    _BY_NAME = {source.NAME: source for source in found}


def register(module: object) -> Source:
    """Add a source module from outside this package to the registry (see the module docstring); returns it.

    Refuses (TypeError) a module missing a member of `Source` or filling a row field that does not exist, and
    (RuntimeError) one whose NAME or ORDER a registered source has.
    """
    missing = _members_missing(module)
    if missing:
        raise TypeError(f"{module!r} is not a source: it does not define {', '.join(missing)}")
    source: Source = module  # type: ignore[assignment]
    unknown = [name for name in (*source.FIELDS, *source.STAGE_TYPES) if name not in STAGE_COLUMNS]
    if unknown:
        raise TypeError(f"source {source.NAME} fills row fields that do not exist: {', '.join(unknown)} "
                        "(a source with identity columns of its own belongs in etl/sources)")
    _install(_checked((*SOURCES, source)))
    return source


def unregister(name: str) -> None:
    """Remove the source called `name` from the registry."""
    by_name(name)
    _install(tuple(source for source in SOURCES if name != source.NAME))


@contextmanager
def registered(module: object) -> Iterator[Source]:
    """`register` a source module for the duration of a `with` block."""
    source = register(module)
    try:
        yield source
    finally:
        unregister(source.NAME)


def by_name(name: str) -> Source:
    """The registered source called `name`; TolError listing the known ones otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise TolError(f"unknown source {name} (known: {', '.join(SOURCE_NAMES)})") from None
