"""`tol report`: one offline HTML file that renders in headless Chromium with every section, a contact sheet
read back from the shards, and a dataset card whose counts equal `tol status` and the exported catalog — on
SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from etl import provenance
from etl.report.contact import draw, read_indexed, read_streamed
from etl.report.html import treemap_nodes
from etl.write.launch import write_plan
from etl.write.queue import ShardRow
from tests.helpers import TOL, make_plan, prepared_catalog, tol_env, write_options

# Debian's package (.ci/run installs it); TOL_TEST_CHROMIUM names another build.
CHROMIUM = os.environ.get("TOL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PLOTS = ("fig-counts", "fig-taxa", "fig-treemap", "fig-tail", "fig-shards", "fig-left-out", "fig-licenses")
SECTIONS = ("counts", "taxa", "treemap", "tail", "shards", "left-out", "licenses", "naming", "contact")


# ----------------------------------------------------------------------------------------- pure parts


def test_treemap_nodes_sum_their_leaves_and_name_empty_ranks():
    ids, labels, parents, values = treemap_nodes([
        ("Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", 3),
        ("Animalia", "Chordata", "Aves", "Passeriformes", "Paridae", 2),
        ("Animalia", "Arthropoda", "Insecta", "", "", 4),
        ("Plantae", "", "", "", "", 1),
    ])
    nodes = {i: (label, parent, value) for i, label, parent, value in zip(ids, labels, parents, values, strict=True)}
    assert nodes["Animalia"] == ("Animalia", "", 9)
    assert nodes["Animalia/Chordata/Aves/Passeriformes"] == ("Passeriformes", "Animalia/Chordata/Aves", 5)
    assert nodes["Animalia/Chordata/Aves/Passeriformes/Paridae"] == ("Paridae", "Animalia/Chordata/Aves/Passeriformes",
                                                                     2)
    assert nodes["Animalia/Arthropoda/Insecta/(no order)/(no family)"][2] == 4
    assert nodes["Plantae/(no phylum)"] == ("(no phylum)", "Plantae", 1)
    assert len(nodes) == 5 + 1 + 4 + 5 and sum(v for i, (_, p, v) in nodes.items() if p == "") == 10


def _shard(index: int, samples: int) -> ShardRow:
    return ShardRow(index, index, f"shard-{index:06d}.tar", "done", samples, samples, 1, None, None)


@pytest.mark.parametrize(("sizes", "count"), [([5, 0, 3], 4), ([5, 0, 3], 8), ([5, 0, 3], 20), ([1], 1), ([], 3)])
def test_contact_sheet_draw_is_seeded_distinct_and_within_the_shards(sizes, count):
    shards = [_shard(i, n) for i, n in enumerate(sizes)]
    drawn = draw(shards, count, seed=3)
    assert drawn == draw(shards, count, seed=3) == sorted(set(drawn))
    assert len(drawn) == min(count, sum(sizes))
    assert all(0 <= position < sizes[index] for index, position in drawn)
    if count >= sum(sizes):  # everything is drawn
        assert drawn == [(i, p) for i, n in enumerate(sizes) for p in range(n)]


# ------------------------------------------------------------------------------------ the whole report


def _tol(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TOL, "-q", *args], env=tol_env(url, tmp_path), capture_output=True, text=True)


def _card_counts(card: str) -> dict[str, int]:
    """The card's "## Counts" table: source → samples (and `total`)."""
    section = card.split("## Counts", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([^|]+) \| ([\d,]+) \|$", section, flags=re.MULTILINE)
    return {name.strip("* "): int(count.replace(",", "")) for name, count in rows}


def _open_in_chromium(page_file: Path, screenshot: Path) -> dict:
    """Load the page offline in headless Chromium; what a reader's browser saw."""
    from playwright.sync_api import sync_playwright

    seen: dict = {"console": [], "errors": [], "requests": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: seen["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))

            def offline(route) -> None:  # the page must need nothing but itself
                if route.request.url.startswith(("file:", "data:")):
                    route.continue_()
                else:
                    seen["requests"].append(route.request.url)
                    route.abort()

            page.route("**/*", offline)
            page.goto(page_file.as_uri(), wait_until="load")
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 7", timeout=30_000)
            seen["sections"] = page.evaluate("Array.from(document.querySelectorAll('section')).map(s => s.id)")
            seen["plots"] = page.evaluate(
                "Array.from(document.querySelectorAll('.js-plotly-plot')).filter(d => d.querySelector('svg.main-svg'))"
                ".map(d => d.id)")
            seen["treemap_tiles"] = page.evaluate("document.querySelectorAll('#fig-treemap g.slice').length")
            seen["images"] = page.evaluate(
                "Array.from(document.querySelectorAll('#contact-sheet img')).map(i => [i.complete, i.naturalWidth])")
            seen["captions"] = page.evaluate(
                "Array.from(document.querySelectorAll('#contact-sheet figcaption code')).map(c => c.textContent)")
            seen["summary"] = page.inner_text(".summary")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen


def test_report_renders_offline_and_the_card_agrees_with_status_and_the_export(catalog_url, engine_of,
                                                                              sample_collection: Path, tmp_path: Path):
    engine = engine_of(catalog_url)
    prepared_catalog(engine, sample_collection)
    provenance.load(engine, {"eol_media_manifest": sample_collection / "eol" / "media_manifest",
                             "inat21_annotations": sample_collection / "inat21" / "train.json"})
    out = tmp_path / "out" / "p-val"
    plan = make_plan(engine, out, name="p-val", split="val", per_shard=15)
    write_plan(write_options(catalog_url, plan.name, tmp_path / "cache"), 1)

    made = _tol(catalog_url, tmp_path, "report", plan.name, "--samples", "12", "--seed", "5")
    assert made.returncode == 0, made.stderr
    page, card_file = out / "report.html", out / "README.md"
    assert made.stdout.splitlines()[0].startswith(f"report {page}:")

    # The card's counts = `tol status` = the exported catalog.
    status = _tol(catalog_url, tmp_path, "status", plan.name)
    written = int(re.search(r"; ([\d,]+)/[\d,]+ samples", status.stdout).group(1).replace(",", ""))
    exported = tmp_path / "catalog.csv"
    assert _tol(catalog_url, tmp_path, "catalog", "export", plan.name, "--out", str(exported)).returncode == 0
    with open(exported, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_source = Counter("eol" if r["eol_content_id"] else "bioscan" if r["bioscan_filename"] else "inat21"
                        for r in rows)
    card = card_file.read_text(encoding="utf-8")
    counts = _card_counts(card)
    assert counts == {**by_source, "total": len(rows)} and written == len(rows) > 0
    header = yaml.safe_load(card.split("---\n", 2)[1])
    assert header["dataset_info"]["splits"][0]["num_examples"] == len(rows)
    assert header["license"] == "other" and "image-classification" in header["task_categories"]
    # How it was built: the version, the seeds, and every input file's checksum.
    for needle in ("## How it was built", "split seed | 17", "sample order seed | 0", "## Licenses", "## Citation",
                   "@inproceedings{gharaee2023step"):
        assert needle in card
    assert re.findall(r"\| provenance eol \| media_manifest \| \d+ \| `[0-9a-f]{64}` \|", card)
    assert re.findall(r"\| eol_taxa \| taxon.tab \| \d+ \| `[0-9a-f]{64}` \|", card)

    # The page: one file, every section, every plot, the treemap, the contact sheet, nothing fetched.
    text = page.read_text(encoding="utf-8")
    assert text.count("<script") >= len(PLOTS) + 1 and "cdn." not in text.split("</head>")[1]
    seen = _open_in_chromium(page, tmp_path / "report.png")
    assert seen["errors"] == [] and [m for m in seen["console"] if m[0] == "error"] == []
    assert seen["requests"] == []
    assert seen["sections"] == list(SECTIONS)
    assert sorted(seen["plots"]) == sorted(PLOTS)
    assert seen["treemap_tiles"] > 3
    assert len(seen["images"]) == min(12, len(rows)) and all(done and width > 0 for done, width in seen["images"])
    assert set(seen["captions"]) <= {r["treeoflife_id"] for r in rows}
    assert f"{len(rows):,}\nsamples written" in seen["summary"]
    assert (tmp_path / "report.png").stat().st_size > 10_000

    # The contact sheet finds samples through each shard's .idx: the same members as reading the tar through.
    for shard in sorted(out.glob("shard-*.tar")):
        everything = set(range(200))
        assert read_indexed(shard, shard.with_suffix(".idx"), everything) == read_streamed(shard, everything) != {}

    # The same seed draws the same contact sheet; a report of an unknown plan is one line, exit 2.
    again = _tol(catalog_url, tmp_path, "report", plan.name, "--samples", "12", "--seed", "5", "--no-card",
                 "--out", str(tmp_path / "again.html"))
    assert again.returncode == 0, again.stderr
    sheet = re.compile(r'<div class="sheet" id="contact-sheet">.*?</div>', re.DOTALL)
    assert sheet.findall((tmp_path / "again.html").read_text(encoding="utf-8")) == sheet.findall(text)
    for args, fragment in ((["no-such-plan"], "no-such-plan"),
                           ([plan.name, "--out", str(tmp_path / "absent" / "r.html")], "absent")):
        refused = _tol(catalog_url, tmp_path, "report", *args)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
        assert fragment in refused.stderr


def test_shards_index_keeps_the_card_tol_report_wrote(catalog_url, engine_of, sample_collection: Path,
                                                      tmp_path: Path):
    engine = engine_of(catalog_url)
    prepared_catalog(engine, sample_collection)
    out = tmp_path / "out" / "p-val"
    plan = make_plan(engine, out, name="p-val", split="val", per_shard=15)
    write_plan(write_options(catalog_url, plan.name, tmp_path / "cache"), 1)
    card_file = out / "README.md"
    basic = card_file.read_text()
    assert "pretty_name:" not in basic.split("\n---", 1)[0]  # the write stage's own card

    assert _tol(catalog_url, tmp_path, "report", plan.name, "--samples", "2").returncode == 0
    reported = card_file.read_bytes()
    assert reported != basic.encode() and b"\npretty_name: p-val\n" in reported

    indexed = subprocess.run([TOL, "shards", "index", plan.name], env=tol_env(catalog_url, tmp_path),
                             capture_output=True, text=True)
    assert indexed.returncode == 0, indexed.stderr
    assert card_file.read_bytes() == reported  # not replaced by the plainer card
    assert f"{card_file} kept" in indexed.stdout and str(out / "shardindex.json") in indexed.stdout

    card_file.unlink()  # without the report's card, index writes its own again
    assert _tol(catalog_url, tmp_path, "shards", "index", plan.name).returncode == 0
    assert card_file.read_text() == basic


def test_report_counts_the_errors_of_the_plans_own_shards(prepared_url, engine_of, tmp_path: Path):
    """`image_errors_by_reason` per plan: the errors its shards recorded, not those of another plan holding the
    same images (train_small is a subset of train; here train's shards are not written yet, so those images are
    unwritten in train too, but did not fail there), counted here from the rows inserted."""
    from etl.report.data import gather

    engine = engine_of(prepared_url)
    train = make_plan(engine, tmp_path / "train", name="r-train", per_shard=50)
    small = make_plan(engine, tmp_path / "small", name="r-small", split="train_small", per_shard=50)
    with engine.begin() as connection:
        connection.execute(text("UPDATE shards SET state = 'done' WHERE plan_id = :p"), {"p": small.id})
        members = connection.execute(text(
            "SELECT m.shard_id, m.position, m.image_id FROM shard_members AS m JOIN shards AS sh "
            "ON sh.id = m.shard_id WHERE sh.plan_id = :p ORDER BY sh.shard_index, m.position"),
            {"p": small.id}).all()
        shared = {image for _, _, image in members}
        failed = members[:3]
        reasons = ["cannot decode", "cannot decode", "truncated"]
        for (shard_id, slot, image_id), reason in zip(failed, reasons, strict=True):
            connection.execute(text(
                "INSERT INTO image_errors (image_id, shard_id, stage, reason, planned_position) "
                "VALUES (:i, :s, 'write', :r, :p)"), {"i": image_id, "s": shard_id, "r": reason, "p": slot})
    assert shared and train.n_samples > small.n_samples
    assert sorted(gather(engine, "r-small").image_errors_by_reason) == [
        ("write", "cannot decode", 2), ("write", "truncated", 1)]
    assert gather(engine, "r-train").image_errors_by_reason == []
