"""The taxonomy stage: load the reference files, then give every image a taxon and a common name.

`load` reads each reference file into its `ref_*` table (replacing the previous load atomically).
`resolve` works once per distinct naming key — each source says what its keys are (an EOL page, an iNat21
class, a BIOSCAN label) — and images are named by joining on those keys in SQL. The rules are naming.md's,
with the fixes listed in docs/differences.md; the small rule functions live in `etl.naming`, the known
corrections in `etl/data/naming_corrections.json`.

* `references`: the reference files, their readers and `load`;
* `upgrade`: the ITIS/resolver lookup that fills empty higher ranks;
* `eol_index`: EOL pages placed by the Dynamic Hierarchy and the scraped names;
* `resolve`: keys, unification of binomials, common names, writing taxa and names;
* `checks`: the quality checks of `sql/checks/`.
"""

from etl.sources.common import KeyResult, Taxon
from etl.taxonomy.checks import CheckResult, check
from etl.taxonomy.corrections import CORRECTIONS_FILE, load_corrections
from etl.taxonomy.eol_index import EolIndex, build_eol_index, eol_index_from_rows
from etl.taxonomy.references import LOAD_SETTINGS, RESOURCES, LoadResult, Resource, load, read_table
from etl.taxonomy.resolve import (
    ResolveSummary,
    class_indices,
    common_names,
    common_names_from_rows,
    fill_from_catalogued_species,
    resolve,
    taxon_id,
    unify_binomials,
)
from etl.taxonomy.upgrade import UpgradeTable, build_upgrade_table, upgrade_table_from_rows

__all__ = [
    "CORRECTIONS_FILE", "LOAD_SETTINGS", "RESOURCES", "CheckResult", "EolIndex", "KeyResult", "LoadResult",
    "ResolveSummary", "Resource", "Taxon", "UpgradeTable", "build_eol_index", "build_upgrade_table", "check",
    "class_indices", "common_names", "common_names_from_rows", "eol_index_from_rows", "fill_from_catalogued_species",
    "load", "load_corrections",
    "read_table", "resolve", "taxon_id", "unify_binomials", "upgrade_table_from_rows",
]
