"""The known naming corrections: lookup seeds and row fixes of the upgrade table, and seeded EOL pages."""

from __future__ import annotations

import json

from etl import resources

CORRECTIONS_FILE = "naming_corrections.json"


def load_corrections() -> dict:
    """The corrections file's content (keys `lookup_seeds`, `lookup_row_corrections`, `eol_page_seeds`)."""
    return json.loads(resources.data_file(CORRECTIONS_FILE).read_text(encoding="utf-8"))
