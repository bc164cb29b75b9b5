"""The catalog's identity map at ingest: listed rows take their published treeoflife_id (`release_ids`).

Images the map covers take the published id as their `images.id` (design: docs/release.md).
`apply_to_listing` gives an ingest's listed rows their published ids before they are merged, and fills in the
EOL content and page ids of release-layout members (`<treeoflife_id>.jpg`), rejecting members the map lacks;
with no map imported, release-layout members are rejected one by one, with the command that fixes it. Loading
the map is etl/release/importer.py's.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl.errors import TolError
from etl.sources.common import Reject

# How an image row (alias `i`) meets a map row (alias `r`) of the same source identity.
IDENTITY_MATCH = {
    "eol": "r.source = 'eol' AND r.eol_content_id = i.eol_content_id AND r.eol_page_id = i.eol_page_id",
    "inat21": "r.source = 'inat21' AND r.inat21_cls_num = i.inat21_cls_num AND r.inat21_filename = i.inat21_filename",
    "bioscan": "r.source = 'bioscan' AND r.bioscan_part = i.bioscan_part AND r.bioscan_filename = i.bioscan_filename",
}


def has_map(connection: Connection, source: str | None = None) -> bool:
    """Whether a release map is imported (for `source`, when given)."""
    where = "" if source is None else " WHERE source = :s"
    return connection.execute(text(f"SELECT 1 FROM release_ids{where} LIMIT 1"), {"s": source}).first() is not None


RELEASE_MEMBER_WITHOUT_MAP = ("member is named by treeoflife_id (Hugging Face release form): import the "
                              "release's map first (tol import-release --mapping metadata/mapping.sqlite)")
RELEASE_MEMBER_NOT_IN_MAP = ("member is named by a treeoflife_id the imported release map does not hold (no EOL "
                             "content and page id for it)")


def apply_to_listing(connection: Connection, table: str, source: str, reject: Callable[[Reject], None],
                     scope: str = "") -> int:
    """Before an ingest merges its listed rows (`table`, ImageRow's columns; `scope` an extra `AND …` condition
    picking them): EOL members named by treeoflife_id take their content and page ids from the map, and those
    it lacks (all of them, with no map) are rejected and removed; then every row whose identity the map covers
    takes its published id and split hash. Returns how many rows were removed.

    Mixing the two EOL layouts is refused when media-cargo members the map does not cover sit beside
    release-layout members: EOL content ids change between EOL updates, so such a member may be a release image
    under another id, and would be written twice."""
    removed = 0
    if source == "eol":
        mapped = has_map(connection, "eol")
        if mapped:
            unmapped_cargo = connection.exec_driver_sql(f"""
                SELECT s.path, s.member, (SELECT COUNT(*) FROM {table} AS x
                                          WHERE x.eol_content_id IS NULL {scope.replace(table, 'x')})
                FROM {table} AS s
                WHERE s.eol_content_id IS NOT NULL {scope.replace(table, 's')}
                  AND NOT EXISTS (SELECT 1 FROM release_ids AS r WHERE {IDENTITY_MATCH['eol'].replace('i.', 's.')})
                ORDER BY s.path, s.member LIMIT 1""").first()
            if unmapped_cargo is not None and unmapped_cargo[2]:
                raise TolError(f"EOL root mixes release-layout members (<treeoflife_id>.jpg) with media-cargo "
                               f"members the release map lacks (e.g. {unmapped_cargo[0]}:{unmapped_cargo[1]}), "
                               "which may repeat release images under changed content ids: ingest the release's "
                               "archives and other EOL archives into separate catalogs")
        known = ("EXISTS (SELECT 1 FROM release_ids AS r WHERE r.treeoflife_id = {t}.id AND r.source = 'eol')"
                 if mapped else "1 = 0")
        unknown = connection.exec_driver_sql(f"""
            SELECT s.path, s.member FROM {table} AS s
            WHERE s.eol_content_id IS NULL {scope.replace(table, 's')} AND NOT {known.format(t='s')}
            ORDER BY s.path, s.member""").all()
        for path, member in unknown:
            reject(Reject(f"{path}:{member}", RELEASE_MEMBER_NOT_IN_MAP if mapped else RELEASE_MEMBER_WITHOUT_MAP))
        if unknown:
            removed = connection.exec_driver_sql(
                f"DELETE FROM {table} WHERE eol_content_id IS NULL {scope} AND NOT {known.format(t=table)}").rowcount
        if mapped:
            connection.exec_driver_sql(f"""
                UPDATE {table} SET eol_content_id = r.eol_content_id, eol_page_id = r.eol_page_id
                FROM release_ids AS r
                WHERE {table}.eol_content_id IS NULL {scope} AND r.treeoflife_id = {table}.id
                  AND r.source = 'eol'""")
    if has_map(connection, source):
        connection.exec_driver_sql(f"""
            UPDATE {table} SET id = r.treeoflife_id, split_hash = r.split_hash
            FROM release_ids AS r
            WHERE {table}.id <> r.treeoflife_id {scope}
              AND {IDENTITY_MATCH[source].replace('i.', f'{table}.')}""")
    return removed
