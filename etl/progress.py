"""Progress of a long stage on stderr: a tqdm bar on a terminal, a plain line every few seconds otherwise.

Batch logs (Slurm's, a redirect to a file) cannot show a bar that redraws itself, so when stderr is not a
terminal a line with the count, the rate and the ETA is printed every `TOL_PROGRESS_SECONDS` seconds (default
30). With `-q` (enabled=False) nothing is drawn or printed.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType

from tqdm import tqdm

PLAIN_LINE_SECONDS = 30.0
# Count, rate and ETA of the plain lines, formatted by tqdm as its bars are.
PLAIN_FORMAT = ("{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f} %), {rate_noinv_fmt}, elapsed {elapsed}, "
                "ETA {remaining}")
PLAIN_FORMAT_NO_TOTAL = "{desc}: {n_fmt} {unit}, {rate_noinv_fmt}, elapsed {elapsed}"


def plain_line_seconds() -> float:
    """Seconds between two plain progress lines (setting `TOL_PROGRESS_SECONDS`, default 30)."""
    value = os.environ.get("TOL_PROGRESS_SECONDS")
    try:
        return max(float(value), 0.0) if value else PLAIN_LINE_SECONDS
    except ValueError:
        return PLAIN_LINE_SECONDS


class Progress:
    """Progress over units of work, with a running count of images (or samples) in its postfix.

    On a terminal a tqdm bar; otherwise a plain line every `plain_line_seconds()`; with `enabled` False,
    nothing.
    """

    def __init__(self, total: int | None, unit: str, desc: str, enabled: bool) -> None:
        self.enabled = enabled
        self.bar_shown = enabled and sys.stderr.isatty()
        self.plain = enabled and not self.bar_shown
        self.images = 0
        self.total = total
        self.unit = unit
        self.desc = desc
        self.done = 0
        self._started = time.monotonic()
        self._interval = plain_line_seconds()
        self._last_line = self._started
        self._bar = tqdm(total=total, unit=unit, desc=desc, disable=not self.bar_shown, dynamic_ncols=True)

    def advance(self, units: int = 1, images: int = 0) -> None:
        """Count `units` finished units holding `images` images."""
        self.set(self.done + units, self.images + images)

    def set(self, done: int, images: int | None = None, total: int | None = None) -> None:
        """Set how many units are done so far (and images, and the total if it changed): for progress read
        from elsewhere, such as the catalog while other processes write."""
        if images is not None:
            self.images = images
        if total is not None and total != self.total:
            self.total = total
            self._bar.total = total
        step = done - self.done
        self.done = done
        if self.bar_shown:
            self._bar.set_postfix(images=f"{self.images:,}", refresh=False)
            self._bar.update(step)
        elif self.plain and time.monotonic() - self._last_line >= self._interval:
            self._print_line()

    def line(self) -> str:
        """The plain progress line: count, percentage, rate and ETA."""
        elapsed = time.monotonic() - self._started
        rate = self.done / elapsed if elapsed > 0 else None
        text = tqdm.format_meter(self.done, self.total, elapsed, prefix=self.desc, unit=self.unit, rate=rate,
                                 bar_format=PLAIN_FORMAT if self.total else PLAIN_FORMAT_NO_TOTAL)
        return f"{text}, {self.images:,} images" if self.images else text

    def _print_line(self) -> None:
        self._last_line = time.monotonic()
        print(self.line(), file=sys.stderr, flush=True)

    def close(self) -> None:
        """End the bar (what leaving a `with` block does)."""
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.close()
