-- Kingdoms: every kingdom name in use, with its number of taxa and images (resolver providers leak their own)
SELECT t.kingdom, COUNT(DISTINCT t.id) AS taxa, COUNT(i.id) AS images
FROM taxa AS t LEFT JOIN images AS i ON i.taxon_id = t.id AND i.status = 'present'
GROUP BY t.kingdom
ORDER BY images DESC, t.kingdom
