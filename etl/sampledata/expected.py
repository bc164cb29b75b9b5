"""What an ingest of the sample collection must find, and its `expected.json`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Expected:
    """What an ingest of the collection must find, per source."""

    catalogued: dict[str, int] = field(default_factory=lambda: {"inat21": 0, "eol": 0, "bioscan": 0})
    rejected: dict[str, list[list[str]]] = field(default_factory=lambda: {"inat21": [], "eol": [], "bioscan": []})
    hostile: dict[str, list[str]] = field(default_factory=lambda: {"inat21": [], "eol": [], "bioscan": []})
    # inat21_classes and bioscan_files are lists of names; eol_pages maps a page id to its image names.
    fixtures: dict[str, list[str] | dict[str, list[str]]] = field(default_factory=dict)
    # Per source, the license key each image must get ("unknown" when none may be inferred): EOL by archive member,
    # iNat21 by `<class folder>/<file>`, BIOSCAN one key for every image ("*").
    licenses: dict[str, dict[str, str]] = field(default_factory=dict)

    def write(self, path: Path, seed: int, images: int) -> None:
        """Write `expected.json`, with the seed and size that made the collection."""
        path.write_text(json.dumps({
            "catalogued": self.catalogued, "rejected": self.rejected, "hostile": self.hostile,
            "fixtures": self.fixtures, "licenses": self.licenses, "seed": seed, "images": images,
        }, indent=1, sort_keys=True) + "\n")
