"""Demo tasks: what ``longops demo`` runs, and a ready-made ``--app`` for trying the CLI.

Example::

    longops --app longops.demo.app:app db upgrade
    longops --app longops.demo.app:app enqueue demo.post_invoices --args '["2026-01", 12]'
    longops --app longops.demo.app:app worker
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from longops.app import Longops
from longops.domain.recurrence import Recurrence
from longops.domain.security import PermissionSet
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


# -- the pages demo's set-up ----------------------------------------------------------------
DEMO_COMPANIES = (
    ("CRONUS", "CRONUS International Ltd.", "Europe/London"),
    ("FABRIKAM", "Fabrikam, Inc.", "America/New_York"),
)


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A sign-in the demo prints: who, the password, and what they may do."""

    name: str
    password: str
    grants: tuple[tuple[str, PermissionSet], ...]
    is_super: bool = False

    @property
    def summary(self) -> str:
        if self.is_super:
            return "SUPER: every company, worker sessions and Drain"
        return ", ".join(f"{s.value} in {c}" for c, s in self.grants)


def seed_demo(app: Longops) -> list[DemoUser]:
    """Two companies, a one-at-a-time POSTING category in each, demo users (with fresh
    random passwords) and operations that show every state once a worker runs them: a long
    multi-step report, a task that fails and retries, one that keeps failing (Error), a
    recurring chore, invoice batches queued behind the POSTING category, a long
    process-isolated job to cancel, one on hold, one scheduled for later, one cancelled.

    Example::

        users = seed_demo(app)          # then start a worker: app.worker().start()
        print(users[0].name, users[0].password)
    """
    for name, display, zone in DEMO_COMPANIES:
        app.add_company(name, display_name=display, time_zone=zone)
        app.set_category("POSTING", description="Invoice posting (one at a time)", company=name)
    users = [
        DemoUser(
            "admin",
            secrets.token_urlsafe(9),
            (("CRONUS", PermissionSet.ADMIN), ("FABRIKAM", PermissionSet.ADMIN)),
        ),
        DemoUser("viewer", secrets.token_urlsafe(9), (("CRONUS", PermissionSet.VIEW),)),
        # Worker sessions serve every company, so only SUPER sees Sessions and Drain.
        DemoUser("super", secrets.token_urlsafe(9), (), is_super=True),
    ]
    for user in users:
        app.security.add_user(
            user.name, password=user.password, grants=user.grants, is_super=user.is_super
        )
    admin = app.as_user("admin")

    def add(
        task: str, description: str, *args: Any, company: str = "CRONUS", **options: Any
    ) -> Any:
        return admin.enqueue(task, *args, company=company, description=description, **options)

    # Long enough that someone trying the pages finds them still running: the report takes
    # about five minutes, the crunch (about 20 rounds a second) about twenty.
    add("demo.render_report", "Year-end report (long, multi-step)", pages=300, seconds_per_page=1)
    add("demo.crunch_numbers", "Crunch cost figures (runs 20 min: cancel it)", rounds=24_000)
    add(
        "demo.sync_catalogue",
        "Sync the catalogue (fails twice, then succeeds)",
        fail_times=2,
        rerun_delay=5,
    )
    add(
        "demo.sync_catalogue",
        "Sync from the old supplier (keeps failing: restart it)",
        fail_times=99,
        max_attempts=2,
        rerun_delay=5,
    )
    add("demo.import_items", "Import items (fails once, resumes from its checkpoint)")
    add("demo.clean_up", "Clean up old export files (every minute)", recurrence=Recurrence.every(1))
    for batch, priority in (("B-1", "low"), ("B-2", "normal"), ("B-3", "high"), ("B-4", "normal")):
        add(
            "demo.post_invoices",
            f"Post invoice batch {batch} ({priority}, queued behind POSTING)",
            batch,
            invoices=200,
            priority=priority,
        )
    add("demo.render_report", "Quarterly report (on hold: edit it, then Set Ready)", on_hold=True)
    add("demo.import_items", "Import items tonight (scheduled)", delay=timedelta(hours=8))
    dropped = add("demo.clean_up", "Clean up the old archive (cancelled)", delay=timedelta(hours=1))
    dropped.cancel(reason="not needed after all")
    add(
        "demo.render_report",
        "Fabrikam month-end report",
        company="FABRIKAM",
        pages=180,
        seconds_per_page=1,
    )
    add("demo.post_invoices", "Fabrikam invoice batch F-1", "F-1", company="FABRIKAM")
    return users
