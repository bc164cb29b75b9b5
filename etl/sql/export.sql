-- Named queries of etl/export.py (loaded with etl.resources.named_queries). `:plan` (a plan's id), `:first` and
-- `:last` (shard indexes) are integers the export writes into the text.

-- name: members
-- The written samples of the plan: their shard, their place in the tar (`position`, NULL exactly when not
-- written) and their slot in the plan (the tar's order), and their image. In any order: the export sorts them
-- (SQLite gives them in key order). The plan is named through a subquery, not its id as a constant: the
-- constant would leave the join of `shard_plans` to `shards` without a clause, a nested loop, which the
-- PostgreSQL export turns off.
SELECT pm.shard_index, pm.position, pm.planned_position, pm.image_id
FROM plan_members AS pm
WHERE pm.plan_name = (SELECT name FROM shard_plans WHERE id = :plan) AND pm.position IS NOT NULL

-- name: images
-- The identity of every image with a taxon (a sample whose image has none is not in `plan_samples`), in any
-- order: one scan, which the export joins to the members by image id.
SELECT id AS treeoflife_id, eol_content_id, eol_page_id, bioscan_part, bioscan_filename, inat21_filename,
       inat21_cls_name, inat21_cls_num, taxon_id
FROM images
WHERE taxon_id IS NOT NULL

-- name: names
-- Every taxon's names as a sample shows them.
SELECT taxon_id, kingdom, phylum, "class", "order", family, genus, species, common FROM taxon_names

-- name: shards
-- The plan's shards: their paths, and how many samples each was planned with (to split the reading).
SELECT shard_index, path, n_planned FROM shards WHERE plan_id = :plan ORDER BY shard_index

-- name: licenses
-- licenses.csv: one row per written sample of a plan with the release's columns (§6.5 of the sources spec),
-- for every source (EOL ids empty for the others): the samples of `plan_samples` (the inner join with
-- `taxon_names` leaves out, as there, a sample whose image has no taxon any more), read as `samples` is.
SELECT i.id AS treeoflife_id, i.eol_content_id, i.eol_page_id, l.md5, l.source_url AS medium_source_url,
       l.copy_url AS eol_full_size_copy_url, l.license_name, l.rights_holder AS copyright_owner, l.license_link,
       l.title
FROM plan_members AS pm
JOIN images AS i ON i.id = pm.image_id
JOIN taxon_names AS n ON n.taxon_id = i.taxon_id
JOIN image_licenses AS l ON l.image_id = i.id
WHERE pm.plan_name = (SELECT name FROM shard_plans WHERE id = :plan) AND pm.position IS NOT NULL
    AND pm.shard_index BETWEEN :first AND :last
ORDER BY pm.shard_index, pm.planned_position
