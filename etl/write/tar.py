"""The sample format: which members a sample has, and how they are laid out in a tar and its DALI `.idx`.

Members are plain ustar with fixed mtime, owner and mode, so the same plan gives the same bytes on every run
and on either database. Nothing here touches the catalog: a `SampleRecord` is all a sample is made from.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
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


# ================================================================================== the writer's fast path

# `json_record`'s keys in `json.dumps(sort_keys=True)` order, each marked with whether its value is the
# taxon's (the same for every sample of one taxon) or the sample's own.
_TAXON_JSON_KEYS = frozenset({*naming.RANK_NAMES, "scientific_name", "taxonomic_name", "common", "class_index"})
_JSON_KEYS = tuple(sorted([*JSON_STRING_FIELDS, "class_index"]))
_TAXON_SLICE = slice(SampleRecord._fields.index("kingdom"), SampleRecord._fields.index("class_index_species") + 1)
_ENCODE_STRING = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) quotes strings with
# Each key as it opens its value in the `json` member: `{"key":` for the first, `,"key":` for the others.
_JSON_KEY_TEXTS = tuple(("," if index else "{") + _ENCODE_STRING(key) + ":" for index, key in enumerate(_JSON_KEYS))
# Laid-out taxa kept, the oldest dropped first: about 6 KB each (header stretches, `json` text; the caption
# bytes are shared with `_caption_members`' cache), 12 MB in all. Laying a taxon out costs about twice a sample
# of a taxon kept, so a plan whose taxa rarely recur within a worker's span loses little.
_MAX_TAXA = 2048
_HEADER_TAIL = _TEMPLATE[_CHECKSUM + 8:]  # a member header after its checksum: the same in every member
_NAME_TAIL = _TEMPLATE[_NAME_FIELD:_SIZE]  # mode, owner and group: between the name and the size
_MTIME = _TEMPLATE[_SIZE + 12:_CHECKSUM]  # between the size and the checksum


@functools.lru_cache(maxsize=16384)
def _size_part(size: int) -> tuple[bytes, int]:
    """A member header's size field and what follows it up to the checksum, and what the size adds to the
    header's checksum beyond the template's (`member_header`'s arithmetic)."""
    size_field = b"%011o\0" % size
    return size_field + _MTIME, sum(size_field) - _ZERO_SIZE_SUM


class _FixedMember(NamedTuple):
    """A member whose data is the taxon's (a caption, `txt`), laid out for keys of one length: the header after
    the key up to its checksum, and the checksum without the key's bytes; then the data and its padding (the
    header's tail, after the checksum, is `_HEADER_TAIL`)."""

    extension: str
    middle: bytes
    checksum_base: int
    data: bytes
    padding: bytes
    size: int
    span: int  # the data and its padding


class _TaxonLayout(NamedTuple):
    """What every sample of one taxon shares, for keys of one length: the members in tar order (a `_FixedMember`,
    or the extension of a member made per sample: `jpg`, `json`) and the `json` member's constant stretches."""

    members: tuple[_FixedMember | str, ...]
    json_parts: tuple[str, ...]  # the text between the sample's own values, in key order


def _json_text(value: object) -> str:
    """`value` as `json.dumps(ensure_ascii=False)` writes it inside an object."""
    return _ENCODE_STRING(value) if type(value) is str else json.dumps(value, ensure_ascii=False)


def _int_list(values: list[int]) -> str:
    """`json.dumps(values, separators=(",", ":"))` for the class indices (a list of ints), without making an
    encoder for each taxon."""
    if all(type(value) is int for value in values):
        return "[" + ",".join(map(str, values)) + "]"
    return json.dumps(values, separators=(",", ":"))


# How a sample's own `json` values are taken from its record, as `json_record` takes them: the source
# identities as text ("" for None), the license key or "unknown", the rest as they are.
_AS_TEXT = frozenset({"eol_content_id", "eol_page_id", "bioscan_part", "bioscan_filename", "inat21_filename",
                      "inat21_cls_name", "inat21_cls_num"})
_RECORD_FIELD = {"treeoflife_id": "image_id", "license": "license_key"}
_AS_IS, _TEXT, _LICENSE = 0, 1, 2  # how an own value is turned into its `json` value


class SampleLayout:
    """Lays out a plan's samples byte for byte as `sample_members`, `SampleTarWriter.write` and `idx_line` do,
    with the work that is the same for every sample of a taxon done once per taxon: the captions, their
    member headers (all but the key and checksum), and the `json` member's taxon fields. A sample is then its
    key, its JPEG and its own `json` values, joined and hashed at once.

    Keys that are not ASCII, or too long for a ustar name, take the general path (`write_general`)."""

    def __init__(self, txt_field: str, caption_case: str) -> None:
        self.txt_field, self.caption_case = txt_field, caption_case
        self._txt_source = caption_extension(f"{txt_field}.txt", caption_case)
        self._taxa: dict[tuple[object, ...], _TaxonLayout] = {}
        # A member's name after the key, its padding and the header up to the size, by (extension, key length),
        # with the checksum's template part and the extension's bytes.
        self._heads: dict[tuple[str, int], tuple[bytes, int]] = {}
        own_keys = [key for key in _JSON_KEYS if key not in _TAXON_JSON_KEYS]
        self._own_values = operator.attrgetter(*(_RECORD_FIELD.get(key, key) for key in own_keys))
        self._own_kinds = tuple(_LICENSE if key == "license" else _TEXT if key in _AS_TEXT else _AS_IS
                                for key in own_keys)
        self._longest = max(len(caption_extension(field, caption_case).encode("utf-8"))
                            for field in (*naming.CAPTION_FIELDS, "jpg", "json", "txt"))

    def _head(self, extension: str, stem_length: int) -> tuple[bytes, int]:
        head = self._heads.get((extension, stem_length))
        if head is None:
            name = extension.encode("utf-8")
            head = self._heads[(extension, stem_length)] = (
                name + _PADDING[_NAME_FIELD - stem_length - len(name)] + _NAME_TAIL, _TEMPLATE_SUM + sum(name))
        return head

    def _taxon(self, record: SampleRecord, stem_length: int) -> _TaxonLayout:
        captions, common = _caption_members(record.scientific_name, record.taxonomic_name, record.tagged_name,
                                            record.common_name, self.caption_case)
        members: dict[str, bytes] = {**captions, "txt": captions[self._txt_source], "jpg": b"", "json": b""}
        laid: list[_FixedMember | str] = []
        for extension in sorted(members):
            if extension == "jpg" or extension == "json":
                laid.append(extension)
                continue
            data = members[extension]
            size = len(data)
            head, head_sum = self._head(extension, stem_length)
            size_part, size_sum = _size_part(size)
            padding = _PADDING[-size % tarfile.BLOCKSIZE]
            laid.append(_FixedMember(extension, head + size_part, head_sum + size_sum, data, padding, size,
                                     size + len(padding)))
        ranks = naming.display(record.ranks)
        taxon_values = {**dict(zip(naming.RANK_NAMES, ranks, strict=True)),
                        "scientific_name": record.scientific_name, "taxonomic_name": record.taxonomic_name,
                        "common": common}
        parts, text = [], []
        for key, key_text in zip(_JSON_KEYS, _JSON_KEY_TEXTS, strict=True):
            text.append(key_text)
            if key == "class_index":
                text.append(_int_list(record.class_indices))
            elif key in _TAXON_JSON_KEYS:
                text.append(_json_text(taxon_values[key]))
            else:
                parts.append("".join(text))
                text = []
        text.append("}")
        parts.append("".join(text))
        return _TaxonLayout(tuple(laid), tuple(parts))

    def json_member(self, record: SampleRecord, layout: _TaxonLayout) -> bytes:
        """The sample's `json` member from its taxon's stretches and its own values."""
        parts = layout.json_parts
        pieces = [parts[0]]
        for value, kind, part in zip(self._own_values(record), self._own_kinds, parts[1:]):  # noqa: B905
            if kind == _TEXT:
                value = "" if value is None else str(value)
            elif kind == _LICENSE:
                value = value or UNKNOWN_LICENSE
            pieces += (_ENCODE_STRING(value) if type(value) is str else json.dumps(value, ensure_ascii=False), part)
        return "".join(pieces).encode("utf-8")

    def write(self, stream: HashingFile, record: SampleRecord, jpeg: bytes) -> str:
        """Write one sample to `stream`; returns its `.idx` line."""
        key = record.image_id
        stem = key.encode("utf-8") + b"."
        stem_length = len(stem)
        if not stem.isascii() or stem_length + self._longest > _NAME_FIELD or len(jpeg) >= 8**11:
            return self.write_general(stream, record, jpeg)
        taxa = self._taxa
        taxon = (record[_TAXON_SLICE], stem_length)
        layout = taxa.get(taxon)
        if layout is None:
            if len(taxa) >= _MAX_TAXA:
                del taxa[next(iter(taxa))]  # the oldest
            layout = taxa[taxon] = self._taxon(record, stem_length)
        stem_sum = sum(stem)
        parts: list[bytes] = []
        lines: list[str] = []
        offset = stream.tell()
        for member in layout.members:
            offset += tarfile.BLOCKSIZE
            if not isinstance(member, str):
                parts += (stem, member.middle, b"%06o\0 " % (member.checksum_base + stem_sum), _HEADER_TAIL,
                          member.data, member.padding)
                lines.append(f"{member.extension} {offset} {member.size} {key}.{member.extension}")
                offset += member.span
                continue
            data = jpeg if member == "jpg" else self.json_member(record, layout)
            size = len(data)
            padding = -size % tarfile.BLOCKSIZE
            head, head_sum = self._head(member, stem_length)
            size_part, size_sum = _size_part(size)
            parts += (stem, head, size_part, b"%06o\0 " % (head_sum + size_sum + stem_sum), _HEADER_TAIL, data,
                      _PADDING[padding])
            lines.append(f"{member} {offset} {size} {key}.{member}")
            offset += size + padding
        stream.write(b"".join(parts))
        return " ".join(lines)

    def write_general(self, stream: HashingFile, record: SampleRecord, jpeg: bytes) -> str:
        """`write` through `sample_members` and `SampleTarWriter` (any key)."""
        members = sample_members(record, self.txt_field, jpeg, self.caption_case)
        return idx_line(record.image_id, SampleTarWriter(stream).write(record.image_id, members))
