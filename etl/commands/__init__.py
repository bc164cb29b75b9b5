"""The `tol` commands and command groups, one module each; the root group in cli.py registers `COMMANDS`.

Each module parses its options and calls the stage modules; how a stage's result reads is the stage's own
(`lines()` on its result). `state` holds what every command shares: the `State` the top-level options give,
`pass_state` and `TolGroup`. Only cli.py imports this package, and nothing here imports cli.py, which stays
a leaf that nothing in the package imports.
"""

from __future__ import annotations

import click

from etl.commands.catalog import catalog_group
from etl.commands.config import config_group
from etl.commands.db import db_group
from etl.commands.exclude import exclude_group
from etl.commands.ingest import ingest_group
from etl.commands.licenses import licenses_group
from etl.commands.release import import_release, reproduce
from etl.commands.report import report_command
from etl.commands.run import demo, run_command
from etl.commands.sample_data import sample_data
from etl.commands.shards import shards_group
from etl.commands.splits import splits_group
from etl.commands.state import State, TolGroup, pass_state
from etl.commands.status import status_command
from etl.commands.taxa import taxa_group

# Every top-level command and group, registered by name (`tol --help` lists them sorted by name).
COMMANDS: tuple[click.Command, ...] = (
    db_group, config_group, sample_data, ingest_group, splits_group, exclude_group, taxa_group, shards_group,
    status_command, catalog_group, run_command, demo, import_release, reproduce, licenses_group, report_command,
)

__all__ = ["COMMANDS", "State", "TolGroup", "pass_state"]
