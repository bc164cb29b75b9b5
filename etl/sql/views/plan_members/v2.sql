-- Every planned sample's place: its plan, shard and slot, and its place in the tar once written; the rows of
-- `plan_samples` without the image's identity and names (it joins `images` and `taxon_names` to this), so an
-- export can read the places and the images without the names. Only plan tables are named here: a migration
-- that rebuilds `images` (SQLite batch mode) need not drop this view.
-- `written` is 1 when its shard is done and the image did not fail while the shard was written. `position` is
-- the sample's index in its tar (the count of written samples before it in the shard: what wids' `__index__`
-- within the shard and the line of the DALI `.idx` count); NULL when not written. `planned_position` is its
-- slot in the plan, which differs after an image of the shard failed.
-- The failed samples before a sample are counted from `image_errors` (the shard's few errors), and only in a
-- shard that has errors (`errors`, per shard): a shard without any (nearly all) costs no lookup per sample.
-- v2 has v1's rows and columns. It finds and counts the failed samples by the slot each error records
-- (`image_errors.planned_position`, migration 0020, which every error of a shard has), where v1 looked each
-- failed image up in `shard_members` by its image id: that lookup was the last reader of the index on
-- `shard_members.image_id`, whose upkeep was half of a plan's member insert.
CREATE VIEW plan_members AS
SELECT
    p.id AS plan_id,
    p.name AS plan_name,
    p.split,
    sh.shard_index,
    sh.path AS shard_path,
    CASE WHEN sh.state <> 'done' THEN NULL
         WHEN errors.n IS NULL THEN m.position
         WHEN EXISTS (SELECT 1 FROM image_errors AS e WHERE e.shard_id = sh.id AND e.planned_position = m.position)
             THEN NULL
         ELSE m.position - (
             SELECT COUNT(*) FROM image_errors AS e
             WHERE e.shard_id = sh.id AND e.planned_position < m.position)
        END AS position,
    m.position AS planned_position,
    CASE WHEN sh.state <> 'done' THEN 0
         WHEN errors.n IS NULL THEN 1
         WHEN EXISTS (SELECT 1 FROM image_errors AS e WHERE e.shard_id = sh.id AND e.planned_position = m.position)
             THEN 0
         ELSE 1 END AS written,
    m.image_id
FROM shard_plans AS p
JOIN shards AS sh ON sh.plan_id = p.id
LEFT JOIN (SELECT shard_id, COUNT(*) AS n FROM image_errors GROUP BY shard_id) AS errors
    ON errors.shard_id = sh.id
JOIN shard_members AS m ON m.shard_id = sh.id
