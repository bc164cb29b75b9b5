"""The exit codes of `tol`, and the exception types users see.

Everything the pipeline expects to go wrong (bad input, a missing file, an unreachable database) is raised as
`TolError` with a single line that names the file, row, option or plan at fault. The CLI prints that line and
exits with the error's `exit_code`; anything else is a bug and keeps its traceback (exit 70).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """What `tol`'s exit status means; Slurm chains (`afterok`) and scripts rely on these."""

    OK = 0  # everything asked for is done
    USAGE = 2  # a user or configuration error (click's own usage errors are 2 as well)
    WORK_LEFT = 3  # the command ran but left work undone: failed or pending shards, a failing check
    ENVIRONMENT = 4  # a source, disk or database unavailable after a retry budget
    BUG = 70  # an internal error (EX_SOFTWARE): the traceback is kept
    INTERRUPTED = 130  # Ctrl-C


class TolError(Exception):
    """An error whose message is complete for the user: one line, no traceback needed."""

    exit_code: ExitCode = ExitCode.USAGE


class WorkLeftError(TolError):
    """The command ran to its end but left work undone (its message says what, and how to retry)."""

    exit_code = ExitCode.WORK_LEFT


class EnvironmentFault(TolError):
    """A source, disk or database stayed unavailable after the retry budget."""

    exit_code = ExitCode.ENVIRONMENT


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str) -> TolError:
    """The error for a name the catalog does not hold: `no KIND 'NAME' (known: a, b)`, or, when nothing of that
    kind exists yet, `(known: none; HINT)` with HINT saying how to make one."""
    listed = ", ".join(known)
    return TolError(f"no {kind} {name!r} (known: {listed or f'none; {hint}'})")
