-- Named queries of etl/provenance.py (loaded with etl.resources.named_queries).

-- name: license_counts
-- A source's present images by why their license is unknown (NULL: it is known).
SELECT unknown_reason, COUNT(*) FROM image_licenses
WHERE source = :source AND status = 'present'
GROUP BY unknown_reason

-- name: unknown_images
-- The present images whose license is not known, with the file they come from and why.
SELECT l.image_id, l.source, COALESCE(i.member, i.path) AS file, l.unknown_reason
FROM image_licenses AS l
JOIN images AS i ON i.id = l.image_id
WHERE l.license_key IS NULL AND l.status = 'present'
  AND (CAST(:source AS VARCHAR(16)) IS NULL OR l.source = :source)
ORDER BY l.source, l.image_id
