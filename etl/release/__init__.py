"""A published TreeOfLife-10M release: its identity map and split (`tol import-release`), ingesting its
EOL archives, and rebuilding its shards from its files (`tol reproduce`).

`inputs` reads and checks the release's `mapping.sqlite` and `catalog.csv` (pure, no catalog); `importer` loads
them into the catalog; `idmap` gives an ingest's listed images their published ids (the ingest calls it, so it
imports nothing right of the catalog); `reproduce` runs the whole path and reports what could not be
reproduced. See docs/release.md for the design.
"""
