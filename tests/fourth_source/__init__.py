"""A tiny fourth collection, added the way any collection is: its own module and one migration, nothing else.

`folder_csv` is a folder of images plus a `taxa.csv` naming each file; its migration (migrations/) is an
Alembic revision on top of the project's head, reached through a second `version_locations` entry.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from sqlalchemy.engine import Engine

from etl import resources, schema

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
REVISION = "folder_csv_1"


def _alembic_config(connection):
    """The project's Alembic config with this collection's migrations as a second version location."""
    config = schema.alembic_config(connection)
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations",
                           os.pathsep.join((str(resources.migrations_dir() / "versions"), str(MIGRATIONS))))
    return config


def upgrade(engine: Engine) -> None:
    """Migrate a catalog at the project's head through this collection's revision."""
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), REVISION)


def downgrade(engine: Engine) -> None:
    """Undo this collection's revision (back to the project's head)."""
    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), f"{REVISION}-1")
