-- Every number of `tol report` and of the dataset card (etl/report/), as named queries. :plan is the plan's
-- name, :definition its split definition's id. "Written" samples are those in a done shard that did not fail.

-- name: written_by_source
-- The plan's written samples per source: the card's counts (they equal `tol status` and the exported catalog).
SELECT source, COUNT(*) AS samples
FROM plan_samples WHERE plan_name = :plan AND written = 1
GROUP BY source ORDER BY source

-- name: written_by_split_and_source
-- Written samples per split and source, over every plan drawn from the same split definition.
SELECT ps.split, ps.source, COUNT(*) AS samples
FROM plan_samples AS ps
JOIN shard_plans AS p ON p.name = ps.plan_name
WHERE p.split_definition_id = :definition AND ps.written = 1
GROUP BY ps.split, ps.source ORDER BY ps.split, ps.source

-- name: catalog_by_split_and_source
-- Present images of the catalog per split and source under the plan's split definition (before names,
-- exclusions and licenses are applied); train_small is part of train.
SELECT s.source, s.split, COUNT(*) AS images, SUM(s.in_train_small) AS train_small
FROM image_splits AS s
WHERE s.split_definition_id = :definition AND s.status = 'present'
GROUP BY s.source, s.split ORDER BY s.source, s.split

-- name: taxa_per_rank
-- Unique taxa per rank and source among the written samples (a taxon at a rank is its path from the kingdom,
-- counted when that rank is filled); `source` is NULL for all sources together.
SELECT source,
       COUNT(DISTINCT CASE WHEN kingdom <> '' THEN kingdom END) AS kingdom,
       COUNT(DISTINCT CASE WHEN phylum <> '' THEN kingdom || '|' || phylum END) AS phylum,
       COUNT(DISTINCT CASE WHEN "class" <> '' THEN kingdom || '|' || phylum || '|' || "class" END) AS "class",
       COUNT(DISTINCT CASE WHEN "order" <> '' THEN kingdom || '|' || phylum || '|' || "class" || '|' || "order"
                      END) AS "order",
       COUNT(DISTINCT CASE WHEN family <> '' THEN kingdom || '|' || phylum || '|' || "class" || '|' || "order"
                      || '|' || family END) AS family,
       COUNT(DISTINCT CASE WHEN genus <> '' THEN kingdom || '|' || phylum || '|' || "class" || '|' || "order"
                      || '|' || family || '|' || genus END) AS genus,
       COUNT(DISTINCT CASE WHEN species <> '' THEN kingdom || '|' || phylum || '|' || "class" || '|' || "order"
                      || '|' || family || '|' || genus || '|' || species END) AS species
FROM plan_samples WHERE plan_name = :plan AND written = 1
GROUP BY source
UNION ALL
SELECT NULL,
       COUNT(DISTINCT CASE WHEN kingdom <> '' THEN kingdom END),
       COUNT(DISTINCT CASE WHEN phylum <> '' THEN kingdom || '|' || phylum END),
       COUNT(DISTINCT CASE WHEN "class" <> '' THEN kingdom || '|' || phylum || '|' || "class" END),
       COUNT(DISTINCT CASE WHEN "order" <> '' THEN kingdom || '|' || phylum || '|' || "class" || '|' || "order"
                      END),
       COUNT(DISTINCT CASE WHEN family <> '' THEN kingdom || '|' || phylum || '|' || "class" || '|' || "order"
                      || '|' || family END),
       COUNT(DISTINCT CASE WHEN genus <> '' THEN kingdom || '|' || phylum || '|' || "class" || '|' || "order"
                      || '|' || family || '|' || genus END),
       COUNT(DISTINCT CASE WHEN species <> '' THEN kingdom || '|' || phylum || '|' || "class" || '|' || "order"
                      || '|' || family || '|' || genus || '|' || species END)
FROM plan_samples WHERE plan_name = :plan AND written = 1

-- name: treemap
-- Written samples per kingdom → family path (the treemap's leaves).
SELECT kingdom, phylum, "class", "order", family, COUNT(*) AS samples
FROM plan_samples WHERE plan_name = :plan AND written = 1
GROUP BY kingdom, phylum, "class", "order", family
ORDER BY kingdom, phylum, "class", "order", family

-- name: species_sizes
-- The long tail: how many species have n written samples, for every n.
SELECT n, COUNT(*) AS species
FROM (SELECT COUNT(*) AS n FROM plan_samples
      WHERE plan_name = :plan AND written = 1 AND species <> ''
      GROUP BY kingdom, phylum, "class", "order", family, genus, species) AS per_species
GROUP BY n ORDER BY n

-- name: exclusions_by_reason
-- Present images matched by an exclusion list, per list and reason (whatever the split).
SELECT x.list_name, x.reason, COUNT(DISTINCT x.image_id) AS images
FROM image_exclusions AS x
JOIN images AS i ON i.id = x.image_id
WHERE i.status = 'present'
GROUP BY x.list_name, x.reason ORDER BY x.list_name, x.reason

-- name: unnamed_by_reason
-- Present images without a taxon, per source and reason.
SELECT source, COALESCE(unnamed_reason, 'not resolved yet') AS reason, COUNT(*) AS images
FROM images WHERE status = 'present' AND taxon_id IS NULL
GROUP BY source, COALESCE(unnamed_reason, 'not resolved yet') ORDER BY source, reason

-- name: image_errors_by_reason
-- The plan's images that could not be written (the errors its shards recorded), per stage and reason (its first
-- 80 characters). Found through the plan's shards: `shard_members` has no index on image_id (migration 0020).
SELECT e.stage, SUBSTR(e.reason, 1, 80) AS reason, COUNT(*) AS images
FROM image_errors AS e
JOIN shards AS sh ON sh.id = e.shard_id
JOIN shard_plans AS p ON p.id = sh.plan_id
WHERE p.name = :plan
GROUP BY e.stage, SUBSTR(e.reason, 1, 80) ORDER BY images DESC, reason

-- name: plan_left_out
-- What the plan left out: images of its split excluded by a list, unnamed, or (with --licenses) by license.
SELECT p.n_excluded, p.n_unnamed, COALESCE(f.n_left_out, 0) AS n_license, f.licenses
FROM shard_plans AS p
LEFT JOIN plan_license_filters AS f ON f.plan_id = p.id
WHERE p.name = :plan

-- name: license_mix
-- Written samples per source and license key ('unknown' when none is known).
SELECT ps.source, COALESCE(l.license_key, 'unknown') AS license, COUNT(*) AS samples
FROM plan_samples AS ps
JOIN image_licenses AS l ON l.image_id = ps.treeoflife_id
WHERE ps.plan_name = :plan AND ps.written = 1
GROUP BY ps.source, COALESCE(l.license_key, 'unknown') ORDER BY ps.source, license

-- name: sources
-- The collections the plan's samples come from, with their titles, citations and dataset-level licenses.
SELECT s.name, COALESCE(sp.title, s.title) AS title, COALESCE(sp.citation, '') AS citation,
       sp.license_name, sp.rights_holder
FROM sources AS s
LEFT JOIN source_provenance AS sp ON sp.source = s.name
WHERE EXISTS (SELECT 1 FROM plan_samples AS ps WHERE ps.plan_name = :plan AND ps.written = 1
              AND ps.source = s.name)
ORDER BY s.name

-- name: split_definition
-- The plan's split definition.
SELECT d.id, d.name, d.seed, d.val_percent, d.train_small_percent
FROM shard_plans AS p JOIN split_definitions AS d ON d.id = p.split_definition_id
WHERE p.name = :plan

-- name: plan_settings
-- Every option the plan was made with.
SELECT split, width, height, resize, quality, samples_per_shard, shard_bytes, txt_field, caption_case,
       shuffle_seed, n_shards
FROM shard_plans WHERE name = :plan

-- name: input_files
-- The reference and provenance files the catalog was built from, with their checksums.
SELECT name, path, sha256, n_rows FROM ref_resources
UNION ALL
SELECT 'provenance ' || source, file, file_sha256, n_records FROM source_provenance WHERE file IS NOT NULL
ORDER BY 1
