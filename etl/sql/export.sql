-- Named queries of etl/export.py (loaded with etl.resources.named_queries).

-- name: licenses
-- licenses.csv: one row per written sample of a plan with the release's columns (§6.5 of the sources spec),
-- for every source (EOL ids empty for the others).
SELECT ps.treeoflife_id, ps.eol_content_id, ps.eol_page_id, l.md5, l.source_url AS medium_source_url,
       l.copy_url AS eol_full_size_copy_url, l.license_name, l.rights_holder AS copyright_owner, l.license_link,
       l.title
FROM plan_samples AS ps
JOIN image_licenses AS l ON l.image_id = ps.treeoflife_id
WHERE ps.plan_name = :plan AND ps.written = 1
ORDER BY ps.shard_index, ps.position
