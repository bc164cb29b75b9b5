-- Multi-word species: epithets of more than one word (subspecies, `sp.` codes, hybrids)
SELECT t.id, t.scientific_name, t.species
FROM taxa AS t
WHERE t.species LIKE '% %'
ORDER BY t.scientific_name
