"""The wheel carries every file of the package, and the code finds its shipped files through etl.resources.

scripts/check-wheel is the full proof (install the wheel in a fresh venv, run the demo); this is its quick half.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from etl import resources, schema

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "etl"


def _package_files() -> set[str]:
    return {path.relative_to(ROOT).as_posix() for path in PACKAGE.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


@pytest.mark.slow
def test_wheel_holds_every_package_file(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(PACKAGE, source / "etl", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "dist"),
                    str(source)], check=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.startswith("etl/")}
    assert _package_files() - shipped == set()


def test_resources_are_found():
    assert (resources.migrations_dir() / "env.py").is_file()
    assert schema.head_revision()
    assert len(resources.check_queries()) > 0
    assert all(query.title and query.sql.strip() for query in resources.check_queries())
    assert resources.data_file("naming_corrections.json").read_text(encoding="utf-8").lstrip().startswith("{")


def test_top_level_names_point_into_the_package():
    # The project guide keeps migrations/ and sql/ visible at the root; they are the package's own folders.
    assert (ROOT / "migrations").resolve() == resources.migrations_dir().resolve()
    assert (ROOT / "sql").resolve() == (PACKAGE / "sql").resolve()
