-- Every planned sample with its shard and its place in the tar, its source identity and its names, in the
-- columns of the published catalog.csv (ranks in display case; `common` is the caption's common name, never
-- empty). `written` is 1 when its shard is done and the image did not fail while the shard was written.
-- `position` is the sample's index in its tar (the count of written samples before it in the shard: what
-- wids' `__index__` within the shard and the line of the DALI `.idx` count); NULL when not written.
-- `planned_position` is its slot in the plan, which differs after an image of the shard failed.
-- v4: the same rows and columns as v3, composed of `plan_members` (the places: plan, shard, slot, position,
-- written) and `taxon_names` (the display names, defined per taxon), which the export reads apart.
CREATE VIEW plan_samples AS
SELECT
    pm.plan_name,
    pm.split,
    pm.shard_index,
    pm.shard_path,
    pm.position,
    pm.planned_position,
    pm.written,
    i.id AS treeoflife_id,
    i.source,
    i.eol_content_id,
    i.eol_page_id,
    i.bioscan_part,
    i.bioscan_filename,
    i.inat21_filename,
    i.inat21_cls_name,
    i.inat21_cls_num,
    n.kingdom,
    n.phylum,
    n."class",
    n."order",
    n.family,
    n.genus,
    n.species,
    n.common
FROM plan_members AS pm
JOIN images AS i ON i.id = pm.image_id
JOIN taxon_names AS n ON n.taxon_id = i.taxon_id
