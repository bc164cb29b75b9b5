-- Gaps: taxa with an empty rank above their lowest known rank
-- gate
SELECT t.id, t.taxonomic_name, t.kingdom, t.phylum, t."class", t."order", t.family, t.genus, t.species
FROM taxa AS t
WHERE (t.kingdom = '' AND (t.phylum || t."class" || t."order" || t.family || t.genus || t.species) <> '')
   OR (t.phylum = '' AND (t."class" || t."order" || t.family || t.genus || t.species) <> '')
   OR (t."class" = '' AND (t."order" || t.family || t.genus || t.species) <> '')
   OR (t."order" = '' AND (t.family || t.genus || t.species) <> '')
   OR (t.family = '' AND (t.genus || t.species) <> '')
   OR (t.genus = '' AND t.species <> '')
ORDER BY t.taxonomic_name
