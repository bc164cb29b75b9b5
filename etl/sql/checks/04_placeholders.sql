-- Placeholders: ranks still holding '(unidentified)', 'unknown', 'pleasehelp' or 'not_classified'
SELECT t.id, t.taxonomic_name
FROM taxa AS t
WHERE t.kingdom IN ('(unidentified)', 'unknown', 'pleasehelp', 'not_classified')
   OR t.phylum IN ('(unidentified)', 'unknown', 'pleasehelp', 'not_classified')
   OR t."class" IN ('(unidentified)', 'unknown', 'pleasehelp', 'not_classified')
   OR t."order" IN ('(unidentified)', 'unknown', 'pleasehelp', 'not_classified')
   OR t.family IN ('(unidentified)', 'unknown', 'pleasehelp', 'not_classified')
   OR t.genus IN ('(unidentified)', 'unknown', 'pleasehelp', 'not_classified')
   OR t.species IN ('(unidentified)', 'unknown', 'pleasehelp', 'not_classified')
ORDER BY t.taxonomic_name
