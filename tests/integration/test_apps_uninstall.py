"""Uninstalling an app and exporting its history, on both databases (issue 15): its
recurring, ready and running operations are handled as docs/apps.md says, other apps'
operations are untouched, its categories go once no operation names them, the history
is kept (or purged after an export), every step is audited; and the per-task
``worker_wait`` after which an operation no worker can run fails."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from apps import crm_app
from cli_inprocess import run_longops
from longops import Longops, Status
from longops.domain.operation import CancelMode
from longops.domain.recurrence import Recurrence
from longops.domain.status import StatusReason
from procs import wait_for


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The command in this process: these tests are about what it prints and its exit code."""
    environ = dict(os.environ)
    environ.pop("LONGOPS_APP", None)
    return run_longops(["--database-url", db_url, *args], env=environ)


@pytest.fixture
def crm(db_url: str) -> Iterator[Longops]:
    app = Longops(db_url, name="crm", version="3.1")
    app.registry.add(crm_app.sync, name="crm.sync")
    app.registry.add(crm_app.long, name="crm.long", category="CRMSYNC")
    app.set_category("CRMSYNC", max_concurrent=2)
    yield app
    app.close()


def test_uninstall_holds_cancels_and_keeps_history_then_purges_after_export(
    crm: Longops, db_url: str, tmp_path: Path
) -> None:
    other = Longops(db_url, name="shop", version="1")
    other.registry.add(lambda who: who, name="shop.greet")
    later = crm.clock.now() + timedelta(hours=1)

    worker = crm.worker(concurrency=2, poll_interval=0.1, heartbeat_interval=0.2)
    worker.start()
    try:
        done = crm.enqueue("crm.sync", 1)
        assert done.wait(timeout=30).status is Status.FINISHED
        running = crm.enqueue("crm.long", 60)
        wait_for(lambda: running.status is Status.IN_PROCESS, timeout=30, what="running")
        ready = crm.enqueue("crm.sync", 2, earliest_start_at=later)
        recurring = crm.enqueue(
            "crm.sync", 3, recurrence=Recurrence(minutes_between_runs=60), earliest_start_at=later
        )
        untouched = other.enqueue("shop.greet", "x", earliest_start_at=later)
        listed = {a.name: a for a in crm.apps.list_apps()}
        assert [t.name for t in listed["crm"].tasks] == ["crm.long", "crm.sync"]

        # Uninstall for every company, holding (the default).
        out = cli(db_url, "apps", "uninstall", "crm", "--all", "--json")
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert set(report["held"]) == {str(ready.id), str(recurring.id)}
        assert report["cancel_requested"] == [str(running.id)]
        assert report["kept"] == 1  # the finished one: history
        assert ready.refresh().status is Status.ON_HOLD
        assert recurring.refresh().status is Status.ON_HOLD  # its schedule stops
        cancelled = wait_for(
            lambda: running.refresh() if running.status is Status.CANCELLED else None,
            timeout=30,
            what="the running one is cancelled through the ladder",
        )
        assert cancelled.cancel_mode in (CancelMode.COOPERATIVE, CancelMode.FORCED)
        assert done.refresh().status is Status.FINISHED  # history kept
        assert untouched.refresh().status is Status.READY  # another app's
        # Its category stays while operations (its history) name it.
        assert report["categories_removed"] == []
        assert [c.code for c in crm.companies.list_categories()] == ["CRMSYNC"]
    finally:
        worker.stop(grace=5)

    # Purging needs an export first.
    refused = cli(db_url, "apps", "uninstall", "crm", "--all", "--cancel", "--purge-after", "0")
    assert refused.returncode == 2
    assert "export app crm first" in refused.stderr

    export = tmp_path / "crm.jsonl"
    out = cli(db_url, "apps", "export", "crm", "--output", str(export))
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    ops = {r["id"]: r for r in lines if r["kind"] == "operation"}
    assert set(ops) == {str(i.id) for i in (done, running, ready, recurring)}
    assert {r["status"] for r in ops.values()} == {"finished", "cancelled", "on_hold"}
    entries = [r for r in lines if r["kind"] == "event"]
    assert {r["operation_id"] for r in entries} >= {str(done.id), str(running.id)}

    # Enqueued after the export: never exported, so never purged.
    unexported = [crm.enqueue("crm.sync", 9, earliest_start_at=later) for _ in range(2)]
    out = cli(
        db_url, "apps", "uninstall", "crm", "--all", "--cancel", "--purge-after", "0", "--json"
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report["cancelled"]) == {str(i.id) for i in (ready, recurring, *unexported)}
    assert report["purged"] == 4
    assert [u.refresh().status for u in unexported] == [Status.CANCELLED] * 2
    assert report["categories_removed"] == ["default/CRMSYNC"]
    assert crm.companies.list_categories() == []
    assert untouched.refresh().status is Status.READY
    actions = [e.action for e in crm.security.list_audit()]
    for action in ("uninstall_app", "export_app", "remove_app_categories", "hold", "cancel"):
        assert action in actions, action
    other.close()


def test_an_operation_no_worker_can_run_fails_after_its_worker_wait(crm: Longops) -> None:
    # A task whose app recorded a worker_wait; only a worker without the task runs.
    crm.registry.add(lambda: None, name="crm.rare", worker_wait=1)
    crm.migrate()
    # `db upgrade` recorded the flags of migration 0012, which older code reads.
    assert crm.store.applied_migrations()[12][1] == {"compatible", "online"}
    crm.schema.guard_start(crm.app_infos())
    shop = Longops(crm.database_url, name="shop", version="1")
    shop.registry.add(lambda: None, name="shop.greet")
    worker = shop.worker(concurrency=1, poll_interval=0.1, schema_check_interval=0.1)
    worker.start()
    try:
        op = crm.enqueue("crm.rare")
        failed = wait_for(
            lambda: op.refresh() if op.status is Status.ERROR else None,
            timeout=30,
            what="the worker_wait deadline",
        )
        assert failed.status_reason is StatusReason.NO_WORKER_FOR_TASK
        assert failed.last_error is not None
        assert "crm.rare" in failed.last_error
        assert failed.attempt_count == 0  # it never ran
        waiting = crm.enqueue("crm.sync", 1)  # no worker_wait: it waits as long as it takes
        assert waiting.status is Status.READY
    finally:
        worker.stop(grace=5)
        shop.close()
