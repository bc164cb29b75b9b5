"""Bulk loading into temporary tables: COPY on PostgreSQL, batched executemany on SQLite."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.engine import Connection

BATCH_ROWS = 20_000


ID_TYPE = "VARCHAR(36)"


def create_temp_table(connection: Connection, name: str, columns: Sequence[tuple[str, str]]) -> None:
    """Create temporary table `name` with `columns` ((name, SQL type) pairs), dropped at commit on PostgreSQL.

    Columns of type `ID_TYPE` get the byte-wise collation image ids have on PostgreSQL, so joins compare alike.
    """
    postgresql = connection.dialect.name == "postgresql"
    column_sql = ", ".join(
        f'"{column}" {sql_type}' + (' COLLATE "C"' if postgresql and sql_type == ID_TYPE else "")
        for column, sql_type in columns)
    if postgresql:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        connection.exec_driver_sql(f"CREATE TEMP TABLE {name} ({column_sql}) ON COMMIT DROP")
    else:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{name}")
        connection.exec_driver_sql(f"CREATE TEMP TABLE {name} ({column_sql})")


def load_rows(connection: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Append `rows` to `table` as fast as the database allows; returns the number of rows."""
    column_list = ", ".join(f'"{c}"' for c in columns)
    count = 0
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        assert raw is not None  # an open connection has its DBAPI connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    placeholders = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})"
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    batch: list[Sequence] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            cursor.executemany(statement, batch)
            count += len(batch)
            batch.clear()
    if batch:
        cursor.executemany(statement, batch)
        count += len(batch)
    cursor.close()
    return count
