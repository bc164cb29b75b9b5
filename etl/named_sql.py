"""Named SQL queries kept in `.sql` files inside the package, as procrastinate keeps its queries.

A file holds sections, each opened by a line `-- name: NAME`; the lines up to the next such line are that
query (its comments included: the databases ignore them). Lines before the first section describe the file.
The files are found through `etl.resources.named_queries`, like every other file shipped in the package.
"""

from __future__ import annotations

import re

SECTION = re.compile(r"^--\s*name:\s*(\w+)\s*$")


def parse(sql: str) -> dict[str, str]:
    """The queries of one file's text, by name."""
    queries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in sql.splitlines():
        match = SECTION.match(line)
        if match:
            if match.group(1) in queries:
                raise ValueError(f"query {match.group(1)!r} is defined twice")
            current = queries[match.group(1)] = []
        elif current is not None:
            current.append(line.rstrip())
    empty = [name for name, lines in queries.items() if not "".join(lines).strip()]
    if empty:
        raise ValueError(f"query {empty[0]!r} is empty")
    return {name: "\n".join(lines).strip() for name, lines in queries.items()}
