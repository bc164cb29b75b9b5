-- Per taxon: its ranks in display case and the common name a sample of it shows, defined once for every view
-- and export that shows them (tests/test_rules_tied.py ties them to etl/naming.py). A rank is shown with its
-- first letter upper case, except a species epithet, which is lower case unless it stands without a genus;
-- `common` is the common name, else the scientific name, else the taxonomic name (never empty).
-- One row per taxon (~427k at 10M images), so an export can compute these once rather than once per sample.
CREATE VIEW taxon_names AS
SELECT
    t.id AS taxon_id,
    UPPER(SUBSTR(t.kingdom, 1, 1)) || SUBSTR(t.kingdom, 2) AS kingdom,
    UPPER(SUBSTR(t.phylum, 1, 1)) || SUBSTR(t.phylum, 2) AS phylum,
    UPPER(SUBSTR(t."class", 1, 1)) || SUBSTR(t."class", 2) AS "class",
    UPPER(SUBSTR(t."order", 1, 1)) || SUBSTR(t."order", 2) AS "order",
    UPPER(SUBSTR(t.family, 1, 1)) || SUBSTR(t.family, 2) AS family,
    UPPER(SUBSTR(t.genus, 1, 1)) || SUBSTR(t.genus, 2) AS genus,
    CASE WHEN t.genus = '' THEN UPPER(SUBSTR(t.species, 1, 1)) || SUBSTR(t.species, 2) ELSE t.species END
        AS species,
    COALESCE(NULLIF(t.common_name, ''), NULLIF(t.scientific_name, ''), t.taxonomic_name) AS common
FROM taxa AS t
