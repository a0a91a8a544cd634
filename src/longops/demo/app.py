"""Demo tasks: what ``longops demo`` runs, and a ready-made ``--app`` for trying the CLI.

Example::

    longops --app longops.demo.app:app db upgrade
    longops --app longops.demo.app:app enqueue demo.post_invoices --args '["2026-01", 12]'
    longops --app longops.demo.app:app worker
"""

from __future__ import annotations

import time

from longops.app import Longops
from longops.worker.context import RunContext

app = Longops()


@app.task(name="demo.render_report", description="Render the year-end report")
def render_report(ctx: RunContext, pages: int = 8, seconds_per_page: float = 0.5) -> dict[str, int]:
    """A long operation that works through its pages and can be cancelled between them."""
    for page in range(1, pages + 1):
        ctx.check_cancelled()
        ctx.logger.info("rendering page %d of %d", page, pages)
        time.sleep(seconds_per_page)
    return {"pages": pages}


@app.task(
    name="demo.sync_catalogue",
    description="Sync the catalogue from a flaky supplier",
    max_attempts=3,
    rerun_delay=1,
)
def sync_catalogue(ctx: RunContext, fail_times: int = 2) -> str:
    """Fails on its first ``fail_times`` attempts, then succeeds: shows retries."""
    time.sleep(0.3)
    if ctx.attempt <= fail_times:
        raise ConnectionError(f"supplier timed out (attempt {ctx.attempt})")
    return f"synced on attempt {ctx.attempt}"


@app.task(name="demo.post_invoices", category="POSTING", description="Post a batch of invoices")
def post_invoices(batch: str, invoices: int = 10) -> int:
    """Runs one at a time in the POSTING category (Business Central's serialisation)."""
    time.sleep(0.05 * invoices)
    return invoices


@app.task(name="demo.clean_up", description="Clean up old export files")
def clean_up() -> None:
    """A small recurring chore."""
    time.sleep(0.2)
