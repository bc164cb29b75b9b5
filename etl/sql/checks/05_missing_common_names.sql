-- Missing common names: named taxa with no common name (captions fall back to the scientific name), by images
SELECT t.id, t.scientific_name, COUNT(i.id) AS images
FROM taxa AS t JOIN images AS i ON i.taxon_id = t.id AND i.status = 'present'
WHERE t.common_name = '' AND t.scientific_name <> ''
GROUP BY t.id, t.scientific_name
ORDER BY images DESC, t.scientific_name
