"""The one exception type users see.

Everything the pipeline expects to go wrong (bad input, a missing file, an unreachable database) is raised as
`TolError` with a single line that names the file, row or option at fault. The CLI prints that line and exits
non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class TolError(Exception):
    """An error whose message is complete for the user: one line, no traceback needed."""


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str) -> TolError:
    """The error for a name the catalog does not hold: `no KIND 'NAME' (known: a, b)`, or, when nothing of that
    kind exists yet, `(known: none; HINT)` with HINT saying how to make one."""
    listed = ", ".join(known)
    return TolError(f"no {kind} {name!r} (known: {listed or f'none; {hint}'})")
