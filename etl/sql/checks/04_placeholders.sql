-- Placeholders: taxa with a placeholder of etl/data/placeholders.txt in any slot (`not provided`, `sp.`, …)
-- gate
SELECT t.id, t.taxonomic_name
FROM taxa AS t
WHERE EXISTS (SELECT 1 FROM check_placeholder_patterns AS p
              WHERE t.kingdom LIKE p.pattern OR t.phylum LIKE p.pattern OR t."class" LIKE p.pattern
                 OR t."order" LIKE p.pattern OR t.family LIKE p.pattern OR t.genus LIKE p.pattern
                 OR t.species LIKE p.pattern)
ORDER BY t.taxonomic_name
