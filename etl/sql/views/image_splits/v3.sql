-- The split of every image under every split definition.
-- A `hash` definition is a pure function of the definition's seed (turned into `multiplier` and `increment`)
-- and the image's `split_hash`. Integer arithmetic only, and every intermediate below 2^63, so SQLite and
-- PostgreSQL agree to the last image.
--   split_key      = (split_hash * multiplier + increment) mod 2^31
--   val            : split_key <  val_threshold
--   train_small    : val_threshold <= split_key < train_small_threshold  (a subset of train)
-- A `release` definition (`tol import-release`) lists its images: `release_split_members` names each
-- published treeoflife_id's split; images the release does not list are in no split of it. Its `split_key`
-- is the image's split hash (unused by the rule, kept so both kinds have the same columns).
-- v3 adds the image's `split_hash` and `taxon_id`, so a plan reads the split's images from this view alone:
-- joining `images` back by id cost a lookup per image (most of a plan's read at 10M images).
CREATE VIEW image_splits AS
SELECT
    k.split_definition_id,
    k.split_name,
    k.image_id,
    k.source,
    k.status,
    k.split_key,
    CASE WHEN k.split_key < k.val_threshold THEN 'val' ELSE 'train' END AS split,
    CASE WHEN k.split_key >= k.val_threshold AND k.split_key < k.train_small_threshold THEN 1 ELSE 0 END
        AS in_train_small,
    k.split_hash,
    k.taxon_id
FROM (
    SELECT
        d.id AS split_definition_id,
        d.name AS split_name,
        d.val_threshold,
        d.train_small_threshold,
        i.id AS image_id,
        i.source,
        i.status,
        (i.split_hash * d.multiplier + d.increment) % 2147483648 AS split_key,
        i.split_hash,
        i.taxon_id
    FROM split_definitions AS d
    CROSS JOIN images AS i
    WHERE d.kind = 'hash'
) AS k
UNION ALL
SELECT
    d.id AS split_definition_id,
    d.name AS split_name,
    i.id AS image_id,
    i.source,
    i.status,
    i.split_hash AS split_key,
    m.split,
    m.in_train_small,
    i.split_hash,
    i.taxon_id
FROM split_definitions AS d
JOIN release_split_members AS m ON m.split_definition_id = d.id
JOIN images AS i ON i.id = m.treeoflife_id
WHERE d.kind = 'release'
