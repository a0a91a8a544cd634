"""Demo-like multi-step tasks with uneven steps, whose real runs are recorded for the ETA
replay test (``tests/unit/fixtures/record_eta_runs.py`` writes ``eta_runs.json``).

``eta.report`` is shaped like ``demo.render_report``: a quick first step, a long second one
that slows down half way, a short last one. ``eta.import`` has four steps of very different
lengths, the first of them the fastest per item.
"""

from __future__ import annotations

import random
import time

from longops import Longops, RunContext

app = Longops()


def _work(ctx: RunContext, items: int, seconds: float, rng: random.Random, unit: str) -> None:
    ctx.progress(0, total=items, unit=unit)
    for _ in range(items):
        time.sleep(seconds * rng.uniform(0.6, 1.4))
        ctx.advance()


@app.task(name="eta.report", progress_interval=0.2)
def report(ctx: RunContext, pages: int = 40, seconds_per_page: float = 0.1, seed: int = 0) -> int:
    rng = random.Random(seed)
    ctx.step("Collecting figures", 1, 3)
    _work(ctx, pages, seconds_per_page / 4, rng, "pages")
    ctx.step("Rendering pages", 2, 3)
    ctx.progress(0, total=pages, unit="pages")
    for page in range(pages):
        slow = 2.0 if page > pages // 2 else 1.0  # the second half has the charts
        time.sleep(seconds_per_page * slow * rng.uniform(0.7, 1.3))
        ctx.advance()
    ctx.step("Publishing", 3, 3)
    _work(ctx, 5, seconds_per_page, rng, "files")
    return pages


@app.task(name="eta.import", progress_interval=0.2)
def import_rows(
    ctx: RunContext, rows: int = 200, seconds_per_row: float = 0.01, seed: int = 0
) -> int:
    rng = random.Random(seed)
    ctx.step("Scanning", 1, 4)
    _work(ctx, rows, seconds_per_row / 5, rng, "rows")
    ctx.step("Loading", 2, 4)
    _work(ctx, rows, seconds_per_row * 2, rng, "rows")
    ctx.step("Indexing", 3, 4)
    _work(ctx, rows // 2, seconds_per_row, rng, "rows")
    ctx.step("Reporting", 4, 4)
    _work(ctx, 10, seconds_per_row, rng, "files")
    return rows
