"""The sample format: which members a sample has, and how they are laid out in a tar and its DALI `.idx`.

Members are plain ustar with fixed mtime, owner and mode, so the same plan gives the same bytes on every run
and on either database. Nothing here touches the catalog: a `SampleRecord` is all a sample is made from.
"""

from __future__ import annotations

import functools
import hashlib
import json
import tarfile
from typing import BinaryIO, NamedTuple

from etl import naming

FIXED_MTIME = 1_600_000_000  # every tar member's mtime: same plan, same bytes
TAR_USER = "tol"
MEMBER_MODE = 0o444
IDX_VERSION = "v1.2"


class SampleRecord(NamedTuple):
    """One planned sample: its position in the shard, the image's source identity, and its taxon."""

    position: int
    image_id: str
    source: str
    path: str
    member_offset: int | None
    byte_size: int
    eol_content_id: int | None
    eol_page_id: int | None
    inat21_filename: str | None
    inat21_cls_name: str | None
    inat21_cls_num: int | None
    bioscan_part: int | None
    bioscan_filename: str | None
    kingdom: str
    phylum: str
    class_: str
    order: str
    family: str
    genus: str
    species: str
    scientific_name: str
    taxonomic_name: str
    tagged_name: str
    common_name: str
    class_index_kingdom: int
    class_index_phylum: int
    class_index_class: int
    class_index_order: int
    class_index_family: int
    class_index_genus: int
    class_index_species: int
    source_mtime_ns: int | None = None  # the file's mtime at ingest (etl.reader.changed_since_ingest)
    # Provenance (the view `image_licenses`): normalised license key (None: unknown), and the texts as given.
    license_key: str | None = None
    license_name: str = ""
    license_link: str = ""
    rights_holder: str = ""
    source_url: str = ""

    @property
    def ranks(self) -> tuple[str, str, str, str, str, str, str]:
        """Kingdom to species, in `naming.RANK_NAMES` order."""
        return self.kingdom, self.phylum, self.class_, self.order, self.family, self.genus, self.species

    @property
    def class_indices(self) -> list[int]:
        """The class index at each rank, kingdom to species."""
        return [self.class_index_kingdom, self.class_index_phylum, self.class_index_class, self.class_index_order,
                self.class_index_family, self.class_index_genus, self.class_index_species]


# The `json` member's schema: the same keys with the same types in every sample, whatever its source, so a
# reader that infers a schema from a few samples (Hugging Face `datasets`) types every column the same way.
# Source identities are strings, "" when the sample comes from another source (as catalog.csv's empty cells).
# Provenance: `license` is the normalised key (`cc-by-nc`, …; "unknown" when no license is known), the others the
# texts the collection gave ("" when it gave none).
PROVENANCE_FIELDS = ("license", "license_name", "license_link", "rights_holder", "source_url")
JSON_STRING_FIELDS = ("treeoflife_id", "source", "eol_content_id", "eol_page_id", "bioscan_part", "bioscan_filename",
                      "inat21_filename", "inat21_cls_name", "inat21_cls_num", *naming.RANK_NAMES,
                      "scientific_name", "taxonomic_name", "common", *PROVENANCE_FIELDS)
UNKNOWN_LICENSE = "unknown"
JSON_SCHEMA: dict[str, str] = {**{name: "string" for name in JSON_STRING_FIELDS}, "class_index": "list[int64]"}


def caption_extension(extension: str, caption_case: str) -> str:
    """A caption member's extension as written: the original release's (`taxonTag_com.txt`) or lower case, for
    readers that lower-case extensions when reading (webdataset) and then look the name up as given."""
    return extension.lower() if caption_case == "lower" else extension


def _text(value: object) -> str:
    return "" if value is None else str(value)


def json_record(record: SampleRecord, common: str) -> dict[str, object]:
    """The `json` member of a sample: `JSON_SCHEMA`'s keys, in its types."""
    catalog_record: dict[str, object] = {
        "treeoflife_id": record.image_id, "source": record.source,
        "eol_content_id": _text(record.eol_content_id), "eol_page_id": _text(record.eol_page_id),
        "bioscan_part": _text(record.bioscan_part), "bioscan_filename": _text(record.bioscan_filename),
        "inat21_filename": _text(record.inat21_filename), "inat21_cls_name": _text(record.inat21_cls_name),
        "inat21_cls_num": _text(record.inat21_cls_num),
        **dict(zip(naming.RANK_NAMES, naming.display(record.ranks), strict=True)),
        "scientific_name": record.scientific_name, "taxonomic_name": record.taxonomic_name,
        "common": common,
        "license": record.license_key or UNKNOWN_LICENSE, "license_name": record.license_name,
        "license_link": record.license_link, "rights_holder": record.rights_holder, "source_url": record.source_url,
        "class_index": record.class_indices,
    }
    return catalog_record


@functools.lru_cache(maxsize=4096)
def _caption_members(scientific: str, taxonomic: str, tagged: str, common: str,
                     caption_case: str) -> tuple[dict[str, bytes], str]:
    """The encoded caption members of a taxon and its shown common name (taxa repeat across samples)."""
    fields = naming.captions(scientific, taxonomic, tagged, common)
    return ({caption_extension(extension, caption_case): value.encode("utf-8") for extension, value in fields.items()},
            fields["common_name.txt"])


def sample_members(record: SampleRecord, txt_field: str, jpeg: bytes,
                   caption_case: str = "original") -> dict[str, bytes]:
    """The tar members of one sample (without `__key__`): jpg, json, txt (a copy of caption `txt_field`) and
    the ten caption fields (named as `caption_case` says)."""
    captions, common = _caption_members(record.scientific_name, record.taxonomic_name, record.tagged_name,
                                        record.common_name, caption_case)
    members = dict(captions)
    members["jpg"] = jpeg
    members["json"] = json.dumps(json_record(record, common), sort_keys=True,
                                 ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    members["txt"] = members[caption_extension(f"{txt_field}.txt", caption_case)]
    return members


class HashingFile:
    """A write-only file wrapper that hashes (sha256, md5) and counts what passes through."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.md5.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()


class PlacedMember(NamedTuple):
    """Where a member's data lies in the tar."""

    extension: str
    offset: int
    size: int


def _header_template() -> tuple[bytes, int]:
    """A member header as `tarfile` writes it for an empty name and size 0 with our fixed metadata, and the
    byte sum of that header with its checksum field blank (eight spaces), as the ustar checksum counts it."""
    info = tarfile.TarInfo("")
    info.size, info.mtime, info.mode = 0, FIXED_MTIME, MEMBER_MODE
    info.uname = info.gname = TAR_USER
    header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
    blank = header[:_CHECKSUM] + b" " * 8 + header[_CHECKSUM + 8:]
    return header, sum(blank)


_NAME_FIELD, _SIZE, _CHECKSUM = 100, 124, 148  # ustar field offsets: name, size (12 bytes), checksum (8 bytes)
_TEMPLATE, _TEMPLATE_SUM = _header_template()
_ZERO_SIZE_SUM = sum(_TEMPLATE[_SIZE:_SIZE + 12])
_PADDING = [b"\0" * n for n in range(tarfile.BLOCKSIZE)]


def member_header(name: bytes, size: int) -> bytes:
    """The ustar header `tarfile` would write for member `name` (ASCII, at most 100 bytes) of `size` bytes
    with our fixed metadata, built from a template: only the name, size and checksum fields differ."""
    if len(name) > _NAME_FIELD or size >= 8**11 or not name.isascii():
        info = tarfile.TarInfo(name.decode("utf-8"))
        info.size, info.mtime, info.mode = size, FIXED_MTIME, MEMBER_MODE
        info.uname = info.gname = TAR_USER
        return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
    size_field = b"%011o\0" % size
    checksum = _TEMPLATE_SUM + sum(name) + sum(size_field) - _ZERO_SIZE_SUM
    return b"".join((name, _PADDING[_NAME_FIELD - len(name)], _TEMPLATE[_NAME_FIELD:_SIZE], size_field,
                     _TEMPLATE[_SIZE + 12:_CHECKSUM], b"%06o\0 " % checksum, _TEMPLATE[_CHECKSUM + 8:]))


class SampleTarWriter:
    """Writes samples as plain ustar members with fixed metadata, byte for byte as `tarfile` would.

    Equivalent to webdataset's TarWriter with a fixed mtime (members sorted by extension, mode 0444), minus its
    per-member stream overhead. A sample's members are joined and written (and hashed) at once, their headers
    made from a template (`member_header`): at 13 members a sample, `tarfile`'s headers were a quarter of the
    write stage once the codec got fast.
    """

    def __init__(self, stream: HashingFile) -> None:
        self.stream = stream

    def write(self, key: str, members: dict[str, bytes]) -> list[PlacedMember]:
        """Write one sample; returns where each member's data went, in tar order."""
        placed = []
        parts: list[bytes] = []
        offset = self.stream.tell()
        stem = key.encode("utf-8") + b"."
        for extension in sorted(members):
            data = members[extension]
            size = len(data)
            offset += tarfile.BLOCKSIZE
            placed.append(PlacedMember(extension, offset, size))
            padding = -size % tarfile.BLOCKSIZE
            parts += (member_header(stem + extension.encode("utf-8"), size), data, _PADDING[padding])
            offset += size + padding
        self.stream.write(b"".join(parts))
        return placed

    def close(self) -> None:
        """End-of-archive: two zero blocks, then zeros up to a whole tar record, as tarfile does."""
        self.stream.write(b"\0" * (2 * tarfile.BLOCKSIZE))
        remainder = self.stream.tell() % tarfile.RECORDSIZE
        if remainder:
            self.stream.write(b"\0" * (tarfile.RECORDSIZE - remainder))


def idx_line(key: str, placed: list[PlacedMember]) -> str:
    """One sample's line of the DALI index: `extension offset size name` per member."""
    return " ".join(f"{m.extension} {m.offset} {m.size} {key}.{m.extension}" for m in placed)


def idx_text(lines: list[str]) -> str:
    """The whole DALI `.idx` file of a tar whose samples have these lines."""
    return f"{IDX_VERSION} {len(lines)}\n" + "".join(line + "\n" for line in lines)
