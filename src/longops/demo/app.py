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
    """A long multi-step operation with live progress; cancellable between pages."""
    ctx.step("Collecting figures", 1, 3)
    for part in range(1, 5):
        ctx.progress(part, total=4, unit="ledgers", message=f"ledger {part} of 4")
        time.sleep(seconds_per_page / 2)
    ctx.step("Rendering pages", 2, 3)
    ctx.progress(0, total=pages, unit="pages")
    for page in range(1, pages + 1):
        ctx.logger.info("rendering page %d of %d", page, pages)
        time.sleep(seconds_per_page)
        ctx.advance()  # raises OperationCancelled once the operation is asked to stop
    ctx.step("Publishing", 3, 3)
    time.sleep(seconds_per_page)
    return {"pages": pages}


@app.task(
    name="demo.import_items",
    description="Import the item catalogue (resumes after a failure)",
    max_attempts=2,
    rerun_delay=1,
)
def import_items(ctx: RunContext, items: int = 1000, fail_at: int = 550) -> dict[str, int]:
    """Checkpoints every 100 items; its first attempt fails part way and the retry resumes
    from the last checkpoint instead of starting over."""
    resumed_from = (ctx.resume_state or {}).get("next", 0)
    if resumed_from:
        ctx.logger.info("resuming at item %d", resumed_from)
    ctx.progress(resumed_from, total=items, unit="items")
    for item in range(resumed_from, items):
        if ctx.attempt == 1 and item == fail_at:
            raise ConnectionError(f"catalogue server went away at item {item}")
        time.sleep(0.002)
        ctx.advance()
        if (item + 1) % 100 == 0:
            ctx.checkpoint({"next": item + 1})
    return {"resumed_from": resumed_from, "imported_this_attempt": items - resumed_from}


@app.task(
    name="demo.crunch_numbers",
    description="Crunch cost figures in a child process",
    isolation="process",
    cancel_grace=5,
)
def crunch_numbers(ctx: RunContext, rounds: int = 20) -> int:
    """Process-isolated: a cancel that is ignored past 5 s would kill the child."""
    total = 0
    ctx.progress(0, total=rounds, unit="rounds")
    for _ in range(rounds):
        total += sum(i * i for i in range(20_000))
        time.sleep(0.05)
        ctx.advance()
    return total


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
