-- Every image's license and origin: its own provenance record when its collection's file gave one (EOL media
-- manifests, iNat21 train.json), else its collection's dataset-level license (BIOSCAN-1M). `license_key` is the
-- normalised license (cc-by, cc-by-nc-sa, cc0, pd, …), NULL when none is known: then `unknown_reason` says why
-- (never guessed). Text fields are '' when not given.
CREATE VIEW image_licenses AS
SELECT
    i.id AS image_id,
    i.source,
    i.status,
    CASE WHEN p.image_id IS NOT NULL THEN 'image' WHEN sp.license_name IS NOT NULL THEN 'collection'
         ELSE 'none' END AS provenance,
    CASE WHEN p.image_id IS NOT NULL THEN p.license_key ELSE sp.license_key END AS license_key,
    COALESCE(CASE WHEN p.image_id IS NOT NULL THEN p.license_name ELSE sp.license_name END, '') AS license_name,
    COALESCE(CASE WHEN p.image_id IS NOT NULL THEN p.license_link ELSE sp.license_link END, '') AS license_link,
    COALESCE(CASE WHEN p.image_id IS NOT NULL THEN p.rights_holder ELSE sp.rights_holder END, '') AS rights_holder,
    COALESCE(p.source_url, '') AS source_url,
    COALESCE(p.copy_url, '') AS copy_url,
    COALESCE(p.title, '') AS title,
    COALESCE(p.md5, '') AS md5,
    CASE
        WHEN p.image_id IS NULL AND sp.license_name IS NULL THEN 'no provenance record'
        WHEN p.image_id IS NOT NULL AND p.license_key IS NULL AND TRIM(p.license_name) = '' THEN 'license not given'
        WHEN p.image_id IS NOT NULL AND p.license_key IS NULL THEN 'license not recognised'
        WHEN p.image_id IS NULL AND sp.license_key IS NULL THEN 'license not recognised'
    END AS unknown_reason
FROM images AS i
LEFT JOIN image_provenance AS p ON p.image_id = i.id
LEFT JOIN source_provenance AS sp ON sp.source = i.source
