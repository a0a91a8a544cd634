"""The permission table: docs/permissions.md and longops.domain.security.PERMISSIONS say the
same thing, the decision reads the table, and every public core method names an action."""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from longops.core import (
    CompanyService,
    InboxService,
    MaintenanceService,
    NotificationSetupService,
    OperationService,
    ReadModelService,
    SchemaService,
    SecurityService,
    SessionService,
)
from longops.domain.errors import ValidationError
from longops.domain.security import (
    PERMISSIONS,
    Action,
    Actor,
    PermissionSet,
    Reach,
    Rule,
    Scope,
    Verdict,
    companies_for,
    decide,
    satisfies,
)

ROOT = Path(__file__).parents[2]
SETS = list(PermissionSet)
Cells = dict[str, tuple[str, tuple[str, ...]]]
"""action -> (scope, the cells in the order of SETS), as the documentation prints them."""


def documented() -> Cells:
    text = (ROOT / "docs" / "permissions.md").read_text()
    block = text.split("<!-- permission-table", 1)[1].split("<!-- end permission-table", 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    header = next(line for line in block.splitlines() if line.startswith("| action"))
    assert [c.strip() for c in header.strip("|").split("|")][3:] == [s.value for s in SETS]
    table: Cells = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        action = cells[0].strip("`")
        assert action not in table, f"{action} is documented twice"
        table[action] = (cells[2], tuple(cells[3:]))
    return table


def in_python(permissions: Mapping[str, Rule] = PERMISSIONS) -> Cells:
    return {
        action: (rule.scope.value, tuple(rule.cells[s].value for s in SETS))
        for action, rule in permissions.items()
    }


def differences(doc: Cells, code: Cells) -> list[str]:
    out = [f"{a}: only in the documentation" for a in doc.keys() - code.keys()]
    out += [f"{a}: only in the Python table" for a in code.keys() - doc.keys()]
    out += [f"{a}: {doc[a]} != {code[a]}" for a in doc.keys() & code.keys() if doc[a] != code[a]]
    return sorted(out)


def test_documentation_and_python_table_agree() -> None:
    assert differences(documented(), in_python()) == []


def test_a_flipped_cell_is_noticed() -> None:
    # The check above can fail: change one cell of the Python table and it reports it.
    flipped = dict(PERMISSIONS)
    hold = PERMISSIONS["hold"]
    flipped["hold"] = Rule(hold.scope, {**hold.cells, PermissionSet.VIEW: Reach.ALL}, hold.what)
    [difference] = differences(documented(), in_python(flipped))
    assert difference == (
        "hold: ('operation', ('-', 'own', 'all', 'all')) "
        "!= ('operation', ('all', 'own', 'all', 'all'))"
    )


def test_documentation_lists_each_action_in_the_table_order() -> None:
    assert list(documented()) == list(PERMISSIONS)


def test_every_action_has_exactly_one_rule() -> None:
    # The enum is the vocabulary; the table gives each word its rule, once.
    assert list(PERMISSIONS) == list(Action)


# Every public method of the core services, and the action of the table it is decided by.
METHOD_ACTIONS: Mapping[str, str] = {
    "OperationService.build": "enqueue",
    "OperationService.enqueue": "enqueue",
    "OperationService.enqueue_checked": "enqueue",
    "OperationService.enqueue_many": "enqueue",
    "OperationService.get": "get_operation",
    "OperationService.list_operations": "list_operations",
    "OperationService.count_operations": "count_operations",
    "OperationService.attempts": "list_attempts",
    "OperationService.events": "list_events",
    "OperationService.company_events": "list_operations",
    "SessionService.drain_session": "drain_session",
    "OperationService.progress_history": "list_events",
    "OperationService.wait_reasons": "list_operations",
    "OperationService.wait_context": "list_operations",
    "OperationService.estimated": "list_operations",
    "OperationService.describe": "list_operations",
    "OperationService.set_ready": "set_ready",
    "OperationService.restart": "restart",
    "OperationService.run_now": "run_now",
    "OperationService.hold": "hold",
    "OperationService.cancel": "cancel",
    "OperationService.delete": "delete",
    "OperationService.undelete": "delete",  # its deleter only (the store matches deleted_by)
    "OperationService.remove_failed": "remove_failed",
    "CompanyService.add_company": "add_company",
    "CompanyService.disable_company": "disable_company",
    "CompanyService.list_companies": "list_companies",
    "CompanyService.set_category": "set_category",
    "CompanyService.delete_category": "set_category",
    "CompanyService.list_categories": "list_categories",
    "CompanyService.pause_queue": "pause_queue",
    "CompanyService.resume_queue": "pause_queue",
    "CompanyService.paused_queues": "list_paused_queues",
    "SessionService.list_sessions": "list_sessions",
    "SessionService.fleet_metrics": "list_sessions",
    "SessionService.session_events": "list_sessions",
    "SessionService.check_worker": "run_worker",
    "SchemaService.migrate": "maintain_schema",
    "SchemaService.check": "maintain_schema",
    "SchemaService.guard_start": "maintain_schema",
    "SchemaService.migration_status": "maintain_schema",
    "SchemaService.migration_sql": "maintain_schema",
    "MaintenanceService.start": "set_maintenance",
    "MaintenanceService.stop": "set_maintenance",
    "MaintenanceService.status": "read_maintenance",
    "OperationService.update_operation": "update_operation",
    "ReadModelService.list_attempts": "list_log_entries",
    "OperationService.delete_log_entries": "delete_log_entries",
    "ReadModelService.overview": "list_operations",
    "ReadModelService.status_counts": "count_operations",
    "ReadModelService.running_for_user": "list_operations",
    "ReadModelService.category_activity": "list_categories",
    "SessionService.session_operations": "list_sessions",
    "InboxService.notifications": "list_notifications",
    "InboxService.unread_notifications": "list_notifications",
    "InboxService.mark_notifications_read": "mark_notifications_read",
    "SecurityService.add_user": "add_user",
    "SecurityService.list_users": "list_users",
    "SecurityService.get_user": "list_users",
    "SecurityService.disable_user": "disable_user",
    "SecurityService.enable_user": "disable_user",
    "SecurityService.delete_user": "delete_user",
    "SecurityService.grant": "grant_permission",
    "SecurityService.revoke": "grant_permission",
    "SecurityService.create_token": "create_token",
    "SecurityService.list_tokens": "list_tokens",
    "SecurityService.revoke_token": "revoke_token",
    "SecurityService.list_audit": "list_audit",
    "SecurityService.export_user": "export_user",
    "SecurityService.forget_user": "forget_user",
    "SecurityService.list_web_sessions": "list_web_sessions",
    "SecurityService.end_web_sessions": "end_web_sessions",
    "SecurityService.contact": "user_contact",
    "SecurityService.set_contact": "user_contact",
    "NotificationSetupService.add_rule": "set_notification_setup",
    "NotificationSetupService.remove_rule": "set_notification_setup",
    "NotificationSetupService.list_rules": "list_notification_setup",
    "NotificationSetupService.add_admin": "set_notification_setup",
    "NotificationSetupService.remove_admin": "set_notification_setup",
    "NotificationSetupService.list_admins": "list_notification_setup",
    "NotificationSetupService.add_channel": "set_notification_setup",
    "NotificationSetupService.remove_channel": "set_notification_setup",
    "NotificationSetupService.list_channels": "list_notification_setup",
    "NotificationSetupService.test_channel": "set_notification_setup",
    "NotificationSetupService.list_deliveries": "list_notification_setup",
    "NotificationSetupService.retry_delivery": "set_notification_setup",
    "NotificationSetupService.mute_rule": "set_notification_preferences",
    "NotificationSetupService.muted_rules": "list_notifications",
    "NotificationSetupService.my_rules": "list_notifications",
    "NotificationSetupService.has_email_channel": "list_notifications",
    "NotificationSetupService.set_email_channel": "set_notification_setup",
    "NotificationSetupService.email_channel": "list_notification_setup",
}
SERVICES: dict[str, type] = {
    c.__name__: c
    for c in (
        OperationService,
        CompanyService,
        SessionService,
        SchemaService,
        ReadModelService,
        InboxService,
        SecurityService,
        NotificationSetupService,
        MaintenanceService,
    )
}
# Methods that make an actor rather than act for one.
MAKE_ACTORS = {
    "SecurityService.actor_for",
    "SecurityService.authenticate_token",
    "SecurityService.authenticate_password",
    "SecurityService.authenticate_session",
    # A sign-in's own record, started and ended by the one who proved it (no actor yet),
    # and the service's set-up by the process that serves it.
    "SecurityService.start_session",
    "SecurityService.end_session",
    "SecurityService.configure",
}


def public_methods() -> set[str]:
    found = set()
    for cls in SERVICES.values():
        for name, _ in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_") and name != "as_actor":
                found.add(f"{cls.__name__}.{name}")
    return found


def test_every_public_core_method_is_decided_by_a_table_action() -> None:
    assert public_methods() - MAKE_ACTORS == set(METHOD_ACTIONS)
    # (act_on_behalf and force_cancel are checked inside enqueue, set_ready and cancel.)
    assert set(METHOD_ACTIONS.values()) | {"act_on_behalf", "force_cancel"} == set(PERMISSIONS)


def test_no_method_asks_who_is_calling() -> None:
    # Services are bound to one actor (as_actor); a per-call actor would be a second way in.
    for qualified in METHOD_ACTIONS:
        cls_name, name = qualified.split(".")
        cls = SERVICES[cls_name]
        assert "actor" not in inspect.signature(getattr(cls, name)).parameters, qualified


# -- the decision itself ---------------------------------------------------------------------

ALICE = Actor.for_user("alice", [("A", PermissionSet.USER), ("B", PermissionSet.VIEW)])


@pytest.mark.parametrize(
    ("action", "company", "owner", "verdict"),
    [
        ("hold", "A", "alice", Verdict.ALLOWED),
        ("hold", "A", "bob", Verdict.DENIED),
        ("hold", "B", "alice", Verdict.DENIED),  # VIEW in B: sees it, may not act
        ("hold", "C", "alice", Verdict.HIDDEN),
        ("get_operation", "B", "bob", Verdict.ALLOWED),
        ("enqueue", "A", None, Verdict.ALLOWED),
        ("enqueue", "B", None, Verdict.DENIED),
        ("list_audit", "A", None, Verdict.DENIED),
        ("add_user", None, None, Verdict.DENIED),
        ("create_token", None, "alice", Verdict.ALLOWED),
        ("create_token", None, "bob", Verdict.DENIED),
    ],
)
def test_decide(action: str, company: str | None, owner: str | None, verdict: Verdict) -> None:
    assert decide(ALICE, action, company=company, owner=owner) is verdict


def test_the_local_actor_is_super_everywhere() -> None:
    local = Actor.local()
    assert all(decide(local, a, company="X", owner="y") is Verdict.ALLOWED for a in PERMISSIONS)
    assert companies_for(local, "list_operations") is None
    assert local.name == "local super actor"


def test_companies_for_reads_the_table() -> None:
    admin_a = Actor.for_user("a", [("A", PermissionSet.ADMIN), ("B", PermissionSet.VIEW)])
    assert companies_for(admin_a, "list_operations") == {"A", "B"}
    assert companies_for(admin_a, "list_audit") == {"A"}
    assert companies_for(Actor.for_user("nobody"), "list_operations") == frozenset()


def test_a_company_scoped_decision_needs_the_company() -> None:
    with pytest.raises(ValueError, match="needs the target's company"):
        decide(ALICE, "hold")


def test_required_permission_is_ordered() -> None:
    assert satisfies(ALICE, "A", None)
    assert satisfies(ALICE, "A", PermissionSet.VIEW)
    assert satisfies(ALICE, "A", PermissionSet.USER)
    assert not satisfies(ALICE, "A", PermissionSet.ADMIN)
    assert not satisfies(ALICE, "B", PermissionSet.USER)
    assert satisfies(Actor.local(), "A", PermissionSet.SUPER)
    assert PermissionSet.ADMIN.includes(PermissionSet.USER)
    assert not PermissionSet.USER.includes(PermissionSet.ADMIN)


def test_permission_set_names_are_checked() -> None:
    assert PermissionSet.parse(" jobqueue-admin ") is PermissionSet.ADMIN
    with pytest.raises(ValidationError) as raised:
        PermissionSet.parse("JOBQUEUE-GOD")
    assert raised.value.field == "permission_set"
    with pytest.raises(ValidationError, match="SUPER is global"):
        Actor.for_user("x", [("A", PermissionSet.SUPER)])


def test_the_table_refuses_cells_that_mean_nothing() -> None:
    assert all(set(rule.cells) == set(PermissionSet) for rule in PERMISSIONS.values())
    company_own = [
        a
        for a, r in PERMISSIONS.items()
        if r.scope in (Scope.COMPANY, Scope.GLOBAL) and Reach.OWN in r.cells.values()
    ]
    assert company_own == []


def test_table_is_printed_with_its_markers() -> None:
    text = (ROOT / "docs" / "permissions.md").read_text()
    assert re.search(r"<!-- permission-table.*-->", text)
    assert "<!-- end permission-table -->" in text
