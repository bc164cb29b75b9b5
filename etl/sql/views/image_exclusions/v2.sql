-- Why an image is excluded: one row per (image, matching exclusion entry). An image file is matched by its
-- file name (EOL archive member, iNat21 or BIOSCAN file name); a species by the genus and epithet of the
-- image's resolved taxon, whatever the source.
-- v2 has v1's rows; its species branch finds the excluded species' taxa first (a few hundred rows) and probes
-- them once per image, instead of looking up every image's taxon to compare names (v1: 3.7 s CPU per 1M images
-- on SQLite, 0.2 s in this form). MATERIALIZED keeps both databases from folding it back into v1's plan.
CREATE VIEW image_exclusions AS
WITH excluded_taxa AS MATERIALIZED (
    SELECT t.id AS taxon_id, e.id, e.list_name, e.kind, e.reason, e.entry
    FROM exclusions AS e
    JOIN taxa AS t ON e.kind = 'species' AND t.genus = e.genus AND t.species = e.species
)
SELECT i.id AS image_id, e.id AS exclusion_id, e.list_name, e.kind, e.reason, e.entry
FROM exclusions AS e
JOIN images AS i ON e.kind = 'image' AND i.source = 'eol' AND i.member = e.file_name
UNION ALL
SELECT i.id, e.id, e.list_name, e.kind, e.reason, e.entry
FROM exclusions AS e
JOIN images AS i ON e.kind = 'image' AND i.source = 'inat21' AND i.inat21_filename = e.file_name
UNION ALL
SELECT i.id, e.id, e.list_name, e.kind, e.reason, e.entry
FROM exclusions AS e
JOIN images AS i ON e.kind = 'image' AND i.source = 'bioscan' AND i.bioscan_filename = e.file_name
UNION ALL
SELECT i.id, x.id, x.list_name, x.kind, x.reason, x.entry
FROM excluded_taxa AS x
JOIN images AS i ON i.taxon_id = x.taxon_id
