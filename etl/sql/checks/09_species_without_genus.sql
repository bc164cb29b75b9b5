-- Species without genus: an epithet with no genus while its first word is a genus the catalog knows
-- gate
SELECT t.id, t.taxonomic_name, t.species
FROM taxa AS t
WHERE t.genus = '' AND t.species <> ''
  AND EXISTS (SELECT 1 FROM taxa AS g
              WHERE g.genus <> '' AND (t.species = g.genus OR t.species LIKE g.genus || ' %'))
ORDER BY t.taxonomic_name
