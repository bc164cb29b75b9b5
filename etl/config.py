"""One configuration with one precedence order.

Every setting can come from four places; the first that gives a value wins:

1. a command-line flag,
2. the environment variable ``TOL_<NAME>`` (upper case),
3. the TOML file named by ``--config FILE`` or ``TOL_CONFIG`` (top-level keys, names as below),
4. the built-in default.

Relative paths in a config file are taken relative to that file's directory, so a config file can be moved
together with the data it describes. Relative paths from flags and environment are relative to the working
directory, as a user typing them expects.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl import sources
from etl.errors import TolError
from etl.sources.common import SourceSetting
from etl.sources.licensing import provenance_settings

ENV_PREFIX = "TOL_"
CONFIG_ENV = "TOL_CONFIG"


@dataclass(frozen=True)
class Setting:
    """One configurable value: its name, kind (`url`, `path`, `int` or `str`), default and meaning."""

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @classmethod
    def of_source(cls, setting: SourceSetting) -> Setting:
        """The configuration setting a source declares."""
        return cls(setting.name, setting.kind, setting.default, setting.help, setting.choices)


SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", "url", "sqlite:///catalog.sqlite",
            "catalog database: sqlite:///FILE or postgresql+psycopg://USER@HOST:PORT/DB"),
    *(Setting.of_source(source.ROOT) for source in sources.SOURCES),
    *(Setting.of_source(source.METADATA.setting) for source in sources.SOURCES if source.METADATA is not None),
    *(Setting.of_source(setting) for setting in provenance_settings()),
    Setting("eol_taxon_tab", "path", None, "EOL Dynamic Hierarchy 2.1 taxon.tab"),
    Setting("eol_vernacular", "path", None, "EOL vernacularnames.csv"),
    Setting("eol_scraped_page_ids", "path", None, "scraped_page_ids.csv (page_id,scientific_name)"),
    Setting("itis_chains", "path", None, "ITIS species_level_taxonomy_chains.csv"),
    Setting("inat_taxa", "path", None, "iNaturalist DwC-A taxa.csv"),
    Setting("inat_vernacular", "path", None, "iNaturalist DwC-A VernacularNames-english.csv"),
    Setting("resolver_output", "path", None, "Global Names resolver output resolved.jsonl"),
    Setting("reference_reject_percent", "int", 5,
            "a reference file fails as a whole when more than this percent of its rows are malformed"),
    Setting("rare_seen", "path", None, "rare species seen_in_training.json"),
    Setting("rare_unseen", "path", None, "rare species unseen_in_training.json"),
    Setting("output_dir", "path", "shards", "where shard plans write their tars"),
    Setting("cache_dir", "path", ".tol-cache", "where EOL archives are restaged (or their gzip seek indexes kept)"),
    *(Setting.of_source(setting) for source in sources.SOURCES for setting in source.READ_SETTINGS),
    Setting("workers", "int", 2, "local worker processes for parallel stages"),
    Setting("db_wait_seconds", "int", 300,
            "how long workers and commands wait, with backoff, for a catalog database that went away "
            "(restart, outage, too many clients, another schema revision) before exiting 4"),
    Setting("read_timeout_seconds", "int", 300,
            "a shard writer gives up on one image's read and decode after this many seconds without progress "
            "(recorded as `timeout:`, repairable)"),
    Setting("environment_budget_seconds", "int", 600,
            "how long a shard writer waits out a fault of the environment (source root gone, disk full) with "
            "backoff before it exits 4, leaving the shards pending"),
    Setting("breaker_failures", "int", 3,
            "a shard writer stops claiming (exit 3) after this many shard failures of one kind in a row"),
    Setting("passing_error_percent", "int", 20,
            "a shard where more than this percent of images (and at least 5) fail to read is a fault of the "
            "environment, not of its images"),
)
SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Value:
    """An effective setting value and where it came from (`flag`, `env TOL_X`, `file PATH`, `default`)."""

    value: Any
    origin: str


class Config(Mapping[str, Value]):
    """The effective configuration: every setting with its value and origin."""

    def __init__(self, values: dict[str, Value], file: Path | None = None) -> None:
        self._values = values
        self.file = file

    def __getitem__(self, name: str) -> Value:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def get_value(self, name: str) -> Any:
        """The effective value of setting `name`."""
        return self._values[name].value

    def path(self, name: str, *, required_for: str | None = None) -> Path | None:
        """The setting `name` as a Path; with `required_for`, a missing value is an error naming the option."""
        value = self._values[name].value
        if value is None:
            if required_for:
                setting = SETTINGS_BY_NAME[name]
                raise TolError(
                    f"{required_for} needs {name}: give it as a flag, as {setting.env_var}, "
                    f"or as `{name}` in the config file"
                )
            return None
        return Path(value)

    @property
    def database_url(self) -> str:
        return str(self._values["database_url"].value)

    def lines(self) -> list[str]:
        """What `tol config show` prints: the config file, then every setting, its shown value and its origin."""
        width = max(len(s.name) for s in SETTINGS)
        out = [f"config file: {self.file}"] if self.file else []
        for setting in SETTINGS:
            value = self._values[setting.name]
            out.append(f"{setting.name:<{width}}  {display_value(setting, value.value)}  ({value.origin})")
        return out


def _convert(setting: Setting, raw: Any, origin: str, base_dir: Path | None) -> Any:
    if raw is None:
        return None
    if setting.kind == "int":
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise TolError(f"{setting.name} from {origin} must be a whole number, not {raw!r}") from None
    if not isinstance(raw, str | os.PathLike):
        raise TolError(f"{setting.name} from {origin} must be a string, not {raw!r}")
    text = os.fspath(raw)
    if setting.kind == "path":
        path = Path(text).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        return str(path)
    if setting.kind == "url" and base_dir is not None and text.startswith("sqlite:///") \
            and not text.startswith("sqlite:////") and text != "sqlite:///:memory:":
        # A SQLite file named in a config file lives beside that file, like every other relative path there.
        return "sqlite:///" + str(base_dir / text[len("sqlite:///"):])
    if setting.choices and text not in setting.choices:
        raise TolError(f"{setting.name} from {origin} must be one of {', '.join(setting.choices)}, not {text!r}")
    return text


def load_file(path: Path) -> dict[str, Any]:
    """Read a TOML config file; unknown keys, a missing file and bad TOML are one-line errors."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise TolError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise TolError(f"config file is a directory: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TolError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(SETTINGS_BY_NAME))
    if unknown:
        raise TolError(
            f"config file {path}: unknown key {unknown[0]!r} (known: {', '.join(SETTINGS_BY_NAME)})"
        )
    return data


def resolve(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> Config:
    """Combine flags > environment > config file > defaults into the effective configuration.

    `flags` maps setting names to values given on the command line (None = not given). `config_file` is the
    `--config` flag; without it, ``TOL_CONFIG`` in `env` names the file.

    >>> resolve({"workers": 4}, {"TOL_WORKERS": "8"}).get_value("workers")
    4
    """
    flags = flags or {}
    env = os.environ if env is None else env
    unknown_flags = set(flags) - set(SETTINGS_BY_NAME)
    if unknown_flags:
        raise ValueError(f"unknown settings {sorted(unknown_flags)}")
    file_path: Path | None = None
    if config_file is not None:
        file_path = Path(config_file)
    elif env.get(CONFIG_ENV):
        file_path = Path(env[CONFIG_ENV])
    file_values = load_file(file_path) if file_path else {}
    base_dir = file_path.resolve().parent if file_path else None

    values: dict[str, Value] = {}
    for setting in SETTINGS:
        if flags.get(setting.name) is not None:
            origin = "flag"
            value = _convert(setting, flags[setting.name], origin, None)
        elif env.get(setting.env_var) not in (None, ""):
            origin = f"env {setting.env_var}"
            value = _convert(setting, env[setting.env_var], origin, None)
        elif setting.name in file_values:
            origin = f"file {file_path}"
            value = _convert(setting, file_values[setting.name], origin, base_dir)
        else:
            origin = "default"
            value = setting.default
        values[setting.name] = Value(value, origin)
    return Config(values, file_path)


def display_value(setting: Setting, value: Any) -> str:
    """How `tol config show` prints a value: passwords in URLs masked, unset values as `-`."""
    if value is None:
        return "-"
    if setting.kind == "url":
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(str(value)).render_as_string(hide_password=True)
        except ArgumentError:
            return str(value)
    return str(value)
