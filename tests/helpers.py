"""Running the first stages of the pipeline on a sample collection, for tests of the later ones."""

from __future__ import annotations

from pathlib import Path

from etl import config, taxonomy
from tests.test_ingest import ingest_all


def reference_paths(collection: Path) -> dict[str, Path | None]:
    """The reference-file settings of a sample collection, read from its own tol.toml."""
    settings = config.resolve({}, {}, collection / "tol.toml")
    return {r.setting: settings.path(r.setting) for r in taxonomy.RESOURCES}


def ingest_and_name(engine, collection: Path) -> taxonomy.ResolveSummary:
    """Ingest every source of `collection`, load its references and resolve names."""
    ingest_all(engine, collection)
    taxonomy.load(engine, reference_paths(collection))
    return taxonomy.resolve(engine)


def eol_unit_with_a_duplicate(unit: int):
    """An EOL-like listing unit for parallel-listing tests: unit 3 repeats content 2 of page 7 (listed by
    unit 0) and every unit has one badly named member."""
    from etl import ids
    from etl.sources.common import Reject, UnitResult, make_row

    result = UnitResult(rejects=[Reject(f"a{unit}.tar.gz:bad name {unit}.jpg", "member name does not match")])
    contents = [2] if unit == 3 else [100 * unit + n for n in range(1, 4)]
    for content in contents:
        result.rows.append(make_row(ids.eol_image_id(content, 7), f"a{unit}.tar.gz", 10,
                                    member=f"{content}_7_eol-full-size-copy.jpg", member_offset=512,
                                    eol_content_id=content, eol_page_id=7))
    return result
