"""The precedence flag > environment > config file > default, table-tested."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.config import SETTINGS, resolve
from etl.errors import TolError

CASES = [
    # flag, env, file, expected value, expected origin
    (None, None, None, "shards", "default"),
    (None, None, "from-file", "FILE/from-file", "file"),
    (None, "from-env", "from-file", "from-env", "env TOL_OUTPUT_DIR"),
    ("from-flag", "from-env", "from-file", "from-flag", "flag"),
    ("from-flag", None, None, "from-flag", "flag"),
    ("from-flag", None, "from-file", "from-flag", "flag"),
    (None, "", "from-file", "FILE/from-file", "file"),  # an empty variable counts as unset
]


@pytest.mark.parametrize(("flag", "env", "file_value", "expected", "origin"), CASES)
def test_precedence(tmp_path: Path, flag, env, file_value, expected, origin):
    environment = {}
    config_file = None
    if file_value is not None:
        config_file = tmp_path / "tol.toml"
        config_file.write_text(f'output_dir = "{file_value}"\n')
    if env is not None:
        environment["TOL_OUTPUT_DIR"] = env
    result = resolve({"output_dir": flag}, environment, config_file)
    value = result["output_dir"]
    assert value.value == expected.replace("FILE", str(tmp_path))
    assert value.origin.startswith(origin)


def test_config_file_from_environment(tmp_path: Path):
    config_file = tmp_path / "c.toml"
    config_file.write_text('workers = 7\ndatabase_url = "sqlite:///cat.sqlite"\n')
    result = resolve({}, {"TOL_CONFIG": str(config_file)})
    assert result.get_value("workers") == 7
    # A SQLite file named in a config file lies beside it.
    assert result.database_url == f"sqlite:///{tmp_path}/cat.sqlite"


def test_every_setting_has_env_var_and_default_origin():
    result = resolve({}, {})
    assert {s.name for s in SETTINGS} == set(result)
    assert all(v.origin == "default" for v in result.values())
    assert resolve({}, {}).database_url == "sqlite:///catalog.sqlite"


@pytest.mark.parametrize(("content", "message"), [
    ("bogus = 1\n", "unknown key 'bogus'"),
    ("workers = [\n", "not valid TOML"),
    ('workers = "many"\n', "must be a whole number"),
])
def test_bad_config_file(tmp_path: Path, content, message):
    config_file = tmp_path / "bad.toml"
    config_file.write_text(content)
    with pytest.raises(TolError, match=message):
        resolve({}, {}, config_file)


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(TolError, match="config file not found"):
        resolve({}, {}, tmp_path / "absent.toml")


def test_cluster_example_config_is_valid():
    example = Path(__file__).resolve().parent.parent / "docs" / "cluster.example.toml"
    result = resolve({}, {}, example)
    assert result.database_url.startswith("postgresql+psycopg://")
    assert all(result[s.name].origin.startswith("file") for s in SETTINGS)
