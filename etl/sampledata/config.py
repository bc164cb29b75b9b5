"""The sample collection's `tol.toml`, pointing every setting at what the other modules of this package write."""

from __future__ import annotations

from pathlib import Path

# Kept as the literal file a user reads; its paths are those of inat21.ROOT, eol.ROOT, bioscan.py and references.py.
TOL_TOML = """\
# Settings for this sample collection; relative paths are relative to this file.
database_url = "sqlite:///catalog.sqlite"
inat21_root = "inat21/train"
eol_root = "eol/media_cargo_archive"
bioscan_root = "bioscan/cropped_256"
bioscan_metadata = "bioscan/BIOSCAN_Insect_Dataset_metadata.jsonld"
eol_taxon_tab = "eol/dh21/taxon.tab"
eol_vernacular = "eol/vernacularnames.csv"
eol_scraped_page_ids = "eol/scraped_page_ids.csv"
itis_chains = "itis/species_level_taxonomy_chains.csv"
inat_taxa = "inat/dwca/taxa.csv"
inat_vernacular = "inat/dwca/VernacularNames-english.csv"
resolver_output = "resolver/resolved.jsonl"
eol_media_manifest = "eol/media_manifest"
inat21_annotations = "inat21/train.json"
rare_seen = "rarespecies/seen_in_training.json"
rare_unseen = "rarespecies/unseen_in_training.json"
output_dir = "shards"
cache_dir = ".tol-cache"
"""


def write(root: Path) -> None:
    """Write `tol.toml` into the collection's root folder."""
    (root / "tol.toml").write_text(TOL_TOML)
