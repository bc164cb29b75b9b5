"""Stable identifiers: an image's treeoflife_id and the hash its split is drawn from.

The old pipeline gave every image a random uuid4, so every rebuild changed every key. Ours is a UUIDv5 of
the image's source identity under a fixed project namespace: the same file gets the same id on any machine,
in any order, on either database.
"""

from __future__ import annotations

import hashlib
import uuid

# Fixed forever: changing it changes every id ever published. (= uuid5(NAMESPACE_URL, "treeoflife-etl"))
PROJECT_NAMESPACE = uuid.UUID("4e20ad53-6515-5c38-bc22-fdaaaeff675e")
SPLIT_HASH_BITS = 31


_NAMESPACE_BYTES = PROJECT_NAMESPACE.bytes
# RFC 4122 variant: the top two bits of hex digit 16 become 10.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def uuid5_text(name: str) -> str:
    """`str(uuid.uuid5(PROJECT_NAMESPACE, name))`, computed on the hex digest without building UUID objects
    (ingest calls it millions of times)."""
    h = hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"


def source_image_id(source: str, *identity: object) -> str:
    """The treeoflife_id of an image of `source` from the parts of its source identity: the UUIDv5 of
    ``source/part/part…``. Every source derives its ids here, so no two sources can share one.

    >>> source_image_id("inat21", 4815, "a.jpg") == inat21_image_id(4815, "a.jpg")
    True
    """
    return uuid5_text("/".join(map(str, (source, *identity))))


def eol_image_id(content_id: int, page_id: int) -> str:
    """The treeoflife_id of an EOL image, from its (content id, page id)."""
    return source_image_id("eol", content_id, page_id)


def inat21_image_id(cls_num: int, filename: str) -> str:
    """The treeoflife_id of an iNat21 image, from its class number and file name."""
    return source_image_id("inat21", cls_num, filename)


def bioscan_image_id(part: int, filename: str) -> str:
    """The treeoflife_id of a BIOSCAN-1M image, from its part number and file name."""
    return source_image_id("bioscan", part, filename)


def split_hash(image_id: str) -> int:
    """A uniformly distributed 31-bit integer of the image id.

    31 bits keep every product in the split arithmetic (hash × multiplier < 2^62) inside a signed 64-bit
    integer, so SQLite and PostgreSQL compute the same thing with no overflow and no XOR.
    """
    digest = hashlib.sha256(image_id.encode("ascii")).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - SPLIT_HASH_BITS)
