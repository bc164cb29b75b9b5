"""A plan's members, position by position, against an expectation computed here from the catalog's raw rows.

The expectation is written independently of `etl.plan`: the split rule and the shuffle are re-derived from their
documented arithmetic (`(hash * multiplier + increment) mod 2^31`, the shuffle's permutation drawn from a SHA-256
of its seed), the order breaks ties of the key by image id compared byte-wise, and the order is cut into shards
of `samples_per_shard`. The same catalog planned on SQLite and on PostgreSQL must give the same members.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl.plan import PlanOptions, create_plan
from etl.write.queue import ShardQueue

MOD = 2**31


class Member(NamedTuple):
    """One planned sample: shard index, position in the shard, image id."""

    shard_index: int
    position: int
    image_id: str


class Expected(NamedTuple):
    """What a plan must hold."""

    members: list[Member]
    n_samples: int
    n_excluded: int
    n_unnamed: int
    n_left_out: int


def shuffle_permutation(seed: int) -> tuple[int, int]:
    """The shuffle's (multiplier, increment), as the module docstring of etl.splits states it."""
    digest = hashlib.sha256(f"treeoflife-etl shuffle seed {seed}".encode()).digest()
    return (int.from_bytes(digest[:4], "big") % MOD) | 1, int.from_bytes(digest[4:8], "big") % MOD


def expected_plan(engine: Engine, split: str, per_shard: int, seed: int,
                  licenses: tuple[str, ...] | None = None) -> Expected:
    """The plan of `split` of definition `main`, from the images, the exclusions and the licenses as rows."""
    with engine.connect() as connection:
        multiplier, increment, val_at, small_at = connection.execute(text(
            "SELECT multiplier, increment, val_threshold, train_small_threshold FROM split_definitions "
            "WHERE name = 'main'")).one()
        images = connection.execute(text("SELECT id, split_hash, status, taxon_id FROM images")).all()
        excluded = set(connection.execute(text("SELECT image_id FROM image_exclusions")).scalars())
        licensed: dict[str, set[str]] = {}
        for image_id, key in connection.execute(text("SELECT image_id, license_key FROM image_licenses")):
            licensed.setdefault(image_id, set()).add(key)
    chosen = []
    n_unnamed = n_excluded = n_left_out = 0
    shuffle_m, shuffle_c = shuffle_permutation(seed)
    for image_id, split_hash, status, taxon_id in images:
        key = (split_hash * multiplier + increment) % MOD
        in_split = {"val": key < val_at, "train": key >= val_at, "train_small": val_at <= key < small_at}[split]
        if not in_split or status != "present":
            continue
        if taxon_id is None:
            n_unnamed += 1
        elif image_id in excluded:
            n_excluded += 1
        elif licenses is not None and not licensed.get(image_id, set()) & set(licenses):
            n_left_out += 1
        else:
            chosen.append(((split_hash * shuffle_m + shuffle_c) % MOD, image_id.encode(), image_id))
    chosen.sort()
    members = [Member(n // per_shard, n % per_shard, image_id) for n, (_, _, image_id) in enumerate(chosen)]
    return Expected(members, len(members), n_excluded, n_unnamed, n_left_out)


def planned_members(engine: Engine, name: str) -> list[Member]:
    """The members of plan `name` in shard and position order."""
    with engine.connect() as connection:
        return [Member(*row) for row in connection.execute(text("""
            SELECT sh.shard_index, m.position, m.image_id
            FROM shard_members AS m JOIN shards AS sh ON sh.id = m.shard_id
            JOIN shard_plans AS p ON p.id = sh.plan_id
            WHERE p.name = :n ORDER BY sh.shard_index, m.position"""), {"n": name})]


def planned_shards(engine: Engine, name: str) -> list[tuple[int, str, int]]:
    """(shard index, path, planned samples) of plan `name`."""
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text("""
            SELECT sh.shard_index, sh.path, sh.n_planned FROM shards AS sh JOIN shard_plans AS p ON p.id = sh.plan_id
            WHERE p.name = :n ORDER BY sh.shard_index"""), {"n": name})]


CASES = [  # (split, samples per shard, shuffle seed, licenses)
    ("train", 37, 0, None),
    ("val", 5, 3, None),
    ("train_small", 1, 0, None),
    ("train", 1000, 11, None),  # one shard, not full
    ("train", 23, 5, ("cc-by", "cc0")),
]


def test_members_are_the_expected_ones(prepared_url, engine_of, tmp_path: Path):
    engine = engine_of(prepared_url)
    with engine.begin() as connection:  # licenses for some images: a third cc-by, a third cc-by-nc, the rest none
        ids = list(connection.execute(text("SELECT id, source FROM images ORDER BY split_hash")))
        connection.execute(text("INSERT INTO image_provenance (image_id, source, license_key) VALUES (:i, :s, :k)"),
                           [{"i": image_id, "s": source, "k": ("cc-by", "cc-by-nc")[n % 3]}
                            for n, (image_id, source) in enumerate(ids) if n % 3 < 2])
    # Every case in one catalog: each plan is added beside the others' members, as in a real catalog.
    for number, (split, per_shard, seed, licenses) in enumerate(CASES):
        name = f"p{number}"
        plan, created = create_plan(engine, name, PlanOptions(
            split_name="main", split=split, samples_per_shard=per_shard, shuffle_seed=seed,
            out_dir=str(tmp_path / name), licenses=licenses))
        assert created
        expected = expected_plan(engine, split, per_shard, seed, licenses)
        assert expected.n_samples > 0
        assert planned_members(engine, name) == expected.members
        assert (plan.n_samples, plan.n_excluded, plan.n_unnamed) == (
            expected.n_samples, expected.n_excluded, expected.n_unnamed)
        n_shards = -(-expected.n_samples // per_shard)
        assert plan.n_shards == n_shards
        assert planned_shards(engine, name) == [
            (index, f"shard-{index:06d}.tar", min(per_shard, expected.n_samples - index * per_shard))
            for index in range(n_shards)]
        if licenses is not None:
            with engine.connect() as connection:
                assert connection.execute(text("SELECT n_left_out FROM plan_license_filters WHERE plan_id = :p"),
                                          {"p": plan.id}).scalar_one() == expected.n_left_out
    # Earlier plans are untouched by later ones.
    split, per_shard, seed, licenses = CASES[0]
    assert planned_members(engine, "p0") == expected_plan(engine, split, per_shard, seed, licenses).members


def test_sqlite_and_postgresql_plan_alike(prepared_sqlite_url, pg_catalog, engine_of, tmp_path: Path):
    _, pg_engine = pg_catalog
    sqlite_engine = engine_of(prepared_sqlite_url)
    for split in ("train", "val", "train_small"):
        members = []
        for label, engine in (("sqlite", sqlite_engine), ("postgresql", pg_engine)):
            create_plan(engine, f"same-{split}", PlanOptions(split_name="main", split=split, samples_per_shard=29,
                                                            out_dir=str(tmp_path / label / split)))
            members.append(planned_members(engine, f"same-{split}"))
        assert members[0] == members[1]
        assert len(members[0]) > 0


@pytest.mark.parametrize("gap", [False, True])
def test_shard_ids_other_writers_took_do_not_move_members(prepared_url, engine_of, tmp_path: Path, gap: bool):
    """A plan whose shards' ids are not consecutive (another plan's shards deleted between, or ids taken by
    others) still places each member in its shard."""
    engine = engine_of(prepared_url)
    create_plan(engine, "first", PlanOptions(split_name="main", split="val", samples_per_shard=3,
                                             out_dir=str(tmp_path / "first")))
    if gap:
        with engine.begin() as connection:  # delete every other shard of the first plan: holes in the ids
            connection.execute(text("DELETE FROM shard_members WHERE shard_id IN "
                                    "(SELECT id FROM shards WHERE shard_index % 2 = 1)"))
            connection.execute(text("DELETE FROM shards WHERE shard_index % 2 = 1"))
    create_plan(engine, "second", PlanOptions(split_name="main", split="train", samples_per_shard=31,
                                              out_dir=str(tmp_path / "second")))
    assert planned_members(engine, "second") == expected_plan(engine, "train", 31, 0).members


MEMBERS_WITHOUT_SHARD = """
    SELECT COUNT(*) FROM shard_members AS m WHERE NOT EXISTS (SELECT 1 FROM shards AS sh WHERE sh.id = m.shard_id)"""


def test_members_only_name_shards_of_their_plan(prepared_url, engine_of):
    """shard_members.shard_id is not a foreign key (migration 0017): the queue's API alone must keep every member
    on an existing shard. Members asked for a plan with no shards, or beyond its last shard, are not made."""
    engine = engine_of(prepared_url)
    with engine.begin() as connection:
        n_images = connection.execute(text("SELECT COUNT(*) FROM images")).scalar_one()
        plans = [connection.execute(text(
            "INSERT INTO shard_plans (name, split_definition_id, split, width, height, resize, quality, txt_field, "
            "out_dir, shuffle_seed) SELECT :n, id, 'train', 8, 8, 'center-crop', 90, 'taxonTag_com', :d, 0 "
            "FROM split_definitions WHERE name = 'main' RETURNING id"), {"n": name, "d": name}).scalar_one()
            for name in ("with-shards", "without-shards")]
        queue = ShardQueue(connection)
        queue.add_shards(plans[0], ["a.tar", "b.tar"], [3, 3])
        ranked = "SELECT id AS image_id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM images"
        queue.add_members(plans[0], 3, ranked, {})  # every image ranked: only the first 6 have a shard
        queue.add_members(plans[1], 3, ranked, {})
    assert n_images > 6
    with engine.connect() as connection:
        assert connection.execute(text(MEMBERS_WITHOUT_SHARD)).scalar_one() == 0
        rows = connection.execute(text(
            "SELECT sh.plan_id, sh.shard_index, m.position FROM shard_members AS m JOIN shards AS sh "
            "ON sh.id = m.shard_id ORDER BY sh.shard_index, m.position")).all()
    assert [tuple(row) for row in rows] == [(plans[0], index, position)
                                            for index in range(2) for position in range(3)]


def test_members_go_with_their_shard(prepared_url, engine_of, tmp_path: Path):
    """Deleting a shard (or its plan, whose shards go by ON DELETE CASCADE) deletes its members, as the foreign
    key's ON DELETE CASCADE did before migration 0017, and leaves other shards' members alone."""
    engine = engine_of(prepared_url)
    for name in ("kept", "gone"):
        create_plan(engine, name, PlanOptions(split_name="main", split="train", samples_per_shard=4,
                                              out_dir=str(tmp_path / name)))
    kept = planned_members(engine, "kept")
    gone = planned_members(engine, "gone")
    assert len(gone) > 4
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM shards WHERE shard_index = 0 AND plan_id = "
                                "(SELECT id FROM shard_plans WHERE name = 'gone')"))
    assert planned_members(engine, "gone") == [member for member in gone if member.shard_index != 0]
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM shard_plans WHERE name = 'gone'"))
    with engine.connect() as connection:
        assert connection.execute(text(MEMBERS_WITHOUT_SHARD)).scalar_one() == 0
        assert connection.execute(text("SELECT COUNT(*) FROM shard_members")).scalar_one() == len(kept)
    assert planned_members(engine, "kept") == kept


def test_postgresql_analyzes_images_only_when_they_changed(pg_catalog, tmp_path: Path):
    """A plan refreshes the statistics of `images` when rows changed since the last ANALYZE, not otherwise."""
    _, engine = pg_catalog

    def analyzed_at() -> object:
        with engine.connect() as connection:
            return connection.execute(text(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'images'")).scalar_one()

    def plan(name: str) -> None:
        create_plan(engine, name, PlanOptions(split_name="main", split="train", samples_per_shard=10,
                                              out_dir=str(tmp_path / name)))

    plan("first")
    first = analyzed_at()
    assert first is not None
    plan("second")  # nothing changed since
    assert analyzed_at() == first
    with engine.begin() as connection:  # every image's row changes
        connection.execute(text("UPDATE images SET byte_size = byte_size"))
        # The session reports its changes to the server's counters before it answers the commit, not a second
        # later (PostgreSQL 15).
        connection.execute(text("SELECT pg_stat_force_next_flush()"))
    plan("third")
    assert analyzed_at() != first


def view_query(name: str, version: int) -> str:
    """The SELECT of version `version` of view `name` as shipped (its CREATE VIEW ... AS stripped)."""
    sql = (Path(__file__).resolve().parent.parent / "etl" / "sql" / "views" / name / f"v{version}.sql").read_text()
    return sql.split(f"CREATE VIEW {name} AS", 1)[1]


def test_read_views_keep_the_rows_of_their_previous_versions(prepared_url, engine_of):
    """image_exclusions v2 and image_splits v3 (the forms a plan reads fast) give their previous versions' rows."""
    engine = engine_of(prepared_url)
    with engine.connect() as connection:
        old = sorted(connection.execute(text(f"SELECT * FROM ({view_query('image_exclusions', 1)}) AS v")).all())
        new = sorted(connection.execute(text("SELECT * FROM image_exclusions")).all())
        assert new == old
        assert {row.kind for row in new} == {"image", "species"}  # both branches have rows to compare
        old = sorted(connection.execute(text(f"SELECT * FROM ({view_query('image_splits', 2)}) AS v")).all())
        new = connection.execute(text("SELECT * FROM image_splits")).all()
        assert sorted(tuple(row)[:-2] for row in new) == old
        images = {image_id: (split_hash, taxon_id) for image_id, split_hash, taxon_id in connection.execute(
            text("SELECT id, split_hash, taxon_id FROM images"))}
        assert all((row.split_hash, row.taxon_id) == images[row.image_id] for row in new)
        assert len(new) > 0
