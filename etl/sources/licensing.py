"""What a collection says about who owns its images and under which license: the provenance hook of a source.

A source module may define `PROVENANCE`, a `ProvenanceHook`: its citation, a license covering the whole
collection (BIOSCAN-1M), and/or a file giving each image's license (EOL media manifests, iNat21 `train.json`)
with a reader of it. The reader yields a `ProvenanceRecord` per image, keyed by the image's identity columns
(`identity`, as in `images`), or a `RowReject` for a row it cannot read. Loading, normalising the license
names and counting what is unknown is etl/provenance.py's work; nothing here touches the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from etl.sources.common import RowReject, SourceSetting

NOT_PROVIDED = ""


class ProvenanceRecord(NamedTuple):
    """One image's provenance as its collection's file gives it (raw text, '' when not given)."""

    key: tuple[object, ...]  # the values of the hook's identity columns
    license_name: str = NOT_PROVIDED
    license_link: str = NOT_PROVIDED
    rights_holder: str = NOT_PROVIDED
    source_url: str = NOT_PROVIDED
    copy_url: str = NOT_PROVIDED
    title: str = NOT_PROVIDED
    md5: str = NOT_PROVIDED


class DatasetLicense(NamedTuple):
    """One license for every image of a collection."""

    license_name: str
    license_link: str
    rights_holder: str


class ProvenanceHook(NamedTuple):
    """A source's provenance: a citation, an optional dataset-level license, an optional per-image file."""

    title: str  # the collection's name as cited
    citation: str  # BibTeX
    dataset_license: DatasetLicense | None = None
    setting: SourceSetting | None = None  # the per-image provenance file (or folder of files)
    identity: tuple[str, ...] = ()  # the `images` columns a record's key matches
    identity_types: tuple[str, ...] = ()  # their SQL types
    read: Callable[[Path], Iterator[ProvenanceRecord | RowReject]] | None = None


def provenance_of(source: object) -> ProvenanceHook | None:
    """A source module's provenance hook, or None when it declares none (e.g. a plug-in collection)."""
    hook = getattr(source, "PROVENANCE", None)
    return hook if isinstance(hook, ProvenanceHook) else None


def provenance_settings() -> list[SourceSetting]:
    """The settings naming the registered sources' per-image provenance files, in the sources' order."""
    from etl import sources

    hooks = (provenance_of(source) for source in sources.SOURCES)
    return [hook.setting for hook in hooks if hook is not None and hook.setting is not None]
