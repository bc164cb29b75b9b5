"""Naming rules as small pure functions: normalising taxa, display forms, common names and captions.

The rules are those of the old scripts (shared/spec/naming.md), except where docs/differences.md says we fix
a defect; each such place is marked "Fix #N" with the defect number of naming.md §11.

A taxon is a tuple of seven lower-case slots (kingdom, phylum, class, order, family, genus, species), the
species slot holding only the epithet (possibly several words). Voucher codes in the epithet keep their case
(Fix #16: `sp. 12ABC`, not `sp. 12abc`).
"""

from __future__ import annotations

import re
from typing import NamedTuple

RANK_NAMES = ("kingdom", "phylum", "class", "order", "family", "genus", "species")
Taxon = tuple[str, ...]  # seven slots in RANK_NAMES order (see the module docstring)
PLACEHOLDERS = frozenset({"(unidentified)", "unknown", "pleasehelp"})
KINGDOM_SYNONYMS = {"metazoa": "animalia", "archaeplastida": "plantae", "chloroplastida": "plantae"}

_PAIRED_TAG = re.compile(r"<([A-Za-z][A-Za-z0-9]*)\b[^<>]*>([^<>]*)</\1\s*>")
_SPACES = re.compile(r"\s+")
# clean_name's cut patterns, in order. Fix #12: `[A-Za-z]` where the original had `[A-z]` (which also matched
# `[ \ ] ^ _` and backtick).
_AUTHOR_YEAR = re.compile(r"\w+ \d\d\d\d")
_CUT_PATTERNS = (
    re.compile(r"\("),
    re.compile(r"ssp\."),
    re.compile(r"subsp\."),
    re.compile(r"var\."),
    re.compile(r"\w+, \w+ & \w+"),
    re.compile(r"\w+ & \w+"),
    _AUTHOR_YEAR,
    re.compile(r"\w+, \d\d\d\d"),
    re.compile(r"\d\d\d\d"),
    re.compile(r" [A-Za-z]\."),
    re.compile(r"<br ?>"),
)
_TRAILING_QUALIFIER = re.compile(r"\s*\([^()]*\)\s*$")


def strip_html(text: str) -> str:
    """Replace paired tags `<b>x</b>` by their content, innermost first, until none is left; lone tags stay."""
    while True:
        stripped = _PAIRED_TAG.sub(r"\2", text)
        if stripped == text:
            return text
        text = stripped


def lower_keeping_codes(text: str) -> str:
    """Lower-case `text`, except words holding a digit (voucher codes such as `12ABC`). Fix #16."""
    return " ".join(word if any(c.isdigit() for c in word) else word.lower() for word in text.split(" "))


def clean_name(text: str) -> str:
    """Strip authorities, years and infraspecific ranks from a scientific name: lower-case, no HTML, trimmed.

    Each pattern cuts the text at its first match. Fix #11: an author-and-year match (`Chevrolat 1860`) is
    cut only if at least two words are left before it; otherwise only the year goes, so `Pica hudsonia 1823`
    stays `pica hudsonia` instead of becoming another species (`pica`).
    """
    text = lower_keeping_codes(strip_html(text)).strip()
    for pattern in _CUT_PATTERNS:
        match = pattern.search(text)
        if not match:
            continue
        cut = match.start()
        if pattern is _AUTHOR_YEAR and len(text[:cut].split()) < 2:
            year = re.search(r"\d\d\d\d", text[match.start():])
            assert year is not None  # _AUTHOR_YEAR matched a four-digit year
            cut = year.start() + match.start()
        text = text[:cut].strip()
    return text


def _clean_slot(value: str) -> str:
    value = lower_keeping_codes(strip_html(value))
    return "" if value in PLACEHOLDERS else value


def normalise(taxon: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Normalise seven raw slots (any source) into a taxon, by the steps of naming.md §2."""
    if len(taxon) != 7:
        raise ValueError(f"a taxon has 7 slots, not {len(taxon)}")
    slots = [_clean_slot(value) for value in taxon]
    slots[6] = clean_name(slots[6])
    slots[0] = KINGDOM_SYNONYMS.get(slots[0], slots[0])
    if slots[6]:
        first, *rest = slots[6].split()
        if first == slots[5] and rest:
            slots[6] = " ".join(rest)
        elif not slots[5] and rest:
            slots[5], slots[6] = first, " ".join(rest)
        words = slots[6].split()
        if len(words) == 2 and words[0] == words[1]:
            slots[6] = words[0]
    return tuple(_clean_slot(value) for value in slots)


def cap(value: str) -> str:
    """Display case of a rank name: first letter upper, the rest lower (Python's str.capitalize)."""
    return value.capitalize()


def _initial_upper(value: str) -> str:
    return value[:1].upper() + value[1:]


def display(taxon: tuple[str, ...]) -> tuple[str, ...]:
    """The display tuple: capitalised ranks, the epithet as stored (lower case, codes kept).

    Fix #16: a species slot with no genus stands alone as the name, so it is shown with a capital, as the
    scientific name shows it (the old code gave `Ostrea` and `ostrea` for the same taxon).
    """
    shown = [cap(value) for value in taxon[:6]]
    species = taxon[6]
    shown.append(_initial_upper(species) if species and not taxon[5] else species)
    return tuple(shown)


def _join(parts) -> str:
    return _SPACES.sub(" ", " ".join(p for p in parts if p)).strip()


class Names(NamedTuple):
    """The names a sample's captions are made of."""

    scientific: str
    taxonomic: str
    tagged: str


def names(taxon: tuple[str, ...]) -> Names:
    """Scientific, taxonomic and tagged names of a taxon (naming.md §3, with Fix #16)."""
    shown = display(taxon)
    scientific = _initial_upper(_join((shown[5], taxon[6]))) if (taxon[5] or taxon[6]) else ""
    taxonomic = _join(shown)
    tagged = " ".join(f"{word} {value}" for word, value in zip(RANK_NAMES, shown, strict=True) if value)
    return Names(scientific, taxonomic, tagged)


def common_or_fallback(common: str, scientific: str, taxonomic: str) -> str:
    """The common name a sample shows: the common name, else the scientific, else the taxonomic name."""
    return common or scientific or taxonomic


CAPTION_FIELDS = ("com.txt", "common_name.txt", "sci.txt", "sci_com.txt", "scientific_name.txt", "taxon.txt",
                  "taxonTag.txt", "taxonTag_com.txt", "taxon_com.txt", "taxonomic_name.txt")


def captions(scientific: str, taxonomic: str, tagged: str, common: str) -> dict[str, str]:
    """The ten caption fields of a sample (sources.md §6.2), keyed by tar member extension.

    Fix #15: where there is no scientific name (family-level taxa, most of BIOSCAN) the sentences that name
    it use the taxonomic name instead, so no caption reads `a photo of .`; `scientific_name.txt` stays empty.
    """
    com = common_or_fallback(common, scientific, taxonomic)
    sci = scientific or taxonomic
    return {
        "com.txt": f"a photo of {com}.",
        "common_name.txt": com,
        "sci.txt": f"a photo of {sci}.",
        "sci_com.txt": f"a photo of {sci} with common name {com}.",
        "scientific_name.txt": scientific,
        "taxon.txt": f"a photo of {taxonomic}.",
        "taxonTag.txt": f"a photo of {tagged}.",
        "taxonTag_com.txt": f"a photo of {tagged} with common name {com}.",
        "taxon_com.txt": f"a photo of {taxonomic} with common name {com}.",
        "taxonomic_name.txt": taxonomic,
    }


def clean_common_name(text: str) -> str:
    """An EOL vernacular as shown: HTML stripped, spaces collapsed, a trailing `(qualifier)` dropped.

    Fix #10: the old code lower-cased and cut EOL names with clean_name (`Bob & Alice's moth` → ``,
    `Trogi's Bracket (fungus)` → `trogi's bracket`); we keep the name as written.
    """
    text = _SPACES.sub(" ", strip_html(text)).strip()
    return _TRAILING_QUALIFIER.sub("", text).strip()


def first_english_name(names_text: str, languages_text: str) -> str:
    """The English name of an ITIS row's `terminal_vernacular` / `terminal_vernacular_lang` pair.

    Fix #9: names and languages are paired only when their counts agree; a single `English` for several
    names means they are all English (the first is taken); otherwise no name is trusted.
    """
    if not names_text.strip():
        return ""
    names_list = [n.strip() for n in names_text.split(", ")]
    languages = [lang.strip() for lang in languages_text.split(", ")]
    if len(names_list) == len(languages):
        return next((n for n, lang in zip(names_list, languages, strict=True) if lang == "English" and n), "")
    if set(languages) == {"English"}:
        return names_list[0]
    return ""


def split_rank_key(key: str) -> tuple[str, ...]:
    """The seven ranks of an `unseen_in_training.json` key (`Animalia-…-Cyclonaias-tuberculata`).

    An epithet may itself hold hyphens (`novae-angliae`), so everything after the sixth hyphen is the epithet.
    """
    parts = key.split("-")
    if len(parts) < 7:
        raise ValueError(f"rare-species key {key!r} has {len(parts)} ranks, expected 7 joined by '-'")
    return (*parts[:6], "-".join(parts[6:]))
