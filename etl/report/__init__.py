"""`tol report`: a plan's report page (one offline HTML file) and its dataset card (`README.md`).

`data` reads every number from the catalog (sql/report/report.sql), `contact` draws and reads back a seeded
contact sheet from the shards, `html` lays out the page with Plotly, `card` writes the Hugging Face card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from etl.atomic import atomic_write
from etl.errors import TolError
from etl.progress import Progress
from etl.report import card, contact, data, html

REPORT_STEPS = ("numbers", "contact sheet", "page", "card")


@dataclass
class ReportResult:
    """What `build` wrote."""

    html: Path
    card: Path | None
    samples: int
    shards: int
    contact: int

    def lines(self) -> list[str]:
        """How it reads on the command line."""
        out = [f"report {self.html}: {self.samples:,} samples in {self.shards:,} shards, contact sheet of "
               f"{self.contact} samples"]
        if self.card is not None:
            out.append(f"dataset card {self.card}")
        return out


def build(engine: Engine, plan_name: str, out: Path | None = None, *, contact_count: int = 24, seed: int = 0,
          write_card: bool = True, progress: bool = False) -> ReportResult:
    """Write plan `plan_name`'s report to `out` (default: `report.html` in the plan's folder) and, with
    `write_card`, its dataset card `README.md` in the plan's folder; both atomically."""
    with Progress(len(REPORT_STEPS), "steps", f"report {plan_name}", enabled=progress) as steps:
        numbers = data.gather(engine, plan_name)
        steps.advance()
        folder = Path(numbers.plan.out_dir)
        target = out if out is not None else folder / "report.html"
        for needed in sorted({target.parent, folder} if write_card else {target.parent}):
            if not needed.is_dir():
                raise TolError(f"folder {needed} does not exist: give --out a file in an existing folder "
                               f"(the plan's folder is made by tol shards plan {plan_name})")
        samples = contact.contact_sheet(folder, numbers.done_shards, contact_count, seed)
        steps.advance()
        with atomic_write(target, "w", encoding="utf-8") as handle:
            handle.write(html.render(numbers, samples, seed))
        steps.advance()
        card_path = None
        if write_card:
            card_path = folder / "README.md"
            with atomic_write(card_path, "w", encoding="utf-8") as handle:
                handle.write(card.dataset_card(numbers))
        steps.advance()
    return ReportResult(target, card_path, numbers.written, len(numbers.done_shards), len(samples))
