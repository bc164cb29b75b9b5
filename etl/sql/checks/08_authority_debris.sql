-- Authority debris: genus or species holding a comma, `&`, parentheses, a trailing period or digits (`trogii berk.,`)
-- gate
SELECT t.id, t.genus, t.species
FROM taxa AS t
WHERE t.genus LIKE '%,%' OR t.genus LIKE '%&%' OR t.genus LIKE '%(%' OR t.genus LIKE '%)%' OR t.genus LIKE '%.'
   OR t.species LIKE '%,%' OR t.species LIKE '%&%' OR t.species LIKE '%(%' OR t.species LIKE '%)%'
   OR t.species LIKE '%.'
   OR EXISTS (SELECT 1 FROM check_digits AS d WHERE t.genus LIKE '%' || d.digit || '%')
   -- digits in an epithet are debris unless they are a voucher code after `sp.`
   OR (t.species NOT LIKE '%sp. %'
       AND EXISTS (SELECT 1 FROM check_digits AS d WHERE t.species LIKE '%' || d.digit || '%'))
ORDER BY t.genus, t.species
