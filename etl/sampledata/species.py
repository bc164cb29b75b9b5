"""Synthetic species: a tree with shared higher ranks, made-up Latin-looking names and where each appears."""

from __future__ import annotations

import random
from dataclasses import dataclass

SYLLABLES = ["ba", "ca", "do", "fe", "ga", "hi", "lu", "ma", "ne", "po", "ra", "si", "ta", "vo", "xe", "zo",
             "mi", "ru", "pe", "lo"]
# (iNat21/ITIS kingdom, its name in EOL's Dynamic Hierarchy): the sources disagree, as the real ones do.
KINGDOMS = [("Animalia", "Metazoa"), ("Plantae", "Chloroplastida"), ("Fungi", "Fungi")]
COMMON_NOUNS = ["Moth", "Fern", "Newt", "Bracket", "Sedge", "Beetle", "Finch"]
INSECT_ORDERS = ["Diptera", "Hymenoptera", "Coleoptera", "Hemiptera", "Lepidoptera"]


@dataclass
class Species:
    """A synthetic species: its true seven ranks (display case; species = epithet) and where it appears."""

    ranks: tuple[str, str, str, str, str, str, str]
    in_inat: bool = False
    in_eol: bool = False
    in_bioscan: bool = False
    common: str = ""

    @property
    def binomial(self) -> str:
        """Genus and epithet, as a scientific name is written."""
        return f"{self.ranks[5]} {self.ranks[6]}"


def _word(rng: random.Random, syllables: int, ending: str) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables)) + ending


def synthetic_species(rng: random.Random, count: int) -> list[Species]:
    """`count` species in a tree with shared higher ranks; a quarter are insects (BIOSCAN-like)."""
    species: list[Species] = []
    seen: set[str] = set()

    def unique(syllables: int, ending: str) -> str:
        # Names grow a syllable after every 20 collisions: large collections need more names than two
        # syllables can make (20² × endings), and small ones draw exactly as before.
        attempts = 0
        while True:
            value = _word(rng, syllables + attempts // 20, ending).capitalize()
            if value not in seen:
                seen.add(value)
                return value
            attempts += 1

    branches: list[tuple[str, ...]] = []
    for kingdom, _ in KINGDOMS:
        for _ in range(2):
            phylum = unique(3, "phyta" if kingdom == "Plantae" else "ota")
            for _ in range(2):
                cls = unique(3, "opsida" if kingdom == "Plantae" else "ia")
                for _ in range(2):
                    branches.append((kingdom, phylum, cls, unique(3, "ales")))
    insect_branches = [("Animalia", "Arthropoda", "Insecta", order) for order in INSECT_ORDERS]
    while len(species) < count:
        insect = len(species) % 4 == 0
        branch = rng.choice(insect_branches if insect else branches)
        family = unique(3, "idae" if branch[0] == "Animalia" else "aceae")
        for _ in range(2):
            genus = unique(2, rng.choice(["us", "a", "ium"]))
            for _ in range(rng.randint(1, 3)):
                if len(species) >= count:
                    break
                epithet = _word(rng, 2, rng.choice(["ensis", "ata", "ii", "us", "alis"]))
                item = Species((branch[0], branch[1], branch[2], branch[3], family, genus, epithet))
                roll = rng.random()
                if insect:
                    item.in_bioscan = True
                    item.in_eol = roll < 0.3
                else:
                    item.in_inat = roll < 0.65
                    item.in_eol = roll > 0.35
                if rng.random() < 0.5:
                    item.common = f"{_word(rng, 2, '').capitalize()} {rng.choice(COMMON_NOUNS)}"
                species.append(item)
    return species
