"""What kind of failure a write-stage error is: the image's, the shard's, or the environment's.

* **image**: the bytes of one image are bad or not there (cannot decode, not an image, not a regular file,
  its file missing while its folder and source root are there, a read that timed out). It is recorded in
  `image_errors` and the image is skipped; its shard completes with the rest.
* **environment**: something every shard would meet (the source root or its mount gone, a unit's whole folder
  or archive gone, the cache or output disk full, read-only or failing, the database unreachable). It is never
  recorded against an image and never counts as an attempt: the worker gives the shard back and waits.
* **shard**: anything else. It counts an attempt of the shard in hand.

"The root is gone" is told from "this file is missing" by a probe the worker makes when a read fails: it
stats the source root and the image's unit (its folder, or its archive). A file missing next to its present
siblings is the image's; a missing root or unit is the environment's. As a second guard, a shard whose
passing image errors (below) pass a share of its images is the environment's too
(`passing_errors_exceeded`).

Everything here is a pure function of an error and what the worker observed; the worker does the I/O.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, NamedTuple

from etl.images import ImageProblem
from etl.sources.common import NotRegularFile

FaultKind = Literal["image", "shard", "environment"]
Stage = Literal["read", "write"]  # reading a source image (through the cache), or writing the shard's files

# Errors of a disk as a whole: full, over quota, read-only, failing, or a mount that went away.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.ESTALE, errno.ENOTCONN,
                         errno.ENODEV, errno.ENXIO, errno.EHOSTDOWN, errno.ENOMEDIUM})
# On a read, only the cache is written to (restaging), so these mean the cache is full or read-only.
CACHE_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
# A network or removable mount that is away: every read under it fails alike.
MOUNT_ERRNOS = frozenset({errno.ESTALE, errno.ENOTCONN, errno.ENODEV, errno.EHOSTDOWN, errno.ENOMEDIUM})

# Reasons of image errors whose cause may have passed (the file may read next time); `tol shards repair`
# writes the shards holding them again. Every reason the writer records starts with one of these or with a
# permanent one (`cannot decode:`, `not an image …`, `not a regular file`, `empty file …`).
UNREADABLE, MISSING, TIMEOUT = "unreadable: ", "missing file: ", "timeout: "
PASSING_PREFIXES = (UNREADABLE, MISSING, TIMEOUT)


class ReadTimeout(Exception):
    """A read and decode that did not finish within its time limit."""


class DatabaseUnavailable(Exception):
    """The catalog could not be reached (raised by whoever gives up on it; classified as environment)."""


class Probe(NamedTuple):
    """What the worker saw when it checked after a failed read: is the source root there, is the image's unit
    (its folder, or its archive) there."""

    root_present: bool
    unit_present: bool


class Fault(NamedTuple):
    """A classified failure: its kind, the reason (recorded for an image, printed otherwise), and for the
    environment the path or resource at fault."""

    kind: FaultKind
    reason: str
    resource: str | None = None


class Where(NamedTuple):
    """Where the failing step was: reading (with the source root and unit, and the probe's answer) or writing
    (into `out_dir`); `cache_dir` is where restaged archives are kept."""

    stage: Stage
    cache_dir: Path
    out_dir: Path | None = None
    root: Path | None = None
    unit: Path | None = None
    probe: Probe | None = None


def _under(filename: object, folder: Path | None) -> bool:
    if folder is None or not isinstance(filename, str | Path):
        return False
    path, base = str(filename), str(folder).rstrip("/")
    return path == base or path.startswith(base + "/")


def _message(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).splitlines()[0] if str(error) else ""
    return text or type(error).__name__


def is_database_error(error: BaseException) -> bool:
    """Whether the error says the catalog could not be reached (a lost or refused connection)."""
    if isinstance(error, DatabaseUnavailable):
        return True
    from sqlalchemy.exc import InterfaceError, OperationalError

    return isinstance(error, OperationalError | InterfaceError)


def classify(error: BaseException, where: Where) -> Fault:
    """The kind of `error`, met at `where` (see the module's docstring for the rules)."""
    if isinstance(error, ImageProblem):
        return Fault("image", str(error))
    if isinstance(error, NotRegularFile):
        return Fault("image", f"not a regular file ({error.strerror or 'special file'})")
    if isinstance(error, ReadTimeout):
        return Fault("image", f"{TIMEOUT}{error}")
    if is_database_error(error):
        return Fault("environment", f"database unreachable: {_message(error)}", "database")
    if not isinstance(error, OSError):
        return Fault("shard", f"{type(error).__name__}: {error}")
    code, filename = error.errno, error.filename
    if where.stage == "write":
        if code in DISK_ERRNOS:
            return Fault("environment", f"{_message(error)} writing {filename or where.out_dir}",
                         str(where.out_dir or filename))
        return Fault("shard", f"{type(error).__name__}: {error}")
    # Reading: the cache first (its disk full, read-only, gone), then the source.
    if code in CACHE_WRITE_ERRNOS or _under(filename, where.cache_dir):
        return Fault("environment", f"cache: {_message(error)}", str(where.cache_dir))
    probe = where.probe
    if probe is not None and not probe.root_present:
        return Fault("environment", f"source root missing: {_message(error)}", str(where.root))
    if probe is not None and not probe.unit_present:
        return Fault("environment", f"unit missing: {_message(error)}", str(where.unit))
    if code in MOUNT_ERRNOS:
        return Fault("environment", f"source mount unavailable: {_message(error)}", str(where.root))
    if code == errno.ENOENT:
        return Fault("image", f"{MISSING}{_message(error)}")
    return Fault("image", f"{UNREADABLE}{_message(error)}")


def is_passing(reason: str) -> bool:
    """Whether an image error's cause may have passed (unreadable, missing file, timeout)."""
    return reason.startswith(PASSING_PREFIXES)


def shards_to_repair(errors: Iterable[tuple[int, str]]) -> list[int]:
    """The shards (ids, sorted) among `errors` (shard id, reason) holding an image error whose cause may have
    passed."""
    return sorted({shard for shard, reason in errors if is_passing(reason)})


def passing_errors_exceeded(passing: int, seen: int, percent: float, minimum: int = 5) -> bool:
    """Whether `passing` errors among the `seen` images of a shard are too many to be the images' own fault:
    at least `minimum` of them and more than `percent` % of the images seen."""
    return passing >= minimum and passing * 100 > percent * seen


def signature(error: BaseException) -> str:
    """What makes two shard failures "of the same kind" for the circuit breaker: the exception type and errno
    (or, without one, the first words of the message with digits dropped)."""
    code = getattr(error, "errno", None)
    if code is not None:
        return f"{type(error).__name__} [{errno.errorcode.get(code, code)}]"
    words = "".join(ch for ch in _message(error) if not ch.isdigit()).split()[:6]
    return f"{type(error).__name__}: {' '.join(words)}"


class EnvironmentProblem(Exception):
    """Raised through the writer when a fault of the environment stops the shard in hand (it is given back)."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.reason)
        self.fault = fault
