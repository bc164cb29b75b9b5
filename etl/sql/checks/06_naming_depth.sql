-- Naming depth: per source, the share of images named to species, to genus, to family, and unnamed
SELECT i.source,
       COUNT(*) AS images,
       ROUND(100.0 * SUM(CASE WHEN t.species <> '' THEN 1 ELSE 0 END) / COUNT(*), 1) AS pct_species,
       ROUND(100.0 * SUM(CASE WHEN t.genus <> '' THEN 1 ELSE 0 END) / COUNT(*), 1) AS pct_genus,
       ROUND(100.0 * SUM(CASE WHEN t.family <> '' THEN 1 ELSE 0 END) / COUNT(*), 1) AS pct_family,
       ROUND(100.0 * SUM(CASE WHEN t.id IS NULL THEN 1 ELSE 0 END) / COUNT(*), 1) AS pct_unnamed
FROM images AS i LEFT JOIN taxa AS t ON t.id = i.taxon_id
WHERE i.status = 'present'
GROUP BY i.source
ORDER BY i.source
