"""Progress bars that stay silent with --quiet and when stderr is not a terminal."""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm


class Progress:
    """A tqdm bar over units of work, with a running count of images (or samples) in its postfix."""

    def __init__(self, total: int | None, unit: str, desc: str, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.images = 0
        self._bar = tqdm(total=total, unit=unit, desc=desc, disable=not self.enabled, dynamic_ncols=True)

    def advance(self, units: int = 1, images: int = 0) -> None:
        """Count `units` finished units holding `images` images."""
        self.images += images
        if self.enabled:
            self._bar.set_postfix(images=f"{self.images:,}", refresh=False)
            self._bar.update(units)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.close()
