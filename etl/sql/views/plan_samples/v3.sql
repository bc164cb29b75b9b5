-- Every planned sample with its shard and its place in the tar, its source identity and its names, in the
-- columns of the published catalog.csv (ranks in display case; `common` is the caption's common name, never
-- empty). `written` is 1 when its shard is done and the image did not fail while the shard was written.
-- `position` is the sample's index in its tar (the count of written samples before it in the shard: what
-- wids' `__index__` within the shard and the line of the DALI `.idx` count); NULL when not written.
-- `planned_position` is its slot in the plan, which differs after an image of the shard failed.
-- v3: the same rows and columns as v2. The failed samples before a sample are counted from `image_errors`
-- (the shard's few errors, each placed by one lookup), not from the shard's members before it: SQLite drove
-- v2's count from those members, which made a 1M-row export quadratic in the shard size (584 µs a row).
-- The unary `+` keeps SQLite from looking the failed member up by its shard alone (a scan of the shard):
-- it finds it by image id. PostgreSQL reads `+x` as `x`.
CREATE VIEW plan_samples AS
SELECT
    p.name AS plan_name,
    p.split,
    sh.shard_index,
    sh.path AS shard_path,
    CASE WHEN sh.state = 'done' AND NOT EXISTS (
        SELECT 1 FROM image_errors AS e WHERE e.shard_id = sh.id AND e.image_id = m.image_id)
        THEN m.position - (
            SELECT COUNT(*) FROM image_errors AS e
            WHERE e.shard_id = sh.id AND (
                SELECT failed.position FROM shard_members AS failed
                WHERE failed.image_id = e.image_id AND +failed.shard_id = e.shard_id) < m.position)
        END AS position,
    m.position AS planned_position,
    CASE WHEN sh.state = 'done' AND NOT EXISTS (
        SELECT 1 FROM image_errors AS e WHERE e.shard_id = sh.id AND e.image_id = m.image_id)
        THEN 1 ELSE 0 END AS written,
    i.id AS treeoflife_id,
    i.source,
    i.eol_content_id,
    i.eol_page_id,
    i.bioscan_part,
    i.bioscan_filename,
    i.inat21_filename,
    i.inat21_cls_name,
    i.inat21_cls_num,
    UPPER(SUBSTR(t.kingdom, 1, 1)) || SUBSTR(t.kingdom, 2) AS kingdom,
    UPPER(SUBSTR(t.phylum, 1, 1)) || SUBSTR(t.phylum, 2) AS phylum,
    UPPER(SUBSTR(t."class", 1, 1)) || SUBSTR(t."class", 2) AS "class",
    UPPER(SUBSTR(t."order", 1, 1)) || SUBSTR(t."order", 2) AS "order",
    UPPER(SUBSTR(t.family, 1, 1)) || SUBSTR(t.family, 2) AS family,
    UPPER(SUBSTR(t.genus, 1, 1)) || SUBSTR(t.genus, 2) AS genus,
    CASE WHEN t.genus = '' THEN UPPER(SUBSTR(t.species, 1, 1)) || SUBSTR(t.species, 2) ELSE t.species END
        AS species,
    COALESCE(NULLIF(t.common_name, ''), NULLIF(t.scientific_name, ''), t.taxonomic_name) AS common
FROM shard_plans AS p
JOIN shards AS sh ON sh.plan_id = p.id
JOIN shard_members AS m ON m.shard_id = sh.id
JOIN images AS i ON i.id = m.image_id
JOIN taxa AS t ON t.id = i.taxon_id
