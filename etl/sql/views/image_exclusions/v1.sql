-- Why an image is excluded: one row per (image, matching exclusion entry). An image file is matched by its
-- file name (EOL archive member, iNat21 or BIOSCAN file name); a species by the genus and epithet of the
-- image's resolved taxon, whatever the source.
CREATE VIEW image_exclusions AS
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
SELECT i.id, e.id, e.list_name, e.kind, e.reason, e.entry
FROM exclusions AS e
JOIN taxa AS t ON e.kind = 'species' AND t.genus = e.genus AND t.species = e.species
JOIN images AS i ON i.taxon_id = t.id
