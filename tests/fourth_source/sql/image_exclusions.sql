-- image_exclusions (etl/sql/views/image_exclusions/v1.sql) with one more branch: an image file of folder_csv
-- is matched by its path, which is its file name (the folder is flat).
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
JOIN images AS i ON e.kind = 'image' AND i.source = 'folder_csv' AND i.path = e.file_name
UNION ALL
SELECT i.id, e.id, e.list_name, e.kind, e.reason, e.entry
FROM exclusions AS e
JOIN taxa AS t ON e.kind = 'species' AND t.genus = e.genus AND t.species = e.species
JOIN images AS i ON i.taxon_id = t.id
