"""Store contract: apps (issue 15) and maintenance mode, on both databases.

The app registry and its tasks, a session's tasks and the claim's task filter,
``no_worker_for_task``, uninstall/export/purge, the migrations' flags, and the switch the
claim reads in maintenance mode.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from zoneinfo import ZoneInfo

from contract_support import category, claim, finish, get, insert, register, session

from longops.domain.apps import AppInfo, AppTask, ServingSession
from longops.domain.clock import FrozenClock
from longops.domain.security import FrontEnd
from longops.domain.status import Status, StatusReason
from longops.domain.users import AuditEntry
from longops.domain.waiting import WaitCode, wait_reason
from longops.store.base import ClaimParams, Store
from longops.store.migrate import load_migrations


def _audit(clock: FrozenClock, action: str, target: str) -> AuditEntry:
    return AuditEntry(
        at=clock.now(),
        actor="root",
        front_end=FrontEnd.CLI,
        action=action,
        target=target,
        company=None,
        details={},
    )


def test_the_registry_adds_tasks_and_knows_which_live_session_has_them(
    store: Store, clock: FrozenClock
) -> None:
    at = clock.now()
    shop = AppInfo("shop", "1.0", (AppTask("ship", timedelta(seconds=30)), AppTask("bill")))
    store.record_apps([shop], at)
    # An older version seen again keeps the newer one's task list (added, never dropped).
    store.record_apps([AppInfo("shop", "0.9", (AppTask("ship", timedelta(seconds=5)),))], at)
    worker = dataclasses.replace(session(at), tasks=("ship",), code_version="1.0")
    store.register_session(dataclasses.replace(worker, schema_version=13))
    [app] = store.list_apps()
    assert (app.name, app.version, app.seen_at, app.uninstalled_at) == ("shop", "0.9", at, None)
    assert app.tasks == (AppTask("bill"), AppTask("ship", timedelta(seconds=5)))
    assert app.served_by == (str(worker.id),)
    assert app.serving == (ServingSession(str(worker.id), "1.0", missing_tasks=("bill",)),)
    [live] = store.list_sessions(active_only=True)
    assert (live.tasks, live.code_version, live.schema_version) == (("ship",), "1.0", 13)
    store.set_session_tasks(worker.id, ["bill", "ship"])
    assert store.list_sessions()[0].tasks == ("bill", "ship")


def test_the_claim_takes_only_the_sessions_tasks_and_fail_unserved_ends_the_rest(
    store: Store, clock: FrozenClock
) -> None:
    store.record_apps(
        [AppInfo("shop", None, (AppTask("ship", timedelta(seconds=10)),))], clock.now()
    )
    sid = register(store, clock.now())
    store.set_session_tasks(sid, ["bill"])
    ship = insert(store, clock, task="ship")
    bill = insert(store, clock, task="bill")
    at = clock.advance(seconds=1)
    params = ClaimParams(session_id=sid, queues=("default",), limit=10, now=at, tasks=("bill",))
    assert [r.operation.id for r in store.claim(params)] == [bill.id]
    # Within its worker_wait a task nobody has waits; past it, it fails with the reason.
    assert store.fail_unserved(clock.advance(seconds=5)) == []
    assert store.fail_unserved(clock.advance(seconds=10)) == [ship.id]
    failed = get(store, ship)
    assert (failed.status, failed.status_reason) == (Status.ERROR, StatusReason.NO_WORKER_FOR_TASK)
    assert "within 10" in (failed.last_error or "")
    # A session that has the task keeps its operations waiting.
    again = insert(store, clock, task="ship")
    store.set_session_tasks(sid, ["bill", "ship"])
    assert store.fail_unserved(clock.advance(seconds=60)) == []
    assert get(store, again).status is Status.READY


def test_uninstall_export_and_purge_an_apps_operations(store: Store, clock: FrozenClock) -> None:
    store.record_apps([AppInfo("crm", "2", (AppTask("sync"),))], clock.now())
    category(store, "CRM")
    category(store, "FREE")
    done = insert(store, clock, task="sync", category="CRM")
    ready = insert(store, clock, task="sync")
    other = insert(store, clock, task="else")
    assert [o.id for o in store.operations_of_tasks(["sync"], None)] == [done.id, ready.id]
    assert [
        o.id for o in store.operations_of_tasks(["sync"], ["default"], after_entry=done.entry_no)
    ] == [ready.id]
    assert store.operations_of_tasks(["sync"], ["elsewhere"]) == []
    sid = register(store, clock.now())
    [run] = claim(store, sid, clock.advance(seconds=1), limit=1)
    assert run.operation.id == done.id
    assert finish(store, run, clock.advance(seconds=1))
    # The category an operation still names stays.
    assert store.delete_unused_categories("default", ["CRM", "FREE"]) == ["FREE"]
    assert store.app_exported_at("crm") is None
    exported = clock.advance(seconds=1)
    store.mark_app_exported("crm", exported)
    assert store.app_exported_at("crm") == exported
    assert store.app_exported_at("nothing") is None
    # Enqueued after the export and ended: never exported, so never purged.
    clock.advance(seconds=1)
    late = insert(store, clock, task="sync")
    runs = claim(store, sid, clock.advance(seconds=1))
    assert {r.operation.id for r in runs} == {ready.id, late.id, other.id}
    assert finish(store, next(r for r in runs if r.operation.id == late.id), clock.now())
    gone = clock.advance(seconds=1)
    store.mark_app_uninstalled("crm", gone, gone, audit=_audit(clock, "uninstall_app", "crm"))
    [app] = store.list_apps()
    assert app.uninstalled_at == gone
    assert [e.action for e in store.list_audit(None, include_global=True)] == ["uninstall_app"]
    # Only the ended operations of its tasks go, with their history.
    assert store.purge_uninstalled(clock.advance(seconds=1)) == 1
    assert store.get_operation(done.id) is None
    assert store.list_attempts(done.id) == []
    assert get(store, late).status is Status.FINISHED
    assert get(store, ready).status is Status.IN_PROCESS
    assert get(store, other).status is Status.IN_PROCESS
    assert store.purge_uninstalled(clock.now()) == 0
    # Seen again, the app is installed again.
    store.record_apps([AppInfo("crm", "3", (AppTask("sync"),))], clock.now())
    assert store.list_apps()[0].uninstalled_at is None


def test_applied_migrations_carry_their_flags(store: Store) -> None:
    applied = store.applied_migrations()
    migrations = load_migrations(store.dialect)
    assert sorted(applied) == [m.version for m in migrations]
    for m in migrations:
        assert applied[m.version] == (m.name, m.flags if m.version >= 12 else frozenset())
    assert "compatible" in applied[13][1]


def test_maintenance_mode_stops_the_claim_until_it_stops(store: Store, clock: FrozenClock) -> None:
    assert store.maintenance_mode().active is False
    sid = register(store, clock.now())
    op = insert(store, clock)
    started = clock.advance(seconds=1)
    audit = _audit(clock, "start_maintenance", "maintenance")
    mode = store.start_maintenance("upgrade", timedelta(seconds=30), started, audit=audit)
    assert mode is not None
    assert (mode.active, mode.reason, mode.drain_timeout, mode.started_at, mode.stopped_at) == (
        True,
        "upgrade",
        timedelta(seconds=30),
        started,
        None,
    )
    assert store.start_maintenance("again", timedelta(seconds=1), clock.now()) is None
    assert store.maintenance_mode() == mode
    assert claim(store, sid, clock.advance(seconds=1)) == []
    stopped = clock.advance(seconds=1)
    off = store.stop_maintenance(stopped, audit=_audit(clock, "stop_maintenance", "maintenance"))
    assert off is not None
    assert (off.active, off.reason, off.stopped_at) == (False, "upgrade", stopped)
    assert store.stop_maintenance(clock.now()) is None
    assert [r.operation.id for r in claim(store, sid, clock.now())] == [op.id]
    actions = [e.action for e in store.list_audit(None, include_global=True)]
    assert sorted(actions) == ["start_maintenance", "stop_maintenance"]


def test_a_session_that_stopped_claiming_says_why_and_serves_no_queue(
    store: Store, clock: FrozenClock
) -> None:
    sid = register(store, clock.now())
    op = insert(store, clock, task="sync")
    why = "migration 0099 is not declared compatible with older code"
    store.set_session_claim_stopped(sid, why)
    [live] = store.list_sessions(active_only=True)
    assert live.claim_stopped == why
    ctx = store.wait_context(clock.now())
    assert "default" not in ctx.served_queues
    reason = wait_reason(get(store, op), ctx, ZoneInfo("UTC"))
    assert reason is not None
    assert reason.code is WaitCode.NO_WORKER
    assert "stopped claiming" in reason.message
    assert why in reason.message
    # Claiming again: the queue is served, the operation simply due.
    store.set_session_claim_stopped(sid, None)
    assert store.list_sessions()[0].claim_stopped is None
    reason = wait_reason(get(store, op), store.wait_context(clock.now()), ZoneInfo("UTC"))
    assert reason is not None
    assert reason.code is WaitCode.DUE
