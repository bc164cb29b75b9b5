-- Every catalogued image under the column names of the published catalog.csv, with where it lies on disk.
CREATE VIEW catalog_images AS
SELECT
    i.id AS treeoflife_id,
    i.source,
    i.status,
    i.eol_content_id,
    i.eol_page_id,
    i.bioscan_part,
    i.bioscan_filename,
    i.inat21_filename,
    i.inat21_cls_name,
    i.inat21_cls_num,
    i.path,
    i.member,
    i.byte_size
FROM images AS i
