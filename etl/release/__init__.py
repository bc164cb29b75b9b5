"""A published TreeOfLife-10M release: its identity map and split (`tol import-release`), ingesting its
EOL archives, and rebuilding its shards from its files (`tol reproduce`).

`inputs` reads and checks the release's `mapping.sqlite` and `catalog.csv` (pure, no catalog); `idmap` loads
them into the catalog and gives listed images their published ids; `reproduce` runs the whole path and reports
what could not be reproduced. See docs/release.md for the design.
"""
