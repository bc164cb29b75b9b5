"""Quality checks of the resolved taxa: the SQL queries of `sql/checks/`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from etl import resources


@dataclass
class CheckResult:
    """One quality check: its name, what it tests, the number of hits and a few example rows."""

    name: str
    title: str
    count: int
    columns: list[str]
    examples: list[tuple]

    def lines(self) -> list[str]:
        """What `tol taxa check` prints for this check: title and count, then the example rows under a header."""
        out = [f"== {self.title}: {self.count}"]
        if self.examples:
            out.append("   " + " | ".join(self.columns))
        out += ["   " + " | ".join("" if v is None else str(v) for v in row) for row in self.examples]
        return out


def check(engine: Engine, examples: int = 5) -> list[CheckResult]:
    """Run every `sql/checks/*.sql` query; each file's first comment line is its title."""
    results = []
    with engine.connect() as connection:
        for query in resources.check_queries():
            sql = query.sql
            if connection.dialect.paramstyle in ("format", "pyformat"):
                sql = sql.replace("%", "%%")
            result = connection.exec_driver_sql(sql)
            rows = result.all()
            results.append(CheckResult(query.name, query.title, len(rows), list(result.keys()),
                                       [tuple(r) for r in rows[:examples]]))
    return results
