"""The dataset card: the plan folder's `README.md` in the Hugging Face card format.

Its YAML header is the write stage's (etl/write/sidecars.py: `configs` and `dataset_info` with every
feature's type) plus `license`, `pretty_name`, `tags`, `task_categories` and `size_categories`; its body says
what the dataset is, its counts (from the same named queries as the report, so they equal `tol status` and
the exported catalog), how it was built (tol version, every plan and split setting, seeds, the checksums of
the reference and provenance files), the license mix and the sources' citations.
"""

from __future__ import annotations

from pathlib import Path

from etl.report.data import ReportData
from etl.write.sidecars import REPORT_CARD_KEY
from etl.write.sidecars import dataset_card as features_card


def _size_category(count: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")):
        if count < limit:
            return label
    return "n>100M"


def _md_table(header: list[str], rows: list[list[object]]) -> list[str]:
    def cell(value: object) -> str:
        text = f"{value:,}" if isinstance(value, int) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows), ""]


def dataset_card(data: ReportData) -> str:
    """The card of the plan of `data` (Markdown with a YAML header)."""
    plan, split, settings = data.plan, data.split, data.settings
    base = features_card(plan, data.done_shards).split("\n")
    end = base.index("---", 1)
    yaml = base[1:end]
    features_body = base[end + 4:]  # after the header, its blank line, the title and its blank line
    licenses = sorted({lic for _, lic, _ in data.license_mix})
    yaml += ["license: other", f"{REPORT_CARD_KEY}: {plan.name}", "task_categories:", "- image-classification",
             "- zero-shot-image-classification", "tags:", "- biology", "- tree-of-life", "- webdataset",
             *(f"- license-{lic}" for lic in licenses), "size_categories:", f"- {_size_category(data.written)}"]
    lines = ["---", *yaml, "---", "", f"# {plan.name}", "",
             f"A TreeOfLife image-text dataset in the WebDataset format: the `{plan.split}` split of split "
             f"definition `{split.name}`, {data.written:,} images of {data.species:,} species from "
             f"{len(data.written_by_source)} collections, each with its seven-rank taxon, captions and provenance.",
             "", "## Counts", ""]
    lines += _md_table(["source", "samples"], [[s, n] for s, n in data.written_by_source] +
                       [["**total**", data.written]])
    lines += ["## Splits", "",
              f"This folder holds one split, `{plan.split}`. Under split definition `{split.name}` (seed "
              f"{split.seed}, {split.val_percent:g} % val, {split.train_small_percent:g} % train_small) every plan "
              "written from it has:", ""]
    lines += _md_table(["split", "source", "samples"], [list(row) for row in data.written_by_split_and_source])
    left = data.left_out
    lines += [f"Left out of this split: {left.excluded:,} images excluded by a list (rare-species benchmark), "
              f"{left.unnamed:,} without a taxon"
              + (f", {left.by_license:,} whose license is not one of {left.licenses}" if left.licenses else "")
              + f", {sum(n for _, _, n in data.image_errors_by_reason):,} that could not be decoded.", "",
              "## How it was built", "",
              f"With treeoflife-etl (`tol`) version {data.tol_version}: `tol shards plan {plan.name} --splits "
              f"{split.name} --split {plan.split}` and `tol shards write {plan.name}`. Settings:", ""]
    size = (f"{settings['samples_per_shard']} samples per shard" if settings.get("samples_per_shard")
            else f"{settings['shard_bytes']} bytes per shard" if settings.get("shard_bytes") else "default")
    lines += _md_table(["setting", "value"], [
        ["size", f"{plan.width}x{plan.height}"], ["resize", settings["resize"]], ["JPEG quality", settings["quality"]],
        ["shard size", size], ["shards", settings["n_shards"]], ["txt caption", settings["txt_field"]],
        ["caption member names", settings["caption_case"]], ["sample order seed", settings["shuffle_seed"]],
        ["split seed", split.seed], ["licenses allowed", left.licenses or "all"]])
    lines += ["Input files (sha256):", ""]
    lines += _md_table(["input", "file", "rows", "sha256"],
                       [[name, Path(path).name, rows, f"`{sha}`"] for name, path, sha, rows in data.input_files])
    lines += ["## Licenses", "",
              "Each image keeps the license its collection gives it; the `json` member of every sample holds its "
              "`license` (normalised key, `unknown` when none is known), `license_name`, `license_link`, "
              "`rights_holder` and `source_url`; `tol catalog export PLAN --what licenses` writes licenses.csv.", ""]
    lines += _md_table(["source", "license", "samples"], [list(row) for row in data.license_mix])
    lines += ["## Citation", "", "Cite the collections the images come from:", ""]
    for source, title, citation, _, _ in data.sources:
        lines += [f"{title} (`{source}`):", "", "```bibtex", citation, "```", ""]
    lines += ["## Format", "", *features_body]
    return "\n".join(lines).rstrip("\n") + "\n"
