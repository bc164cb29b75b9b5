"""Shard plans: every shard and its samples, decided before a byte is written.

A plan takes the images of one split that are present, named and not excluded, orders them by a seeded
permutation of their split hash (so every shard mixes sources and species), and cuts that order into shards.
Its options and counts are a `shard_plans` row; its shards are queued in the write stage's `ShardQueue`.
A plan never changes: the same name with other options is an error.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, get_args

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from etl import bulk, db, naming
from etl.errors import TolError, unknown_name
from etl.images import CODEC_STACK, RESIZE_MODES, Target
from etl.progress import Progress
from etl.provenance import LICENSE_KEYS
from etl.splits import MODULUS, seeded_permutation
from etl.splits import get as get_split
from etl.write.queue import ShardQueue

Split = Literal["train", "val", "train_small"]
SPLITS: tuple[Split, ...] = get_args(Split)
TXT_FIELDS = tuple(name[: -len(".txt")] for name in naming.CAPTION_FIELDS)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_SAMPLES_PER_SHARD = 10_000
# A loader splits a plan's shards over ranks × workers and stalls or repeats when it has fewer (8 × 8 is common).
DEFAULT_MIN_SHARDS = 64
SHARD_NAME = "shard-{index:06d}.tar"
CAPTION_CASES = ("original", "lower")  # caption members as the release named them, or lower case
PLAN_COLUMNS = ("id, name, split, width, height, resize, quality, txt_field, out_dir, n_shards, n_samples, "
                "n_excluded, n_unnamed, caption_case, codec")


# ============================================================================================== options


def parse_size(text_value: str) -> tuple[int, int]:
    """`224x224` → (224, 224)."""
    match = re.fullmatch(r"(\d+)x(\d+)", text_value.strip())
    if not match or not all(0 < int(v) <= 16384 for v in match.groups()):
        raise TolError(f"--size must look like 224x224 (1 to 16384 pixels each), not {text_value!r}")
    return int(match.group(1)), int(match.group(2))


def parse_bytes(text_value: str) -> int:
    """`3GB`, `500MB`, `3e9`, `1048576` → bytes."""
    match = re.fullmatch(r"\s*([0-9.e+]+)\s*([KMGT]i?B?|B)?\s*", text_value, flags=re.IGNORECASE)
    if not match:
        raise TolError(f"--shard-bytes must be a size such as 3GB or 500MB, not {text_value!r}")
    try:
        number = float(match.group(1))
    except ValueError:
        raise TolError(f"--shard-bytes must be a size such as 3GB or 500MB, not {text_value!r}") from None
    unit = (match.group(2) or "B").upper().rstrip("B").rstrip("I")
    factor = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[unit]
    if "I" in (match.group(2) or "").upper():
        factor = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[unit]
    value = int(number * factor)
    if value <= 0:
        raise TolError(f"--shard-bytes must be positive, not {text_value!r}")
    return value


def estimated_sample_bytes(width: int, height: int, quality: int) -> int:
    """A planning estimate of one sample's bytes in a tar (JPEG + captions + JSON + 13 member headers)."""
    jpeg = width * height * (0.25 + 0.6 * quality / 100)
    return int(jpeg) + 13 * 512 + 4096


@dataclass(frozen=True)
class PlanOptions:
    """Everything a plan is made from."""

    split_name: str
    split: Split
    width: int = 224
    height: int = 224
    resize: str = "center-crop"
    quality: int = 95
    samples_per_shard: int | None = None
    shard_bytes: int | None = None
    txt_field: str = "taxonTag_com"
    out_dir: str = "shards"
    shuffle_seed: int = 0
    caption_case: str = "original"
    min_shards: int = DEFAULT_MIN_SHARDS  # sizing rule when no size is given, and the warning threshold
    licenses: tuple[str, ...] | None = None  # the license keys allowed (`--licenses`); None: any, unknown too

    def check(self) -> None:
        """Refuse options no plan can have, naming the flag at fault."""
        if self.split not in SPLITS:
            raise TolError(f"--split must be one of {', '.join(SPLITS)}, not {self.split!r}")
        if self.resize not in RESIZE_MODES:
            raise TolError(f"--resize must be one of {', '.join(RESIZE_MODES)}, not {self.resize!r}")
        if not 1 <= self.quality <= 100:
            raise TolError(f"--quality must be 1 to 100, not {self.quality}")
        if self.txt_field not in TXT_FIELDS:
            raise TolError(f"--txt-field must be one of {', '.join(TXT_FIELDS)}, not {self.txt_field!r}")
        if self.caption_case not in CAPTION_CASES:
            raise TolError(f"caption case must be one of {', '.join(CAPTION_CASES)}, not {self.caption_case!r}")
        if self.samples_per_shard is not None and self.shard_bytes is not None:
            raise TolError("give --samples-per-shard or --shard-bytes, not both")
        if self.samples_per_shard is not None and self.samples_per_shard < 1:
            raise TolError(f"--samples-per-shard must be at least 1, not {self.samples_per_shard}")
        if self.min_shards < 1:
            raise TolError(f"--min-shards must be at least 1, not {self.min_shards}")
        unknown = [key for key in self.licenses or () if key not in LICENSE_KEYS]
        if unknown or self.licenses == ():
            raise TolError(f"--licenses must name license keys ({', '.join(LICENSE_KEYS)}), not "
                           f"{','.join(unknown) or 'nothing'}")

    def per_shard(self, n_samples: int) -> int:
        """Samples per shard for a plan of `n_samples` (see `shard_size`)."""
        return shard_size(n_samples, samples_per_shard=self.samples_per_shard, shard_bytes=self.shard_bytes,
                          sample_bytes=estimated_sample_bytes(self.width, self.height, self.quality),
                          min_shards=self.min_shards)


def shard_size(n_samples: int, *, samples_per_shard: int | None, shard_bytes: int | None, sample_bytes: int,
               min_shards: int) -> int:
    """Samples per shard: as given; as many as fit `shard_bytes`; or the default, made smaller when the default
    would cut `n_samples` into fewer than `min_shards` shards. A size the user gave is never changed (the
    caller warns instead, `few_shards_warning`), and a plan smaller than `min_shards` samples keeps the default.

    Fitting takes `n_samples // min_shards` (at least 1 as n_samples ≥ min_shards), which gives at least
    `min_shards` and fewer than 2 × `min_shards` shards, all full but the last."""
    if samples_per_shard is not None:
        return samples_per_shard
    if shard_bytes is not None:
        return max(1, shard_bytes // sample_bytes)
    if n_samples >= min_shards:
        return min(DEFAULT_SAMPLES_PER_SHARD, n_samples // min_shards)
    return DEFAULT_SAMPLES_PER_SHARD


def few_shards_warning(name: str, n_samples: int, n_shards: int, min_shards: int) -> str | None:
    """One line when plan `name` has samples enough for `min_shards` shards but fewer shards, else None."""
    if n_samples >= min_shards > n_shards:
        return (f"warning: plan {name} has {n_shards} shards, fewer than --min-shards {min_shards}: a loader "
                f"needs at least ranks x workers shards (plan a new name with a smaller --samples-per-shard)")
    return None


# ============================================================================================== plans


@dataclass
class Plan:
    """A plan row."""

    id: int
    name: str
    split: Split
    width: int
    height: int
    resize: str
    quality: int
    txt_field: str
    out_dir: str
    n_shards: int
    n_samples: int
    n_excluded: int
    n_unnamed: int
    caption_case: str
    codec: str  # the codec stack its JPEGs are made with (etl.images.CODEC_STACK when it was planned)

    @property
    def target(self) -> Target:
        """The image every sample's JPEG is made to."""
        return Target(self.width, self.height, self.resize, self.quality)


class LicenseFilter(NamedTuple):
    """A plan's `--licenses`: the keys it allowed and how many images it left out for their license."""

    licenses: tuple[str, ...]
    n_left_out: int


def license_filter(engine_or_connection: Engine | Connection, plan_id: int) -> LicenseFilter | None:
    """The license filter plan `plan_id` was made with, or None when it took every license."""
    query = text("SELECT licenses, n_left_out FROM plan_license_filters WHERE plan_id = :p")

    def fetch(connection: Connection) -> LicenseFilter | None:
        row = connection.execute(query, {"p": plan_id}).first()
        return None if row is None else LicenseFilter(tuple(row[0].split(",")), int(row[1]))

    if isinstance(engine_or_connection, Engine):
        with engine_or_connection.connect() as connection:
            return fetch(connection)
    return fetch(engine_or_connection)


def get_plan(engine_or_connection: Engine | Connection, name: str) -> Plan:
    """The plan called `name`, or a one-line error listing the known ones."""
    query = text(f"SELECT {PLAN_COLUMNS} FROM shard_plans WHERE name = :n")

    def fetch(connection: Connection) -> Plan:
        row = connection.execute(query, {"n": name}).first()
        if row is None:
            known = connection.execute(text("SELECT name FROM shard_plans ORDER BY name")).scalars()
            raise unknown_name("shard plan", name, known, "see tol shards plan")
        return Plan(*row)

    if isinstance(engine_or_connection, Engine):
        with engine_or_connection.connect() as connection:
            return fetch(connection)
    return fetch(engine_or_connection)


def plan_names(engine: Engine) -> list[str]:
    """Every plan's name, oldest first."""
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT name FROM shard_plans ORDER BY id")).scalars())


def claim_folder(connection: Connection, name: str, out_dir: str) -> None:
    """Refuse an output folder another plan owns or that holds tars no plan owns, then prove it usable (see
    `probe_folder`): a plan is recorded only with a folder it alone will write."""
    owner = connection.execute(text("SELECT name FROM shard_plans WHERE out_dir = :d AND name <> :n"),
                               {"d": out_dir, "n": name}).scalar()
    if owner is not None:
        raise TolError(f"output folder {out_dir} belongs to plan {owner!r}: give plan {name!r} its own --out")
    folder = Path(out_dir)
    tars = sorted(folder.glob("*.tar")) if folder.is_dir() else []
    if tars:
        raise TolError(f"output folder {out_dir} holds {len(tars)} .tar file(s) no plan owns (e.g. {tars[0].name}): "
                       f"give plan {name!r} another --out, or empty the folder")
    probe_folder(folder)


def probe_folder(folder: Path) -> None:
    """Create `folder` and a probe file in it (then remove the probe), or raise a one-line error saying why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".tol-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise TolError(f"output folder {folder} cannot be used: {type(exc).__name__}: "
                       f"{exc.strerror or exc}") from None


# PostgreSQL's statistics of `images` are stale when never taken, or when more than this share of its rows
# changed since (autovacuum's own default threshold is 10 %).
STALE_SHARE = 0.05


def _analyze_images(connection: Connection) -> None:
    """Refresh the statistics of `images` for the plan's queries when they may be stale. SQLite reads every index
    in full unless `analysis_limit` bounds it (an approximate ANALYZE, enough for the plan's choices: a few
    seconds saved per plan at 10M images). PostgreSQL samples a fixed number of rows, still a second or so of
    random reads per plan at 10M, so it analyzes only when the table changed since its last ANALYZE (the
    server's counters, which can lag a running writer by a second: then the planner may choose worse, but the
    plan's members are the same)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA analysis_limit = 1000")
        try:
            connection.exec_driver_sql("ANALYZE images")
        finally:
            connection.exec_driver_sql("PRAGMA analysis_limit = 0")
        return
    stale = connection.execute(text("""
        SELECT (last_analyze IS NULL AND last_autoanalyze IS NULL) OR n_mod_since_analyze > n_live_tup * :share
        FROM pg_stat_user_tables WHERE relid = CAST('images' AS regclass)"""), {"share": STALE_SHARE}).scalar()
    if stale is not False:
        connection.exec_driver_sql("ANALYZE images")


def _eligible_sql(split: Split) -> str:
    condition = {"train": "s.split = 'train'", "val": "s.split = 'val'", "train_small": "s.in_train_small = 1"}[split]
    # The view carries the split hash and the taxon, so the split's images are read once, without a lookup in
    # `images` per image.
    return f"""
        FROM image_splits AS s
        WHERE s.split_definition_id = :definition AND s.status = 'present' AND {condition}"""


PLAN_STEPS = ("exclusions", "counts", "shards", "members")


def create_plan(engine: Engine, name: str, options: PlanOptions, *, progress: bool = False) -> tuple[Plan, bool]:
    """Record plan `name` with its shards and members; (plan, created). Re-creating with the same options is a
    no-op; other options for an existing name are an error (a plan never changes). With `progress`, its steps
    (a few large statements, minutes each at 10M images) are shown on stderr (see etl.progress).

    Two commands planning the same name at once take turns (`etl.db.take_turns`): the second finds the first's
    plan and reports it unchanged, or refuses other options. A catalog away for a while is waited for
    (`etl.db.retrying`); the plan is one transaction, made whole or not at all."""
    if not NAME_PATTERN.match(name):
        raise TolError(f"plan name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    options.check()
    return db.retrying(engine, _create_plan, engine, name, options, progress=progress)


def _create_plan(engine: Engine, name: str, options: PlanOptions, *, progress: bool) -> tuple[Plan, bool]:
    definition = get_split(engine, options.split_name)
    multiplier, increment = seeded_permutation("shuffle", options.shuffle_seed)
    with engine.begin() as connection, Progress(len(PLAN_STEPS), "steps", f"plan {name}",
                                                enabled=progress) as steps:
        db.take_turns(connection, f"plan {name}")
        existing = connection.execute(text(
            "SELECT split_definition_id, split, width, height, resize, quality, samples_per_shard, shard_bytes, "
            "txt_field, out_dir, shuffle_seed, caption_case FROM shard_plans WHERE name = :n"), {"n": name}).first()
        wanted = (definition.id, options.split, options.width, options.height, options.resize, options.quality,
                  options.samples_per_shard, options.shard_bytes, options.txt_field, options.out_dir,
                  options.shuffle_seed, options.caption_case)
        if existing is not None:
            plan_id = connection.execute(text("SELECT id FROM shard_plans WHERE name = :n"), {"n": name}).scalar_one()
            allowed = license_filter(connection, plan_id)
            if tuple(existing) == wanted and (allowed.licenses if allowed else None) == options.licenses:
                return get_plan(connection, name), False
            raise TolError(f"plan {name!r} already exists with other options; a plan never changes, use a new name")
        claim_folder(connection, name, options.out_dir)
        params = {"definition": definition.id}
        eligible = _eligible_sql(options.split)
        # Naming and ingest rewrote `images`: with stale statistics the planner expects one named image.
        _analyze_images(connection)
        # The excluded images, once: probing the exclusion view per image would evaluate it per image.
        bulk.create_temp_table(connection, "plan_excluded", [("image_id", bulk.ID_TYPE)])
        connection.exec_driver_sql(
            "INSERT INTO plan_excluded (image_id) SELECT DISTINCT image_id FROM image_exclusions")
        connection.exec_driver_sql("CREATE UNIQUE INDEX ix_plan_excluded ON plan_excluded (image_id)")
        n_license = 0
        if options.licenses is not None:
            # Named images of the split whose license is not allowed (or not known) are left out like exclusions
            # (the keys were checked against LICENSE_KEYS, so they are literals safely).
            allowed_keys = ", ".join(f"'{key}'" for key in options.licenses)
            n_license = connection.execute(text(f"""
                INSERT INTO plan_excluded (image_id)
                SELECT s.image_id {eligible}
                  AND s.taxon_id IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM plan_excluded AS x WHERE x.image_id = s.image_id)
                  AND NOT EXISTS (SELECT 1 FROM image_licenses AS l
                                  WHERE l.image_id = s.image_id AND l.license_key IN ({allowed_keys}))"""),
                params).rowcount
        connection.exec_driver_sql("ANALYZE plan_excluded")
        steps.advance()
        # One pass over the split's images into a narrow staging table (temporary: unlogged on PostgreSQL):
        # the counts and the ranking below read it, not the images and the split view again.
        bulk.create_temp_table(connection, "plan_eligible", [
            ("image_id", bulk.ID_TYPE), ("shuffle_key", "BIGINT"), ("named", "INTEGER"), ("excluded", "INTEGER")])
        connection.execute(text(f"""
            INSERT INTO plan_eligible (image_id, shuffle_key, named, excluded)
            SELECT s.image_id, (s.split_hash * :m + :c) % {MODULUS},
                   CASE WHEN s.taxon_id IS NULL THEN 0 ELSE 1 END,
                   CASE WHEN EXISTS (SELECT 1 FROM plan_excluded AS x WHERE x.image_id = s.image_id) THEN 1 ELSE 0 END
            {eligible}"""), {**params, "m": multiplier, "c": increment})
        counts = connection.execute(text(
            "SELECT SUM(1 - named), SUM(named * excluded), SUM(named * (1 - excluded)) FROM plan_eligible")).one()
        n_unnamed, n_excluded, n_samples = (int(v or 0) for v in counts)
        n_excluded -= n_license  # `n_excluded` counts the exclusion lists; the license filter has its own count
        per_shard = options.per_shard(n_samples)
        n_shards = math.ceil(n_samples / per_shard)
        plan_id = connection.execute(text("""
            INSERT INTO shard_plans (name, split_definition_id, split, width, height, resize, quality,
                samples_per_shard, shard_bytes, txt_field, out_dir, shuffle_seed, n_shards, n_samples, n_excluded,
                n_unnamed, caption_case, codec)
            VALUES (:name, :definition, :split, :width, :height, :resize, :quality, :samples_per_shard,
                :shard_bytes, :txt_field, :out_dir, :shuffle_seed, :n_shards, :n_samples, :n_excluded, :n_unnamed,
                :caption_case, :codec)
            RETURNING id"""), {
            "name": name, "definition": definition.id, "split": options.split, "width": options.width,
            "height": options.height, "resize": options.resize, "quality": options.quality,
            "samples_per_shard": options.samples_per_shard, "shard_bytes": options.shard_bytes,
            "txt_field": options.txt_field, "out_dir": options.out_dir, "shuffle_seed": options.shuffle_seed,
            "n_shards": n_shards, "n_samples": n_samples, "n_excluded": n_excluded, "n_unnamed": n_unnamed,
            "caption_case": options.caption_case, "codec": CODEC_STACK,
        }).scalar_one()
        if options.licenses is not None:
            connection.execute(text("INSERT INTO plan_license_filters (plan_id, licenses, n_left_out) "
                                    "VALUES (:p, :l, :n)"), {"p": plan_id, "l": ",".join(options.licenses),
                                                             "n": n_license})
        steps.advance()
        if n_shards:
            queue = ShardQueue(connection)
            queue.add_shards(plan_id, [SHARD_NAME.format(index=index) for index in range(n_shards)],
                             [min(per_shard, n_samples - index * per_shard) for index in range(n_shards)])
            steps.advance()
            # Ties of the 31-bit shuffle key are broken by id, compared byte-wise on both databases.
            ranked = """
                SELECT image_id, ROW_NUMBER() OVER (ORDER BY shuffle_key, image_id) AS n
                FROM plan_eligible WHERE named = 1 AND excluded = 0"""
            queue.add_members(plan_id, per_shard, ranked, {})
            if connection.dialect.name == "postgresql":
                # Fresh statistics (a sample: cheap), or the export's planner expects a few dozen members.
                connection.exec_driver_sql("ANALYZE shard_members")
            steps.advance()
        return get_plan(connection, name), True
