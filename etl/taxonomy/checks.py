"""Quality checks of the resolved taxa: the SQL queries of `sql/checks/`.

A query whose second line is `-- gate` finds defects: `tol taxa check --strict` fails when it finds any. The
queries see the naming rules' data (one definition) through temporary tables made here: `check_kingdoms`
(the accepted kingdoms), `check_placeholder_patterns` (placeholders as LIKE patterns) and `check_digits`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

from etl import bulk, resources
from etl.naming import kingdom_vocabulary, placeholder_entries


@dataclass
class CheckResult:
    """One quality check: its name, what it tests, the number of hits and a few example rows."""

    name: str
    title: str
    count: int
    columns: list[str]
    examples: list[tuple]
    gate: bool = False

    @property
    def failed(self) -> bool:
        """Whether this is a gate check that found defects."""
        return self.gate and self.count > 0

    def lines(self) -> list[str]:
        """What `tol taxa check` prints for this check: title and count, then the example rows under a header."""
        out = [f"== {self.title}: {self.count}" + (" (FAILED)" if self.failed else "")]
        if self.examples:
            out.append("   " + " | ".join(self.columns))
        out += ["   " + " | ".join("" if v is None else str(v) for v in row) for row in self.examples]
        return out


def _rule_tables(connection: Connection) -> None:
    accepted, _ = kingdom_vocabulary()
    exact, prefixes, suffixes = placeholder_entries()
    bulk.create_temp_table(connection, "check_kingdoms", [("name", "TEXT")])
    bulk.load_rows(connection, "check_kingdoms", ("name",), ((k,) for k in sorted(accepted)))
    patterns = sorted({*exact, *(p + "%" for p in prefixes), *("%" + s for s in suffixes)})
    bulk.create_temp_table(connection, "check_placeholder_patterns", [("pattern", "TEXT")])
    bulk.load_rows(connection, "check_placeholder_patterns", ("pattern",), ((p,) for p in patterns))
    bulk.create_temp_table(connection, "check_digits", [("digit", "TEXT")])
    bulk.load_rows(connection, "check_digits", ("digit",), ((str(d),) for d in range(10)))


def check(engine: Engine, examples: int = 5) -> list[CheckResult]:
    """Run every `sql/checks/*.sql` query; each file's first comment line is its title, `-- gate` its second
    when it finds defects."""
    results = []
    with engine.begin() as connection:
        _rule_tables(connection)
        for query in resources.check_queries():
            sql = query.sql
            gate = sql.splitlines()[1:2] == ["-- gate"]
            if connection.dialect.paramstyle in ("format", "pyformat"):
                sql = sql.replace("%", "%%")
            result = connection.exec_driver_sql(sql)
            rows = result.all()
            results.append(CheckResult(query.name, query.title, len(rows), list(result.keys()),
                                       [tuple(r) for r in rows[:examples]], gate))
    return results
