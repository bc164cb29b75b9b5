"""`tol shards verify --shardlist PATTERN`: check any WebDataset shards, with no catalog.

Works on shards this tool did not write (downloaded ones, or the original pipeline's 11-member samples): every
fact checked is read from the tars themselves and from the sidecars next to them when present. The tar headers
are walked by hand rather than through `tarfile`, which would hide PAX headers and stop quietly at a cut.
"""

from __future__ import annotations

import functools
import glob
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from braceexpand import braceexpand
from PIL import Image

from etl.errors import TolError
from etl.parallel import ordered_map

BLOCK = 512
USTAR_MAGICS = (b"ustar\x0000", b"ustar  \x00")
IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "ppm", "pgm", "tif", "tiff", "bmp"}
TEXT_EXTENSIONS = {"txt", "json", "cls", "text"}
# webdataset's TarWriter (so the original release) gives each member a float mtime, which tarfile writes as a PAX
# record: timestamps only change no name, size or owner, and every reader tested takes them. Any other record
# (a long or non-ASCII name, a size, an owner) is refused.
HARMLESS_PAX_KEYS = {"mtime", "atime", "ctime"}


class RawMember(NamedTuple):
    """One member of a tar as its header gives it."""

    name: str
    offset: int  # where its data starts
    size: int
    typeflag: bytes


@dataclass
class ShardReport:
    """One shard's samples (keys in order, member sets) and the problems found in it."""

    path: str
    keys: list[str] = field(default_factory=list)
    member_sets: Counter[tuple[str, ...]] = field(default_factory=Counter)
    first_member_set: tuple[str, ...] = ()
    problems: list[str] = field(default_factory=list)


def expand_shardlist(pattern: str) -> list[Path]:
    """Every file `pattern` names: brace expansion as webdataset's (`shard-{000000..000031}.tar`), then globs.

    A brace-expanded name that names no file is kept, so the check reports it missing."""
    paths: list[Path] = []
    for expanded in braceexpand(pattern):
        if glob.has_magic(expanded):
            paths.extend(Path(p) for p in sorted(glob.glob(expanded)))
        else:
            paths.append(Path(expanded))
    unique = list(dict.fromkeys(paths))
    if not unique:
        raise TolError(f"--shardlist {pattern!r} names no file")
    return unique


def _octal(field_bytes: bytes) -> int:
    if field_bytes[:1] == b"\x80":  # GNU base-256 for sizes over 8 GiB
        return int.from_bytes(field_bytes[1:], "big")
    text = field_bytes.rstrip(b"\0 ").strip()
    return int(text or b"0", 8)


def walk_members(data: bytes, problems: list[str]) -> Iterator[RawMember]:
    """The regular-file members of a tar, checking each header: ustar or GNU only, no PAX, checksum, no cut."""
    offset, long_name = 0, None
    while offset + BLOCK <= len(data):
        header = data[offset:offset + BLOCK]
        if header == b"\0" * BLOCK:
            return
        checksum = sum(header[:148]) + 8 * 32 + sum(header[156:])
        try:
            stored, size = _octal(header[148:156]), _octal(header[124:136])
        except ValueError:
            problems.append(f"header at byte {offset}: not a tar header")
            return
        if stored != checksum:
            problems.append(f"header at byte {offset}: bad checksum")
            return
        typeflag = header[156:157]
        if header[257:265] not in USTAR_MAGICS:
            problems.append(f"header at byte {offset}: not ustar or GNU format")
        name = long_name or header[:100].rstrip(b"\0").decode("utf-8", "replace")
        prefix = header[345:500].rstrip(b"\0") if header[257:262] == b"ustar" and header[262:263] == b"\0" else b""
        if prefix and not long_name:
            name = prefix.decode("utf-8", "replace") + "/" + name
        long_name = None
        start = offset + BLOCK
        if start + size > len(data):
            problems.append(f"{name}: truncated member ({len(data) - start} of {size} bytes)")
            return
        if typeflag in (b"x", b"g"):
            keys = pax_keys(data[start:start + size]) - HARMLESS_PAX_KEYS
            if keys:
                problems.append(f"header at byte {offset}: PAX extended header ({', '.join(sorted(keys))})")
        elif typeflag == b"L":
            long_name = data[start:start + size].rstrip(b"\0").decode("utf-8", "replace")
        elif typeflag in (b"0", b"\0"):
            yield RawMember(name, start, size, typeflag)
        elif typeflag not in (b"x", b"g"):
            problems.append(f"{name}: not a regular file")
        offset = start + (size + BLOCK - 1) // BLOCK * BLOCK
    problems.append("ends without the end-of-archive blocks (cut short?)")


def pax_keys(records: bytes) -> set[str]:
    """The keys of a PAX header's records (`<length> <key>=<value>\\n` each)."""
    keys, position = set(), 0
    while position < len(records) and records[position:position + 1] != b"\0":
        length_text, _, rest = records[position:].partition(b" ")
        try:
            length = int(length_text)
        except ValueError:
            return {"<unreadable>"}
        keys.add(rest.split(b"=", 1)[0].decode("utf-8", "replace"))
        position += max(length, 1)
    return keys


def split_name(name: str) -> tuple[str, str]:
    """webdataset's split of a member name: (key, extension) at the first dot of the base name."""
    folder, _, base = name.rpartition("/")
    stem, _, extension = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), extension


def _check_content(name: str, extension: str, payload: bytes, problems: list[str]) -> None:
    last = extension.rsplit(".", 1)[-1].lower()
    if last in IMAGE_EXTENSIONS:
        try:
            with Image.open(io.BytesIO(payload)) as image:
                image.load()
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            problems.append(f"{name}: image does not decode ({exc})")
    elif last in TEXT_EXTENSIONS:
        try:
            text = payload.decode("utf-8")
            if last == "json":
                json.loads(text)
        except UnicodeDecodeError:
            problems.append(f"{name}: not UTF-8")
        except ValueError:
            problems.append(f"{name}: not valid JSON")


def check_tar(path: Path, decode: bool = True) -> ShardReport:
    """The checks of one shard that need only its own bytes, plus its `.idx` when present."""
    report = ShardReport(str(path))
    if not path.is_file():
        report.problems.append("file missing")
        return report
    data = path.read_bytes()
    members = list(walk_members(data, report.problems))
    samples: list[tuple[str, list[RawMember]]] = []
    for member in members:
        key, extension = split_name(member.name)
        if not extension:
            report.problems.append(f"{member.name}: not <key>.<extension>")
            continue
        if samples and samples[-1][0] == key:
            samples[-1][1].append(member)
        else:
            samples.append((key, [member]))
        if decode:
            _check_content(member.name, extension, data[member.offset:member.offset + member.size], report.problems)
    seen: set[str] = set()
    for key, group in samples:
        if key in seen:
            report.problems.append(f"{key}: sample split across two places in the tar")
        seen.add(key)
        extensions = tuple(sorted(split_name(m.name)[1] for m in group))
        if len(set(extensions)) != len(extensions):
            report.problems.append(f"{key}: a member appears twice")
        report.member_sets[extensions] += 1
        report.keys.append(key)
    if samples:
        report.first_member_set = tuple(sorted(split_name(m.name)[1] for m in samples[0][1]))
    _check_idx(path, samples, report.problems)
    return report


def _check_idx(path: Path, samples: list[tuple[str, list[RawMember]]], problems: list[str]) -> None:
    idx = path.with_suffix(".idx")
    if not idx.is_file():
        return
    lines = idx.read_text(encoding="ascii", errors="replace").splitlines()
    expected = [" ".join(f"{split_name(m.name)[1]} {m.offset} {m.size} {m.name}" for m in group)
                for _key, group in samples]
    header = lines[0].split() if lines else []
    if len(header) != 2 or header[1] != str(len(samples)) or lines[1:] != expected:
        problems.append(f"{idx.name} does not match the tar")


def _sample_problems(report: ShardReport, reference: tuple[str, ...]) -> None:
    """Member sets against the shard list's usual one; a dot in a key shows as an odd extension."""
    known_extensions = set(reference)
    for members, count in report.member_sets.items():
        if members == reference:
            continue
        dotted = [e for e in members if e not in known_extensions and e.split(".", 1)[-1] in known_extensions]
        if dotted:
            report.problems.append(f"{count} samples have a dot in their key (members {', '.join(dotted)})")
        else:
            report.problems.append(f"{count} samples have members {', '.join(members)}, not {', '.join(reference)}")


def _sidecar_problems(reports: list[ShardReport]) -> None:
    """`sizes.json` and `shardindex.json` next to the shards agree with what was read."""
    by_folder: dict[Path, list[ShardReport]] = {}
    for report in reports:
        by_folder.setdefault(Path(report.path).parent, []).append(report)
    for folder, group in by_folder.items():
        sizes_file, index_file = folder / "sizes.json", folder / "shardindex.json"
        sizes = json.loads(sizes_file.read_text(encoding="utf-8")) if sizes_file.is_file() else None
        index = json.loads(index_file.read_text(encoding="utf-8")) if index_file.is_file() else None
        entries = {Path(e["url"]).name: e for e in index["shardlist"]} if index else {}
        for report in group:
            name, path = Path(report.path).name, Path(report.path)
            if sizes is not None and sizes.get(name) != len(report.keys):
                report.problems.append(f"sizes.json says {sizes.get(name)} samples, the tar has {len(report.keys)}")
            entry = entries.get(name)
            if index is not None and (entry is None or entry["nsamples"] != len(report.keys)
                                      or (path.is_file() and entry["filesize"] != path.stat().st_size)):
                report.problems.append("shardindex.json does not match the tar")


def check_shardlist(paths: list[Path], *, decode: bool = True, workers: int = 1) -> list[ShardReport]:
    """Check every listed shard, then what spans them: keys unique across shards, one member set, sidecars."""
    reports = list(ordered_map(functools.partial(check_tar, decode=decode), paths, workers,
                               window=2 * max(workers, 1)))
    totals: Counter[tuple[str, ...]] = Counter()
    for report in reports:
        totals.update(report.member_sets)
    if totals:
        reference = totals.most_common(1)[0][0]
        for report in reports:
            _sample_problems(report, reference)
    owner: dict[str, str] = {}
    for report in reports:
        duplicated = 0
        for key in report.keys:
            first = owner.setdefault(key, report.path)
            if first != report.path:
                duplicated += 1
                if duplicated <= 3:
                    where = Path(first).name if Path(first).parent == Path(report.path).parent else first
                    report.problems.append(f"{key}: key also in {where}")
        if duplicated > 3:
            report.problems.append(f"{duplicated} keys in all also in earlier shards")
    _sidecar_problems(reports)
    return reports


def report_lines(reports: list[ShardReport]) -> list[str]:
    """Each bad shard with why, then the count of good ones."""
    bad = [report for report in reports if report.problems]
    out = [f"BAD {report.path}: " + "; ".join(report.problems[:5])
           + (f" (+{len(report.problems) - 5} more)" if len(report.problems) > 5 else "") for report in bad]
    samples = sum(len(report.keys) for report in reports)
    out.append(f"{len(reports) - len(bad)} of {len(reports)} shards good ({samples:,} samples)")
    return out
