"""No cross-company leak: two companies are seeded with operations, attempts, categories and
audit rows, and every read path of core is asked, as a user of one company, for the other's.

A user who is JOBQUEUE-ADMIN in A (the most a company grants) must see A's rows only: by
id, by entry number, in lists with and without filters, in counts, attempts, categories,
companies and the audit log; and global reads (sessions, users, tokens, exports) are
refused. ``test_every_read_path_is_probed`` fails when core gains a read that this file does
not ask.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from longops import EnqueueRequest, FrozenClock, Longops, NotFound, ValidationError
from longops.app import ActorView
from longops.core import (
    CompanyService,
    InboxService,
    OperationService,
    ReadModelService,
    SchemaService,
    SecurityService,
    SessionService,
)
from longops.domain.errors import PermissionDenied
from longops.domain.operation import Operation
from longops.domain.security import PermissionSet
from longops.domain.status import Status
from longops.store.base import OperationQuery
from longops.testing import Runner


@dataclass
class Seeded:
    app: Longops
    alice: ActorView
    mine: list[Operation]
    theirs: list[Operation]


@pytest.fixture
def seeded(db_url: str) -> Iterator[Seeded]:
    app = Longops(db_url, clock=FrozenClock())
    app.task(name="ok")(lambda: None)

    @app.task(name="fails")
    def fails() -> None:
        raise ValueError("no")

    made: dict[str, list[Operation]] = {"A": [], "B": []}
    for company in ("A", "B"):
        app.add_company(company)
        app.set_category("CAT", company=company)
        svc = app.service
        for task, hold in [("ok", False), ("fails", False), ("ok", True)]:
            made[company].append(
                svc.enqueue(EnqueueRequest(task=task, company=company, on_hold=hold))
            )
        made[company].append(
            svc.enqueue(EnqueueRequest(task="ok", company=company, dedup_key="nightly"))
        )
    Runner(app).run_until_idle()
    for company in ("A", "B"):
        app.service.hold(made[company][1].id)  # it failed: audit rows in each company
        app.service.set_ready(made[company][1].id)
    app.security.add_user("alice", grants=[("A", PermissionSet.ADMIN)])
    app.security.add_user("bea", grants=[("B", PermissionSet.ADMIN)])
    app.security.create_token("bea")
    yield Seeded(app, app.as_user("alice"), made["A"], made["B"])
    app.close()


def _ids(ops: list[Operation]) -> set[Any]:
    return {op.id for op in ops}


# Each probe asks one read path, as alice, for company B's data, and checks the answer.
Probe = Callable[[Seeded], None]
PROBES: dict[str, Probe] = {}


def probe(*methods: str) -> Callable[[Probe], Probe]:
    def register(fn: Probe) -> Probe:
        for method in methods:
            PROBES[method] = fn
        return fn

    return register


@probe("OperationService.get")
def _get(s: Seeded) -> None:
    svc = s.alice.service
    for op in s.theirs:
        for ref in (op.id, str(op.id), op.entry_no, str(op.entry_no)):
            with pytest.raises(NotFound):
                svc.get(ref)
            with pytest.raises(NotFound):
                svc.get(ref, company="B")
    assert svc.get(s.mine[0].entry_no).id == s.mine[0].id
    with pytest.raises(NotFound):
        s.alice.get(s.theirs[0].id)  # the library's handle path too


@probe("OperationService.list_operations")
def _list(s: Seeded) -> None:
    svc = s.alice.service
    everything = svc.list_operations(OperationQuery(limit=1000))
    assert {op.company for op in everything} == {"A"}
    assert _ids(everything) == _ids(s.mine)
    assert svc.list_operations(OperationQuery(company="B")) == []
    assert svc.list_operations(OperationQuery(companies=frozenset({"A", "B"}))) != []
    assert {
        op.company for op in svc.list_operations(OperationQuery(companies=frozenset({"A", "B"})))
    } == {"A"}
    assert svc.list_operations(OperationQuery(companies=frozenset({"B"}))) == []
    for status in Status:
        listed = svc.list_operations(OperationQuery(statuses=(status,)))
        assert {op.company for op in listed} <= {"A"}
    assert {op.company for op in svc.list_operations(OperationQuery(task="ok"))} == {"A"}
    assert {op.company for op in svc.list_operations(OperationQuery(after_entry_no=0))} == {"A"}


@probe("OperationService.count_operations")
def _count(s: Seeded) -> None:
    svc = s.alice.service
    assert svc.count_operations() == s.app.service.count_operations("A")
    assert sum(svc.count_operations().values()) == len(s.mine)
    assert set(svc.count_operations("B").values()) == {0}


@probe("OperationService.attempts")
def _attempts(s: Seeded) -> None:
    for op in s.theirs:
        with pytest.raises(NotFound):
            s.alice.service.attempts(op.id)
    assert {a.company for a in s.alice.service.attempts(s.mine[0].id)} == {"A"}


@probe("OperationService.events", "OperationService.progress_history")
def _timeline(s: Seeded) -> None:
    for op in s.theirs:
        with pytest.raises(NotFound):
            s.alice.service.events(op.id)
        with pytest.raises(NotFound):
            s.alice.service.progress_history(op.id)
    assert {e.company for e in s.alice.service.events(s.mine[0].id)} <= {"A"}


@probe("OperationService.company_events")
def _company_timeline(s: Seeded) -> None:
    with pytest.raises(ValidationError, match="company: must be an existing company"):
        s.alice.service.company_events("B")
    assert {e.company for e in s.alice.service.company_events("A")} <= {"A"}


@probe("OperationService.wait_reasons", "OperationService.estimated", "OperationService.describe")
def _derived(s: Seeded) -> None:
    # Handed another company's operations (read by someone else), these say nothing of them.
    svc = s.alice.service
    theirs = list(s.theirs)
    assert set(svc.wait_reasons(theirs)) == set()
    assert set(svc.estimated(theirs)) == set()
    assert svc.describe(theirs) == []
    mine = list(s.mine)
    assert {d["company"] for d in svc.describe(mine)} == {"A"}
    assert set(svc.estimated(mine)) == {op.id for op in mine}


@probe("CompanyService.list_categories")
def _categories(s: Seeded) -> None:
    assert s.alice.companies.list_categories("B") == []
    assert [c.company for c in s.alice.companies.list_categories("A")] == ["A"]


@probe("CompanyService.list_companies")
def _companies(s: Seeded) -> None:
    assert [c.name for c in s.alice.companies.list_companies()] == ["A"]


@probe("CompanyService.paused_queues")
def _paused(s: Seeded) -> None:
    s.app.companies.pause_queue("exports")
    # Queue names are global set-up, not a company's rows: every user may see them.
    assert s.alice.companies.paused_queues() == frozenset({"exports"})


@probe("SessionService.list_sessions", "SessionService.session_events")
def _sessions(s: Seeded) -> None:
    with pytest.raises(PermissionDenied):
        s.alice.sessions.list_sessions()
    with pytest.raises(PermissionDenied):
        s.alice.sessions.session_events()
    # The fleet's figures name every company: SUPER only.
    with pytest.raises(PermissionDenied):
        s.alice.sessions.fleet_metrics()


@probe("SchemaService.migration_status", "SchemaService.migration_sql")
def _schema(s: Seeded) -> None:
    with pytest.raises(PermissionDenied):
        s.alice.schema.migration_status()
    with pytest.raises(PermissionDenied):
        s.alice.schema.migration_sql()


@probe("SecurityService.list_audit")
def _audit(s: Seeded) -> None:
    entries = s.alice.security.list_audit(limit=1000)
    assert entries
    assert {e.company for e in entries} == {"A"}
    assert s.alice.security.list_audit(company="B") == []
    everything = s.app.security.list_audit(limit=1000)
    assert {e.company for e in everything} >= {"A", "B", None}


@probe("SecurityService.list_users", "SecurityService.get_user")
def _users(s: Seeded) -> None:
    with pytest.raises(PermissionDenied):
        s.alice.security.list_users()
    with pytest.raises(PermissionDenied):
        s.alice.security.get_user("bea")
    assert s.alice.security.get_user("alice").name == "alice"


@probe("SecurityService.list_tokens")
def _tokens(s: Seeded) -> None:
    with pytest.raises(PermissionDenied):
        s.alice.security.list_tokens("bea")
    assert s.alice.security.list_tokens("alice") == []


@probe("SecurityService.list_web_sessions")
def _web_sessions(s: Seeded) -> None:
    s.app.security.start_session("bea")
    with pytest.raises(PermissionDenied):
        s.alice.security.list_web_sessions("bea")
    assert s.alice.security.list_web_sessions("alice") == []


@probe("SecurityService.export_user")
def _export(s: Seeded) -> None:
    with pytest.raises(PermissionDenied):
        s.alice.security.export_user("bea")


def _notify(s: Seeded, company: str, user: str) -> Operation:
    """An operation of ``user`` in ``company`` that ends (cancelled): one notification."""
    op = s.app.service.enqueue(EnqueueRequest(task="ok", company=company, user=user, on_hold=True))
    return s.app.service.cancel(op.id)


@probe("InboxService.notifications", "InboxService.unread_notifications")
def _notifications(s: Seeded) -> None:
    # alice's own operation in B (enqueued for her by SUPER) ends: still not hers to read
    # through A, and B itself looks like a company that does not exist.
    in_a, in_b = _notify(s, "A", "alice"), _notify(s, "B", "alice")
    seen = s.alice.inbox.notifications("A", limit=1000)
    assert [n.operation_id for n in seen] == [in_a.id]
    assert s.alice.inbox.unread_notifications("A") == 1
    for read in (s.alice.inbox.notifications, s.alice.inbox.unread_notifications):
        with pytest.raises(ValidationError, match="company: must be an existing company"):
            read("B")
    assert in_b.id in {n.operation_id for n in s.app.store.notifications_since(0)}


@probe("ReadModelService.list_attempts")
def _log_entries(s: Seeded) -> None:
    entries = s.alice.read_models.list_attempts("A", limit=1000)
    assert entries
    assert {e.attempt.company for e in entries} == {"A"}
    with pytest.raises(ValidationError, match="company: must be an existing company"):
        s.alice.read_models.list_attempts("B")
    with pytest.raises(NotFound):
        s.alice.read_models.list_attempts("A", operation_id=s.theirs[1].id)


@probe("ReadModelService.overview")
def _overview(s: Seeded) -> None:
    mine = s.alice.read_models.overview("A")
    assert mine == s.app.read_models.overview("A")  # what SUPER sees of A, nothing of B
    assert sum(b.finished + b.failed for b in mine.per_hour) == len(
        s.app.read_models.list_attempts("A", limit=1000)
    )
    with pytest.raises(ValidationError, match="company: must be an existing company"):
        s.alice.read_models.overview("B")


@probe("ReadModelService.status_counts")
def _status_counts(s: Seeded) -> None:
    counts = s.alice.read_models.status_counts("A")
    assert sum(counts.values()) == len(s.mine)
    # A query naming B is narrowed to the actor's companies, not widened.
    wide = OperationQuery(companies=frozenset({"A", "B"}))
    assert s.alice.read_models.status_counts("A", query=wide) == counts
    with pytest.raises(ValidationError, match="company: must be an existing company"):
        s.alice.read_models.status_counts("B")


@probe("ReadModelService.running_for_user")
def _running(s: Seeded) -> None:
    assert s.alice.read_models.running_for_user("A") == []
    with pytest.raises(ValidationError, match="company: must be an existing company"):
        s.alice.read_models.running_for_user("B")


@probe("ReadModelService.category_activity")
def _category_activity(s: Seeded) -> None:
    assert s.alice.read_models.category_activity("B") == {}
    assert {a.company for a in s.alice.read_models.category_activity("A").values()} == {"A"}


@probe("SessionService.session_operations")
def _session_operations(s: Seeded) -> None:
    with pytest.raises(PermissionDenied):
        s.alice.sessions.session_operations()


READ_PREFIXES = (
    "get",
    "list",
    "count",
    "attempts",
    "paused",
    "session",
    "export",
    "migration",
    "events",
    "company_events",
    "progress_history",
    "wait_reasons",
    "estimated",
    "describe",
    "overview",
    "status_counts",
    "running_for_user",
    "category_activity",
    "notifications",
    "unread_notifications",
)


def read_methods() -> set[str]:
    found = set()
    services = (
        OperationService,
        CompanyService,
        SessionService,
        SchemaService,
        ReadModelService,
        InboxService,
        SecurityService,
    )
    for cls in services:
        for name, _ in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith(READ_PREFIXES):
                found.add(f"{cls.__name__}.{name}")
    return found


def test_every_read_path_is_probed() -> None:
    assert read_methods() == set(PROBES)


@pytest.mark.parametrize("method", sorted(PROBES))
def test_no_read_path_leaks_another_company(seeded: Seeded, method: str) -> None:
    PROBES[method](seeded)


def test_no_action_reaches_another_company(seeded: Seeded) -> None:
    svc = seeded.alice.service
    held = seeded.theirs[2]
    for act in (svc.hold, svc.set_ready, svc.restart, svc.run_now, svc.cancel, svc.delete):
        with pytest.raises(NotFound):
            act(held.id)
    assert seeded.app.service.get(held.id).status is held.status
    with pytest.raises(Exception, match="company: must be an existing company"):
        svc.enqueue(EnqueueRequest(task="ok", company="B"))
    with pytest.raises(Exception, match="company: must be an existing company"):
        svc.remove_failed("B")
    with pytest.raises(Exception, match="company: must be an existing company"):
        seeded.alice.companies.set_category("B", "X")
    with pytest.raises(NotFound):
        svc.update_operation(held.id, description="not yours")
    with pytest.raises(Exception, match="company: must be an existing company"):
        svc.delete_log_entries("B", older_than_days=0)
    with pytest.raises(Exception, match="company: must be an existing company"):
        seeded.alice.inbox.mark_notifications_read("B")
    assert seeded.app.read_models.list_attempts("B", limit=1000) != []
    # The same dedup key in A does not hand back B's operation.
    again = svc.enqueue(EnqueueRequest(task="ok", company="A", dedup_key="nightly"))
    assert again.company == "A"
    assert again.id not in _ids(seeded.theirs)
