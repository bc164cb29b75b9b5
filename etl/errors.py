"""The one exception type users see.

Everything the pipeline expects to go wrong (bad input, a missing file, an unreachable database) is raised as
`TolError` with a single line that names the file, row or option at fault. The CLI prints that line and exits
non-zero; anything else is a bug and keeps its traceback.
"""


class TolError(Exception):
    """An error whose message is complete for the user: one line, no traceback needed."""
