"""Naming rules as small pure functions: normalising taxa, display forms, common names and captions.

The rules are those of the old scripts (shared/spec/naming.md), except where docs/differences.md says we fix
a defect; each such place is marked "Fix #N" with the defect number of naming.md §11.

A taxon is a tuple of seven lower-case slots (kingdom, phylum, class, order, family, genus, species), the
species slot holding only the epithet (possibly several words). Voucher codes in the epithet keep their case
(Fix #16: `sp. 12ABC`, not `sp. 12abc`).
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from typing import NamedTuple

from etl import resources

RANK_NAMES = ("kingdom", "phylum", "class", "order", "family", "genus", "species")
Taxon = tuple[str, ...]  # seven slots in RANK_NAMES order (see the module docstring)
PLACEHOLDERS_FILE = "placeholders.txt"
KINGDOMS_FILE = "kingdoms.json"
FAMILY_NAMES_FILE = "family_names.json"

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
# Authority stripping (docs/differences.md): qualifiers after which the words are part of the name (voucher
# codes, compared species), particles that belong to author names, and what an author abbreviation looks like.
_NAME_QUALIFIERS = frozenset({"sp.", "spp.", "cf.", "aff.", "nr.", "agg."})
_OPEN_QUALIFIERS = frozenset({"sp.", "spp."})  # everything after these is a code, kept as written
_AUTHOR_PARTICLES = frozenset({"ex", "et", "al.", "in", "non", "sensu", "emend.", "auct.", "nom.", "de", "del",
                               "della", "van", "von", "der", "den", "da", "du", "le", "la", "d'"})
_ABBREVIATION = re.compile(r"^[A-Za-z]+\.([A-Za-z]+\.?)*,?$")
_YEAR = re.compile(r"\d{4}")


@cache
def placeholder_entries() -> tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]:
    """(exact entries, prefixes, suffixes) of etl/data/placeholders.txt (see its header for the format)."""
    exact, prefixes, suffixes = set(), [], []
    for line in resources.data_file(PLACEHOLDERS_FILE).read_text(encoding="utf-8").splitlines():
        entry = " ".join(line.split()).lower()
        if not entry or entry.startswith("#"):
            continue
        if entry.endswith(" *"):
            prefixes.append(entry[:-1])
        elif entry.startswith("* "):
            suffixes.append(entry[1:])
        else:
            exact.add(entry)
    return frozenset(exact), tuple(prefixes), tuple(suffixes)


def is_placeholder(value: str) -> bool:
    """Whether a slot or name is a placeholder of etl/data/placeholders.txt (`not provided`, `sp.` …)."""
    text = " ".join(strip_html(value).split()).lower()
    if not text:
        return False
    exact, prefixes, suffixes = placeholder_entries()
    return text in exact or text.startswith(prefixes) or text.endswith(suffixes)


@cache
def kingdom_vocabulary() -> tuple[frozenset[str], dict[str, str]]:
    """(accepted kingdoms, provider name → accepted kingdom), lower case, from etl/data/kingdoms.json."""
    data = json.loads(resources.data_file(KINGDOMS_FILE).read_text(encoding="utf-8"))
    accepted = frozenset(k.lower() for k in data["kingdoms"])
    synonyms = {k.lower(): v.lower() for k, v in data["synonyms"].items()}
    return accepted, synonyms


def accepted_kingdom(value: str) -> str:
    """The accepted kingdom (lower case) a provider's kingdom name maps to, or "" when it maps to none."""
    name = value.strip().lower()
    accepted, synonyms = kingdom_vocabulary()
    return name if name in accepted else synonyms.get(name, "")


def is_native_kingdom(value: str) -> bool:
    """Whether a provider's kingdom name is itself one of the accepted kingdoms (no mapping needed)."""
    return value.strip().lower() in kingdom_vocabulary()[0]


@cache
def family_name_forms() -> tuple[tuple[str, ...], frozenset[str]]:
    """(endings, conserved names) that mark a one-word name as a family, from etl/data/family_names.json."""
    data = json.loads(resources.data_file(FAMILY_NAMES_FILE).read_text(encoding="utf-8"))
    return tuple(data["suffixes"]), frozenset(data["conserved"])


def uninomial_rank(name: str) -> str:
    """The rank a one-word scientific name stands for when nothing else tells: `family` for a family ending
    (`Ostreidae`, `Fagaceae`) or a conserved family name (`Compositae`), else `genus` (`Ostrea`)."""
    word = name.strip().lower()
    suffixes, conserved = family_name_forms()
    return "family" if word in conserved or word.endswith(suffixes) else "genus"


def _is_authority_start(word: str, original_case: bool) -> bool:
    if original_case:
        return word[:1].isupper() or word.startswith("(")
    return (word.startswith("(") or "," in word or "&" in word or "'" in word or bool(_YEAR.search(word))
            or word in _AUTHOR_PARTICLES or (word not in _NAME_QUALIFIERS and bool(_ABBREVIATION.match(word))))


def strip_authority(text: str, original_case: bool = True) -> str:
    """Cut a scientific name before its authority: the first word that starts one, after the first word.

    With `original_case`, an authority starts at a capitalised word or `(` (`Trametes trogii Berk., 1850`,
    `Brassica oleracea (L.) Lam.`); otherwise (lower-cased text) at a word holding `,` `&` `'` or a year, an
    author particle (`ex`, `et`, `de` …) or an abbreviation (`berk.`, `r.br.`). Words after `sp.`/`spp.`
    are a voucher code and kept.
    """
    words = text.split()
    kept = words[:1]
    for word in words[1:]:
        if word in _OPEN_QUALIFIERS:
            return " ".join(words)
        if _is_authority_start(word, original_case):
            break
        kept.append(word)
    return " ".join(kept)


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
    stays `pica hudsonia` instead of becoming another species (`pica`). Before the patterns, a name written
    with a capitalised genus loses its authority at the first capitalised word (`strip_authority`); after
    them, the lower-case debris they leave (`berk.,`, `et`, `ex` …) goes too (docs/differences.md).
    """
    text = strip_html(text).strip()
    words = text.split()
    code_at = next((i for i, word in enumerate(words) if i and word in _OPEN_QUALIFIERS), None)
    if code_at is not None and code_at + 1 < len(words):  # a voucher code (`sp. BOLD:AAB1234`) is kept whole
        code = lower_keeping_codes(" ".join(words[code_at + 1:]))
        return f"{clean_name(' '.join(words[:code_at + 1]))} {code}"
    if words and words[0][:1].isupper() and words[0][1:].islower():  # capitalised as written: authors show
        text = strip_authority(text)
    text = lower_keeping_codes(text).strip()
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
    return strip_authority(text, original_case=False)


# Rank names repeat across hundreds of thousands of naming keys (a 10M build has about 450k): the same few
# thousand kingdoms … genera would be stripped and checked against the placeholder list again and again.
@lru_cache(maxsize=1 << 16)
def _clean_slot(value: str) -> str:
    value = lower_keeping_codes(strip_html(value)).strip()
    return "" if is_placeholder(value) else value


def normalise(taxon: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Normalise seven raw slots (any source) into a taxon, by the steps of naming.md §2."""
    if len(taxon) != 7:
        raise ValueError(f"a taxon has 7 slots, not {len(taxon)}")
    slots = [_clean_slot(value) for value in taxon]
    slots[6] = clean_name(slots[6])
    slots[0] = accepted_kingdom(slots[0])
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
