"""The report page: one self-contained HTML file (plotly.js inlined once, thumbnails as data URIs, no request
to any server), laid out from a `ReportData` and a contact sheet.

Plots are Plotly figures (interactive: hover, zoom, the treemap drills down on click); tables are plain HTML.
Nothing here computes a number: each figure shows rows of one named query of sql/report/.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from etl.naming import RANK_NAMES
from etl.report.contact import ContactSample
from etl.report.data import ReportData

TREEMAP_RANKS = RANK_NAMES[:5]  # kingdom → family
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; } .muted { color: #666; }
table { border-collapse: collapse; margin: 0.5em 0 1em; } td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.summary { display: flex; gap: 2em; flex-wrap: wrap; } .summary div { font-size: 1.4em; }
.summary span { display: block; font-size: 0.6em; color: #666; }
.sheet { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px; }
.sheet figure { margin: 0; border: 1px solid #ddd; padding: 4px; background: #fafafa; }
.sheet img { display: block; margin: 0 auto; max-width: 192px; max-height: 192px; }
.sheet figcaption { font-size: 0.75em; word-break: break-word; } .sheet code { font-size: 0.9em; color: #555; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def table(header: Sequence[str], rows: Iterable[Sequence[object]], caption: str = "") -> str:
    """An HTML table; numbers are right-aligned and grouped by thousands."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{value:,}</td>' if isinstance(value, int) and not isinstance(value, bool)
                        else f"<td>{_e(value)}</td>" for value in row)
        body.append(f"<tr>{cells}</tr>")
    title = f"<caption>{_e(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(figure: go.Figure, div_id: str, height: int = 420) -> str:
    figure.update_layout(height=height, margin={"l": 50, "r": 20, "t": 40, "b": 50}, template="plotly_white")
    return str(figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG))


def treemap_nodes(leaves: Iterable[Sequence[Any]]) -> tuple[list[str], list[str], list[str], list[int]]:
    """Treemap ids, labels, parents and values from (kingdom, phylum, class, order, family, count) rows: each
    node's value is the sum of its leaves (an empty rank shows as "(no <rank>)")."""
    values: dict[tuple[str, ...], int] = defaultdict(int)
    for row in leaves:
        path = tuple(name or f"(no {rank})" for name, rank in zip(row[:5], TREEMAP_RANKS, strict=True))
        for depth in range(1, 6):
            values[path[:depth]] += int(row[5])
    ids, labels, parents, sizes = [], [], [], []
    for path in sorted(values):
        ids.append("/".join(path))
        labels.append(path[-1])
        parents.append("/".join(path[:-1]))
        sizes.append(values[path])
    return ids, labels, parents, sizes


def _counts_section(data: ReportData) -> str:
    sources = sorted({source for _, source, _ in data.written_by_split_and_source})
    splits = sorted({split for split, _, _ in data.written_by_split_and_source})
    figure = go.Figure([go.Bar(name=source, x=splits, y=[next((n for sp, s, n in data.written_by_split_and_source
                                                             if sp == split and s == source), 0)
                                                        for split in splits]) for source in sources])
    figure.update_layout(barmode="group", title="Written samples per split and source (plans of this split)",
                         yaxis_title="samples")
    catalog = table(["source", "split", "present images", "of which train_small"],
                    data.catalog_by_split_and_source, f"Catalog under split definition {data.split.name}")
    written = table(["split", "source", "written samples"], data.written_by_split_and_source)
    return _figure(figure, "fig-counts") + written + catalog


def _taxa_section(data: ReportData) -> str:
    rows = [(row[0] or "all sources", *(int(v) for v in row[1:])) for row in data.taxa_per_rank]
    figure = go.Figure([go.Bar(name=str(row[0]), x=list(RANK_NAMES), y=list(row[1:])) for row in rows])
    figure.update_layout(barmode="group", title="Unique taxa per rank and source", yaxis_title="taxa",
                         yaxis_type="log")
    return _figure(figure, "fig-taxa") + table(["source", *RANK_NAMES], rows)


def _treemap_section(data: ReportData) -> str:
    ids, labels, parents, sizes = treemap_nodes(data.treemap)
    figure = go.Figure(go.Treemap(ids=ids, labels=labels, parents=parents, values=sizes, branchvalues="total",
                                  maxdepth=3, hovertemplate="%{id}<br>%{value:,} samples<extra></extra>"))
    figure.update_layout(title="Samples by kingdom → phylum → class → order → family (click to zoom in)")
    return _figure(figure, "fig-treemap", 640)


def _tail_section(data: ReportData) -> str:
    figure = go.Figure(go.Scatter(x=[n for n, _ in data.species_sizes], y=[c for _, c in data.species_sizes],
                                  mode="markers+lines", name="species",
                                  hovertemplate="%{y:,} species with %{x:,} samples<extra></extra>"))
    figure.update_layout(title="The long tail: species by number of samples", xaxis_title="samples per species",
                         yaxis_title="species", xaxis_type="log", yaxis_type="log")
    return _figure(figure, "fig-tail")


def _shards_section(data: ReportData) -> str:
    shards = data.done_shards
    figure = make_subplots(rows=1, cols=2, subplot_titles=("shard size (MB)", "samples per shard"))
    figure.add_trace(go.Histogram(x=[int(s.n_bytes or 0) / 1e6 for s in shards], name="MB"), row=1, col=1)
    figure.add_trace(go.Histogram(x=[int(s.n_samples or 0) for s in shards], name="samples"), row=1, col=2)
    figure.update_layout(title=f"{len(shards):,} written shards of {len(data.shards):,}", showlegend=False)
    return _figure(figure, "fig-shards", 360)


def _left_out_section(data: ReportData) -> str:
    left = data.left_out
    reasons = [("excluded by a list", left.excluded), ("no taxon", left.unnamed)]
    if left.licenses is not None:
        reasons.append((f"license not in {left.licenses}", left.by_license))
    reasons += [(f"could not be written: {reason}", n) for _, reason, n in data.image_errors_by_reason]
    figure = go.Figure(go.Bar(x=[n for _, n in reasons], y=[r for r, _ in reasons], orientation="h"))
    figure.update_layout(title="Images of the split left out of the plan, by reason", xaxis_title="images")
    return (_figure(figure, "fig-left-out", 320)
            + table(["list", "reason", "present images matched"], data.exclusions_by_reason,
                    "Exclusion lists (whole catalog)")
            + table(["source", "reason", "images"], data.unnamed_by_reason, "Images without a taxon (whole catalog)")
            + table(["stage", "reason", "images"], data.image_errors_by_reason, "Image errors of this plan"))


def _license_section(data: ReportData) -> str:
    licenses = sorted({lic for _, lic, _ in data.license_mix})
    sources = sorted({s for s, _, _ in data.license_mix})
    figure = go.Figure([go.Bar(name=lic, x=sources, y=[next((n for s, li, n in data.license_mix
                                                            if s == source and li == lic), 0) for source in sources])
                        for lic in licenses])
    figure.update_layout(barmode="stack", title="License mix of the written samples", yaxis_title="samples")
    holders = table(["source", "title", "dataset license", "rights holder"],
                    [(s, t, lic or "per image", holder or "per image") for s, t, _, lic, holder in data.sources])
    return _figure(figure, "fig-licenses") + table(["source", "license", "samples"], data.license_mix) + holders


def _naming_section(data: ReportData) -> str:
    return table(["check", "rows", "gate"], [(c.title, c.count, "gate: failed" if c.failed else
                                               ("gate" if c.gate else "")) for c in data.checks],
                 "tol taxa check (whole catalog)")


def _contact_section(samples: Sequence[ContactSample], seed: int) -> str:
    figures = "".join(
        f'<figure><img alt="{_e(s.key)}" src="data:image/jpeg;base64,{s.thumbnail}">'
        f"<figcaption>{_e(s.caption)}<br><code>{_e(s.key)}</code><br>"
        f'<span class="muted">{_e(s.shard)} #{s.position} · {_e(s.license)}</span></figcaption></figure>'
        for s in samples)
    return (f'<p class="muted">{len(samples)} samples drawn with seed {seed}, read back from the shards.</p>'
            f'<div class="sheet" id="contact-sheet">{figures}</div>')


SECTIONS = (("counts", "Counts"), ("taxa", "Unique taxa"), ("treemap", "Treemap"), ("tail", "Long tail"),
            ("shards", "Shards"), ("left-out", "Left out"), ("licenses", "Licenses"), ("naming", "Naming quality"),
            ("contact", "Contact sheet"))


def render(data: ReportData, samples: Sequence[ContactSample], seed: int) -> str:
    """The whole report page."""
    plan = data.plan
    bodies = {
        "counts": _counts_section(data), "taxa": _taxa_section(data), "treemap": _treemap_section(data),
        "tail": _tail_section(data), "shards": _shards_section(data), "left-out": _left_out_section(data),
        "licenses": _license_section(data), "naming": _naming_section(data),
        "contact": _contact_section(samples, seed),
    }
    unknown = sum(n for _, lic, n in data.license_mix if lic == "unknown")
    summary = "".join(f"<div>{value}<span>{_e(label)}</span></div>" for value, label in (
        (f"{data.written:,}", "samples written"), (f"{len(data.done_shards):,}", "shards"),
        (f"{len(data.written_by_source)}", "sources"),
        (f"{data.species:,}", "species"),
        (f"{unknown:,}", "samples of unknown license")))
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in SECTIONS)
    sections = "".join(f'<section id="{key}"><h2>{_e(title)}</h2>{bodies[key]}</section>' for key, title in SECTIONS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(plan.name)}: TreeOfLife shard plan report</title>
<style>{STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{_e(plan.name)}</h1>
<p class="muted">{_e(plan.split)} split of split definition {_e(data.split.name)} (seed {data.split.seed}),
{plan.width}x{plan.height} JPEG, made by tol {_e(data.tol_version)}. Every number below comes from the catalog.</p>
<div class="summary">{summary}</div>
<nav>{nav}</nav>
{sections}
</body></html>
"""
