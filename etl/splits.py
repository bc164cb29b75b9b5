"""Split definitions: train / val / train_small as a pure function of a seed and each image's stable hash.

The arithmetic lives in the SQL view `image_splits` (sql/views/image_splits); `split_of` below is the same rule
in Python, used by tests to check the view on both databases. A definition is immutable: its thresholds are
fixed when it is created, so the split of an image never changes, and adding images moves no other image.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, NamedTuple

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from etl.errors import TolError, unknown_name
from etl.ids import SPLIT_HASH_BITS
from etl.models import SplitDefinition

MODULUS = 1 << SPLIT_HASH_BITS
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Permutation(NamedTuple):
    """`key = (hash * multiplier + increment) mod 2^31`, a bijection of the 31-bit split hashes.

    The multiplier is odd, so keys are as uniform as the hashes, and each seed orders them differently. Every
    product stays below 2^62, inside a signed 64-bit integer on either database.
    """

    multiplier: int
    increment: int

    def key(self, split_hash: int) -> int:
        """The permuted key of one hash (the same expression as the SQL that orders or splits images)."""
        return (split_hash * self.multiplier + self.increment) % MODULUS


def seeded_permutation(purpose: Literal["split", "shuffle"], seed: int) -> Permutation:
    """The permutation drawn from `seed` for `purpose`: split definitions and plan orders draw independently."""
    digest = hashlib.sha256(f"treeoflife-etl {purpose} seed {seed}".encode()).digest()
    return Permutation((int.from_bytes(digest[:4], "big") % MODULUS) | 1, int.from_bytes(digest[4:8], "big") % MODULUS)


@dataclass(frozen=True)
class SplitParameters:
    """The integers the split view computes with, derived from the seed and the two percentages."""

    seed: int
    val_percent: float
    train_small_percent: float
    multiplier: int
    increment: int
    val_threshold: int
    train_small_threshold: int


def _percent(value: float, option: str) -> Fraction:
    fraction = Fraction(str(value))
    if not 0 <= fraction <= 100:
        raise TolError(f"{option} must be between 0 and 100, not {value}")
    return fraction


def parameters(seed: int, val_percent: float = 5.0, train_small_percent: float = 10.0) -> SplitParameters:
    """Derive the split integers from a seed and percentages (the permutation: see `Permutation`)."""
    if not -(2**63) <= seed < 2**63:
        raise TolError(f"--seed must fit in 64 bits, not {seed}")
    val = _percent(val_percent, "--val-percent")
    small = _percent(train_small_percent, "--train-small-percent")
    multiplier, increment = seeded_permutation("split", seed)
    val_threshold = int(MODULUS * val / 100)
    train_small_threshold = val_threshold + int((MODULUS - val_threshold) * small / 100)
    return SplitParameters(seed, float(val_percent), float(train_small_percent), multiplier, increment,
                           val_threshold, train_small_threshold)


def split_key(split_hash: int, params: SplitParameters) -> int:
    """The per-definition key of an image (the same expression as the SQL view)."""
    return Permutation(params.multiplier, params.increment).key(split_hash)


def split_of(split_hash: int, params: SplitParameters) -> tuple[str, bool]:
    """(`val` or `train`, whether in train_small) for an image with `split_hash`."""
    key = split_key(split_hash, params)
    if key < params.val_threshold:
        return "val", False
    return "train", key < params.train_small_threshold


def create(engine: Engine, name: str, seed: int = 17, val_percent: float = 5.0,
           train_small_percent: float = 10.0) -> tuple[SplitParameters, bool]:
    """Record split definition `name`; returns (parameters, created). Re-creating it identically is a no-op;
    with other parameters it is an error, because a definition never changes."""
    if not re.match(NAME_PATTERN, name):
        raise TolError(f"split name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    params = parameters(seed, val_percent, train_small_percent)
    with engine.begin() as connection:
        row = connection.execute(select(SplitDefinition.__table__).where(SplitDefinition.name == name)).first()
        if row is not None and row.kind != "hash":
            raise TolError(f"split {name!r} already exists as a {row.kind} split: use a new name")
        if row is not None:
            if (row.seed, row.val_threshold, row.train_small_threshold) == (
                    params.seed, params.val_threshold, params.train_small_threshold):
                return params, False
            raise TolError(f"split {name!r} already exists with seed {row.seed}, val {row.val_percent} %, "
                           f"train_small {row.train_small_percent} %: definitions never change, use a new name")
        connection.execute(insert(SplitDefinition).values(
            name=name, seed=params.seed, val_percent=params.val_percent,
            train_small_percent=params.train_small_percent, multiplier=params.multiplier,
            increment=params.increment, val_threshold=params.val_threshold,
            train_small_threshold=params.train_small_threshold))
    return params, True


def release_counts(engine: Engine, definition_id: int) -> dict[str, int]:
    """Images a `release` definition lists per split (train_small within train), and how many of them are
    catalogued (present)."""
    with engine.connect() as connection:
        row = connection.execute(text("""
            SELECT SUM(CASE WHEN m.split = 'train' THEN 1 ELSE 0 END), SUM(CASE WHEN m.split = 'val' THEN 1 ELSE 0 END),
                   SUM(m.in_train_small),
                   SUM(CASE WHEN EXISTS (SELECT 1 FROM images AS i WHERE i.id = m.treeoflife_id
                                         AND i.status = 'present') THEN 1 ELSE 0 END)
            FROM release_split_members AS m WHERE m.split_definition_id = :d"""), {"d": definition_id}).one()
    return dict(zip(("train", "val", "train_small", "catalogued"), (int(v or 0) for v in row), strict=True))


def get(engine: Engine, name: str) -> SplitDefinition:
    """The definition called `name`, or a one-line error listing the known ones."""
    with Session(engine) as session:
        row = session.scalars(select(SplitDefinition).where(SplitDefinition.name == name)).first()
        if row is None:
            known = session.scalars(select(SplitDefinition.name).order_by(SplitDefinition.name)).all()
            raise unknown_name("split definition", name, known, "see tol splits create")
        session.expunge(row)
        return row


def list_definitions(engine: Engine) -> list[SplitDefinition]:
    """Every split definition, oldest first."""
    with Session(engine) as session:
        rows = session.scalars(select(SplitDefinition).order_by(SplitDefinition.id)).all()
        session.expunge_all()
        return list(rows)


@dataclass
class SplitReport:
    """Counts of one definition: per split × source × kingdom, and val species absent from train."""

    definition: SplitDefinition
    counts: list[tuple[str, str, str, int]]
    val_species_not_in_train: int
    val_species: int

    def lines(self) -> list[str]:
        """What `tol splits show` prints: the definition, a table of counts, and the val species check."""
        d = self.definition
        out = [f"split {d.name}: seed {d.seed}, val {d.val_percent:g} %, train_small {d.train_small_percent:g} %"
               if d.kind == "hash" else f"split {d.name}: imported release (tol import-release), "
               f"val {d.val_percent:g} %, train_small {d.train_small_percent:g} % of train",
               f"{'split':<12} {'source':<8} {'kingdom':<20} {'images':>10}"]
        out += [f"{split:<12} {source:<8} {kingdom:<20} {count:>10,}" for split, source, kingdom, count in self.counts]
        out.append(f"val species never in train: {self.val_species_not_in_train} of {self.val_species}")
        return out


def report(engine: Engine, name: str) -> SplitReport:
    """Count the images of definition `name` (present images only) by split, source and kingdom."""
    definition = get(engine, name)
    params = {"d": definition.id}
    with engine.connect() as connection:
        rows = connection.execute(text("""
            SELECT s.split, s.source, COALESCE(NULLIF(t.kingdom, ''), '(unnamed)') AS kingdom, COUNT(*)
            FROM image_splits AS s
            JOIN images AS i ON i.id = s.image_id
            LEFT JOIN taxa AS t ON t.id = i.taxon_id
            WHERE s.split_definition_id = :d AND s.status = 'present'
            GROUP BY s.split, s.source, COALESCE(NULLIF(t.kingdom, ''), '(unnamed)')
            UNION ALL
            SELECT 'train_small', s.source, COALESCE(NULLIF(t.kingdom, ''), '(unnamed)'), COUNT(*)
            FROM image_splits AS s
            JOIN images AS i ON i.id = s.image_id
            LEFT JOIN taxa AS t ON t.id = i.taxon_id
            WHERE s.split_definition_id = :d AND s.status = 'present' AND s.in_train_small = 1
            GROUP BY s.source, COALESCE(NULLIF(t.kingdom, ''), '(unnamed)')
            ORDER BY 1, 2, 3"""), params).all()
        species = connection.execute(text("""
            WITH per_split AS (
                SELECT DISTINCT s.split, t.genus, t.species
                FROM image_splits AS s
                JOIN images AS i ON i.id = s.image_id
                JOIN taxa AS t ON t.id = i.taxon_id
                WHERE s.split_definition_id = :d AND s.status = 'present' AND t.species <> ''
            )
            SELECT COUNT(*),
                   SUM(CASE WHEN NOT EXISTS (
                       SELECT 1 FROM per_split AS tr
                       WHERE tr.split = 'train' AND tr.genus = v.genus AND tr.species = v.species)
                       THEN 1 ELSE 0 END)
            FROM per_split AS v WHERE v.split = 'val'"""), params).one()
    return SplitReport(definition, [tuple(r) for r in rows], int(species[1] or 0), int(species[0] or 0))
