-- Per image: the resolved taxon, its common name, and the names its captions are made of.
-- `caption_common` is the common name a sample shows (common, else scientific, else taxonomic).
CREATE VIEW image_names AS
SELECT
    i.id AS image_id,
    i.source,
    i.status,
    i.taxon_id,
    t.kingdom,
    t.phylum,
    t."class",
    t."order",
    t.family,
    t.genus,
    t.species,
    t.scientific_name,
    t.taxonomic_name,
    t.tagged_name,
    t.common_name,
    COALESCE(NULLIF(t.common_name, ''), NULLIF(t.scientific_name, ''), t.taxonomic_name) AS caption_common,
    i.unnamed_reason
FROM images AS i
LEFT JOIN taxa AS t ON t.id = i.taxon_id
