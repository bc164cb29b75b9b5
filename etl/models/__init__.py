"""The catalog tables: the one definition of the schema that migrations must reproduce.

A test compares these models with a database built by ``alembic upgrade head`` on SQLite and PostgreSQL; any
difference fails it, so a change here needs a migration and a migration needs a change here.

One module per stage that writes the tables: `catalog` (ingest), `references` and `taxa` (taxonomy),
`provenance` (licenses), `selection` (splits and exclusions), `release` (a published release's map and split),
`shards` (plan and write); `base` holds what they share. Importing this
package registers every table on ``Base.metadata``.
"""

from __future__ import annotations

from etl.models.base import IMAGE_ID, KEY_TEXT, NAMING_CONVENTION, Base
from etl.models.catalog import BioscanMetadata, Image, IngestReject, IngestRun, Source
from etl.models.provenance import ImageProvenance, PlanLicenseFilter, SourceProvenance
from etl.models.references import (
    HigherRanks,
    RefEolScraped,
    RefEolTaxon,
    RefEolVernacular,
    ReferenceResource,
    RefInatTaxon,
    RefInatVernacular,
    RefItisChain,
    RefReject,
    RefResolved,
)
from etl.models.release import ReleaseId, ReleaseImport, ReleaseReject, ReleaseSplitMember
from etl.models.selection import Exclusion, SplitDefinition
from etl.models.shards import ImageError, Shard, ShardMember, ShardPlan
from etl.models.taxa import BioscanLabelName, EolPageName, Inat21ClassName, ResolvedName, Taxon

__all__ = [
    "IMAGE_ID", "KEY_TEXT", "NAMING_CONVENTION", "Base", "BioscanLabelName", "BioscanMetadata", "EolPageName",
    "Exclusion", "HigherRanks", "Image", "ImageError", "ImageProvenance", "Inat21ClassName", "IngestReject",
    "IngestRun", "PlanLicenseFilter", "RefEolScraped", "RefEolTaxon", "RefEolVernacular", "RefInatTaxon",
    "RefInatVernacular", "RefItisChain", "RefReject", "RefResolved", "ReferenceResource", "ReleaseId",
    "ReleaseImport", "ReleaseReject", "ReleaseSplitMember", "ResolvedName", "Shard", "ShardMember", "ShardPlan",
    "Source", "SourceProvenance", "SplitDefinition", "Taxon",
]
