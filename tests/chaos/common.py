"""What the chaos tests share: whether the full suite runs, and a row of the results table."""

from __future__ import annotations

import os
from dataclasses import dataclass

FULL = os.environ.get("TOL_CHAOS_FULL", "") not in ("", "0")


@dataclass
class ChaosRow:
    """One line of the results table."""

    fault: str
    database: str
    shards: int
    done_once: bool
    failed: int
    images_lost: int
    exits: str
    seconds: float
