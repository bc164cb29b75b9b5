"""Reference files as they really are: the unquoted scraped names, malformed rows rejected and recorded, whole
files failing only for a bad header, bad encoding or too many bad rows; `taxa check --strict` as a gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from etl import taxonomy
from etl.cli import cli
from etl.errors import TolError


def _load_scraped(engine, path: Path, percent: int = 5):
    (result,) = [r for r in taxonomy.load(engine, {"eol_scraped_page_ids": path}, percent) if r.name == "eol_scraped"]
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT page_id, scientific_name FROM ref_eol_scraped ORDER BY row_no")).all()
        rejects = connection.execute(text(
            "SELECT line_no, reason, raw FROM ref_rejects WHERE resource = 'eol_scraped' ORDER BY line_no")).all()
    return result, [tuple(r) for r in rows], [tuple(r) for r in rejects]


def test_scraped_names_unquoted_and_quoted(catalog_url, engine_of, tmp_path: Path):
    engine = engine_of(catalog_url)
    path = tmp_path / "scraped_page_ids.csv"
    path.write_text('page_id,scientific_name\n1,Trametes trogii Berk., 1850\n2,"Morus bassanus (Linnaeus, 1758)"\n'
                    "x3,Quercus\n4\n5,Quercus L.\n", encoding="utf-8")
    result, rows, rejects = _load_scraped(engine, path)
    assert rows == [(1, "Trametes trogii Berk., 1850"), (2, "Morus bassanus (Linnaeus, 1758)"), (5, "Quercus L.")]
    assert rejects == [(4, "page_id is not a whole number", "x3,Quercus\n"), (5, "no comma after the page_id", "4\n")]
    assert result.rejects == {"page_id is not a whole number": 1, "no comma after the page_id": 1}


def test_too_many_rejects_fail_the_file_and_keep_the_previous_load(catalog_url, engine_of, tmp_path: Path):
    engine = engine_of(catalog_url)
    good = tmp_path / "good.csv"
    good.write_text("page_id,scientific_name\n1,Quercus\n", encoding="utf-8")
    _load_scraped(engine, good)
    bad = tmp_path / "bad.csv"
    bad.write_text("page_id,scientific_name\n" + "".join(f"p{n},Quercus\n" for n in range(20)) + "1,Quercus\n",
                   encoding="utf-8")
    with pytest.raises(TolError, match=r"bad\.csv: 20 of 21 rows malformed .* first at line 2: page_id is not"):
        _load_scraped(engine, bad)
    assert _load_scraped(engine, good)[1] == [(1, "Quercus")]


@pytest.mark.parametrize(("content", "message"), [
    (b"id,name\n1,Quercus\n", r"header is not page_id,scientific_name"),
    (b"page_id,scientific_name\n1,Quercus\n2,Caf\xe9\n", r"not UTF-8"),
])
def test_a_file_fails_whole_for_header_or_encoding(catalog_url, engine_of, tmp_path: Path, content, message):
    path = tmp_path / "s.csv"
    path.write_bytes(content)
    with pytest.raises(TolError, match=message):
        _load_scraped(engine_of(catalog_url), path)


def test_sample_messes_load_with_rejects_and_pass_strict(sample_collection: Path, prepared_sqlite_url: str,
                                                         engine_of):
    url = prepared_sqlite_url  # ingested and named once already
    engine = engine_of(url)
    load = CliRunner().invoke(cli, ["--config", str(sample_collection / "tol.toml"), "--database-url", url,
                                    "taxa", "load"])
    assert load.exit_code == 0, load.output
    # Every reference file carries one malformed row (etl/sampledata): each is rejected, the rest loaded.
    for name in ("eol_taxa", "eol_scraped", "eol_vernaculars", "itis_chains", "inat_taxa", "inat_vernaculars",
                 "resolver", "bioscan_metadata"):
        assert any(line.startswith(name) and "1 rejected" in line for line in load.output.splitlines()), name
    CliRunner().invoke(cli, ["--database-url", url, "taxa", "resolve"])
    strict = CliRunner().invoke(cli, ["--database-url", url, "taxa", "check", "--strict"])
    assert strict.exit_code == 0, strict.output
    with engine.connect() as connection:
        taxa = {row[0]: row[1] for row in connection.execute(text(
            "SELECT scientific_name, taxonomic_name FROM taxa"))}
        unnamed = {page for (page,) in connection.execute(text(
            "SELECT page_id FROM names_eol_pages WHERE taxon_id IS NULL"))}
    # The liverwort keeps iNat21's classification; NCBI's Streptophyta does not replace it.
    assert taxa["Marchantia polymorpha"].startswith("Plantae Marchantiophyta Marchantiopsida")
    # A virus realm answered for Papaver rhoeas is not used.
    assert taxa["Papaver rhoeas"].startswith("Plantae Tracheophyta")
    assert taxa["Abies alba"] == "Plantae Tracheophyta Pinopsida Pinales Pinaceae Abies alba"
    assert taxa["Ostrea"] == "Animalia Mollusca Bivalvia Ostreida Ostreidae Ostrea"
    assert unnamed == {1000205, 1000206}  # `not provided`, `Unidentified sp.`
    assert not any(word in name.lower() for name in taxa.values() for word in ("not", "provided", "unidentified"))
    # A defect makes the strict check fail, with one line naming the checks.
    with engine.begin() as connection:
        connection.execute(text("UPDATE taxa SET kingdom = 'metazoa', species = 'trogii berk.,' "
                                "WHERE scientific_name = 'Abies alba'"))
    failed = CliRunner().invoke(cli, ["--database-url", url, "taxa", "check", "--strict"])
    assert failed.exit_code == 3  # work left undone (ExitCode.WORK_LEFT), not a usage error
    assert "07_kingdom_vocabulary" in failed.output and "08_authority_debris" in failed.output
