"""A sample collection laid out exactly like the real iNat21, EOL and BIOSCAN-1M trees, with every reference file.

The real collections (10M images) are not available where we build and test, so this package writes a small
one with the same on-disk layouts and the same kinds of mess: the worked examples of the naming rules,
synthetic species (some shared across sources), HTML and authorities in names, `not_classified`, gaps in the
hierarchy, and a few hostile files. The same seed gives the same bytes.

`expected.json` beside the collection says what an ingest must find (computed here from what was written,
not by the ingest code).

One module per room: `fixtures` (the worked examples), `species` (synthetic species), `images` (photographs and
hostile files), one module per collection (`inat21`, `bioscan`, `eol`), `references` (the taxonomy and name
files), `licenses` (EOL media manifests, iNat21 `train.json`) and `config` (`tol.toml`). A further collection
is a further module called from `generate`.
"""

from __future__ import annotations

import random
from pathlib import Path

from etl.sampledata import bioscan, config, eol, inat21, licenses, references
from etl.sampledata.expected import Expected
from etl.sampledata.fixtures import (
    BIOSCAN_FIXTURES,
    EOL_FIXTURE_CHAINS,
    EOL_FIXTURE_PAGES,
    EOL_SCRAPED,
    EOL_VERNACULAR_FIXTURES,
    INAT_FIXTURE_CLASSES,
    INAT_VERNACULAR_FIXTURES,
    ITIS_FIXTURES,
    NC,
    RESOLVER_FIXTURES,
)
from etl.sampledata.images import hostile_images
from etl.sampledata.references import DynamicHierarchy
from etl.sampledata.species import Species, synthetic_species

__all__ = [
    "BIOSCAN_FIXTURES",
    "EOL_FIXTURE_CHAINS",
    "EOL_FIXTURE_PAGES",
    "EOL_SCRAPED",
    "EOL_VERNACULAR_FIXTURES",
    "INAT_FIXTURE_CLASSES",
    "INAT_VERNACULAR_FIXTURES",
    "ITIS_FIXTURES",
    "NC",
    "RESOLVER_FIXTURES",
    "SHARES",
    "DynamicHierarchy",
    "Expected",
    "Species",
    "generate",
    "hostile_images",
    "synthetic_species",
]

# Share of the requested images per source (the real mix is 26 % iNat21, 11 % BIOSCAN, 63 % EOL).
SHARES = {"inat21": 0.4, "bioscan": 0.2, "eol": 0.4}


def generate(out: str | Path, images: int = 5000, seed: int = 0) -> Expected:
    """Write a sample collection of about `images` images into `out` (which must be empty or absent)."""
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        from etl.errors import TolError

        raise TolError(f"output folder is not empty: {root}")
    # One random stream drawn from in a fixed order: reordering these calls changes every byte after them.
    rng = random.Random(seed)
    expected = Expected()
    species = synthetic_species(rng, max(12, images // 15))
    targets = {source: max(1, int(images * share)) for source, share in SHARES.items()}

    inat_classes = inat21.write_classes(rng, root, species, targets["inat21"], expected)
    hostile = hostile_images(rng)  # drawn after iNat21's photographs, and shared by all three collections
    inat21.write_hostile(rng, root, inat_classes[-1], hostile, expected)
    bioscan.write(rng, root, species, targets["bioscan"], hostile, expected)
    eol_written = eol.write(rng, root, species, targets["eol"], hostile, expected)

    references.write(rng, root, species, eol_written.taxon_rows, eol_written.page_species, eol_written.images)
    licenses.write(seed, root, root / inat21.ROOT, eol_written.images, expected)  # its own stream: nothing moves
    config.write(root)
    expected.write(root / "expected.json", seed=seed, images=images)
    return expected
