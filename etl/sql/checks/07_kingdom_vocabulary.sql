-- Kingdom vocabulary: taxa whose kingdom is not one of etl/data/kingdoms.json (NCBI's `Metazoa`, virus realms …)
-- gate
SELECT t.id, t.kingdom, t.taxonomic_name
FROM taxa AS t
WHERE t.kingdom <> '' AND t.kingdom NOT IN (SELECT name FROM check_kingdoms)
ORDER BY t.kingdom, t.taxonomic_name
