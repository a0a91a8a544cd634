"""The contract's guard: every method of the ``Store`` protocol is exercised by a named
contract test that takes the ``store`` fixture, so it runs on SQLite and on PostgreSQL.

``COVERED`` must list exactly the protocol's methods: a method added to a protocol in
``store/protocols/`` fails this test until a contract test calls it and is named here.
Each named test must exist, take ``store``, and call the method itself (or through a
helper of ``contract_support``).
"""

from __future__ import annotations

import ast
from pathlib import Path

from longops.store.base import Store
from longops.store.protocols import NOUNS

HERE = Path(__file__).parent

COVERED: dict[str, tuple[str, ...]] = {
    "apps::test_applied_migrations_carry_their_flags": ("applied_migrations",),
    "apps::test_maintenance_mode_stops_the_claim_until_it_stops": (
        "maintenance_mode",
        "start_maintenance",
        "stop_maintenance",
    ),
    "apps::test_the_claim_takes_only_the_sessions_tasks_and_fail_unserved_ends_the_rest": (
        "fail_unserved",
        "set_session_tasks",
    ),
    "apps::test_a_session_that_stopped_claiming_says_why_and_serves_no_queue": (
        "set_session_claim_stopped",
    ),
    "apps::test_the_registry_adds_tasks_and_knows_which_live_session_has_them": (
        "list_apps",
        "record_apps",
    ),
    "apps::test_uninstall_export_and_purge_an_apps_operations": (
        "app_exported_at",
        "delete_unused_categories",
        "mark_app_exported",
        "mark_app_uninstalled",
        "operations_of_tasks",
        "purge_uninstalled",
    ),
    "claim::test_a_pending_cancel_request_wins_over_going_back_to_ready_or_failing": (
        "list_events",
    ),
    "claim::test_claim_sets_lease_and_logs_attempt": ("claim",),
    "claim::test_finish_and_claim_writes_the_results_and_claims_in_one_call": ("finish_and_claim",),
    "claim::test_claim_skips_paused_queue_until_resumed": (
        "paused_queues",
        "set_queue_paused",
    ),
    "contract::test_apply_action_moves_status": ("apply_action",),
    "contract::test_apply_action_refused_changes_nothing": ("list_attempts",),
    "contract::test_cancel_requested_returns_exactly_the_requested": ("cancel_requested",),
    "contract::test_count_operations": ("count_operations",),
    "contract::test_dedup_releases_key_when_done": ("finish_runs",),
    "contract::test_delete_failed": ("delete_failed",),
    "contract::test_delete_operation": ("delete_operation",),
    "contract::test_restore_operation": ("restore_operation",),
    "contract::test_get_operation_unknown_or_other_company_is_none": ("get_operation",),
    "contract::test_insert_get_list_round_trip_every_field": ("upsert_category",),
    "contract::test_insert_operations_bulk": ("insert_operations_bulk",),
    "contract::test_insert_operations_bulk_with_dedup_keys_keeps_one": ("insert_operations",),
    "contract::test_list_operations_filters": ("list_operations",),
    "contract::test_request_cancel_only_in_process_and_once": ("request_cancel",),
    "notify::test_channels_and_the_personal_email_channel": (
        "delete_notify_channel",
        "get_notify_channel_secret",
        "list_notify_channels",
        "personal_email_channel",
        "set_personal_email_channel",
        "upsert_notify_channel",
    ),
    "notify::test_inbox_holds_a_users_ended_operations_until_read": (
        "count_unread_notifications",
        "last_notification_id",
        "list_notifications",
        "mark_notifications_read",
        "notifications_since",
    ),
    "notify::test_notified_admins_and_contacts": (
        "add_notified_admin",
        "email_recipients",
        "get_user_contact",
        "list_notified_admins",
        "remove_notified_admin",
        "set_user_contact",
        "set_user_state",
    ),
    "notify::test_outbox_expands_into_deliveries_claimed_and_finished_once": (
        "claim_deliveries",
        "count_recent_sends",
        "expand_outbox",
        "finish_delivery",
        "list_deliveries",
        "pending_outbox",
        "retry_delivery",
    ),
    "notify::test_rules_mutes_and_watch_rules": (
        "delete_notify_rule",
        "list_notify_mutes",
        "list_notify_rules",
        "list_watch_rules",
        "set_notify_mute",
        "upsert_notify_rule",
    ),
    "notify::test_watched_conditions_reach_the_outbox_once": ("insert_watched",),
    "reads::test_a_scope_naming_the_company_reads_its_rows": ("scope",),
    "reads::test_an_operation_on_hold_is_edited_and_a_ready_one_is_not": ("update_operation",),
    "reads::test_cancel_requests_are_pushed_where_the_dialect_can": (
        "cancel_listener",
        "close",
    ),
    "reads::test_delete_attempts_removes_ended_history_only": ("delete_attempts",),
    "reads::test_pages_read_models": (
        "category_activity",
        "count_capped",
        "list_company_attempts",
        "list_running",
        "runs_per_hour",
    ),
    "reads::test_list_search_sort_and_grouped_counts": ("count_by_status",),
    "reads::test_request_drain_and_fleet_metrics": (
        "fleet_metrics",
        "list_session_events",
        "request_drain",
    ),
    "reads::test_timelines_after_an_event_id": (
        "company_events_since",
        "events_since",
        "last_entry_no",
        "last_event_id",
    ),
    "reads::test_web_sessions_and_credentials_with_their_user": (
        "get_web_session",
        "insert_token",
        "insert_user",
        "insert_web_session",
        "list_web_sessions",
        "revoke_web_sessions",
        "token_user",
        "touch_web_session",
        "web_session_user",
    ),
    "schema::test_migrate_fresh_database": (
        "get_company",
        "list_companies",
        "migrate",
        "migration_status",
        "schema_is_current",
    ),
    "schema::test_migration_sql": ("migration_sql",),
    "schema::test_session_and_category_checks_hold_in_the_database": ("get_category",),
    "security::test_active_users": ("active_users",),
    "security::test_audit_companies_filter": ("record_audit",),
    "security::test_grant_revoke_state_super_and_delete": (
        "delete_user",
        "grant",
        "list_tokens",
        "revoke",
        "set_password_hash",
        "set_user_super",
    ),
    "security::test_personal_data_and_forget": (
        "forget_user",
        "personal_data",
    ),
    "security::test_tokens_round_trip_touch_and_revoke": (
        "get_token",
        "revoke_token",
        "touch_token",
    ),
    "security::test_users_round_trip_with_grants": (
        "get_password_hash",
        "get_user",
        "list_audit",
        "list_users",
    ),
    "services::test_end_session_records_event_and_state": (
        "end_session",
        "record_session_event",
    ),
    "services::test_expire_operations": ("expire_operations",),
    "services::test_heartbeat_moves_last_heartbeat": ("heartbeat",),
    "services::test_list_sessions_active_only": ("list_sessions",),
    "services::test_mark_lost_sessions_only_the_silent": ("mark_lost_sessions",),
    "services::test_move_start_only_when_expected_start_matches": ("move_start",),
    "services::test_next_due_at": ("next_due_at",),
    "services::test_orphaned_runs_of_lost_and_stopped_sessions": ("orphaned_runs",),
    "services::test_prune_removes_only_old_finished_and_cancelled": ("prune",),
    "services::test_ready_recurring": ("ready_recurring",),
    "services::test_register_session_records_logon": ("register_session",),
    "services::test_session_runs_lists_what_the_database_says_a_session_runs": ("session_runs",),
    "services::test_try_lead_and_resign": (
        "resign",
        "try_lead",
    ),
    "streams::test_writers_done_once_the_writers_of_the_snapshot_have_ended": (
        "writers_done",
        "writers_snapshot",
    ),
    "tracking::test_cancel_overdue_and_run_events_are_fenced": (
        "mark_cancel_overdue",
        "record_run_event",
    ),
    "tracking::test_checkpoint_is_fenced_kept_for_retries_and_cleared_by_success": (
        "save_checkpoint",
    ),
    "tracking::test_progress_is_written_under_the_lease_and_logged": ("flush_progress",),
    "tracking::test_recent_durations_are_of_successful_runs_of_the_task": ("recent_durations",),
    "tracking::test_stall_flag_follows_the_operation_own_stall_after": ("flag_stalled",),
    "tracking::test_wait_context_reads_categories_holders_and_served_queues": ("wait_context",),
    "values::test_an_interrupt_ends_a_wakeups_wait_at_once": ("wakeups",),
    "values::test_categories_round_trip_and_upsert": ("list_categories",),
    "values::test_get_operation_by_entry_no_respects_company": ("get_operation_by_entry_no",),
    "values::test_upsert_company_creates_and_updates": ("upsert_company",),
}
"""Contract tests (``<module>::<test>``, the module named without ``test_store_contract_``)
and the Store methods each exercises."""


def _calls(node: ast.AST, helpers: dict[str, set[str]]) -> set[str]:
    """The attribute calls made in ``node``, and those of the helpers it calls."""
    found: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            if isinstance(n.func, ast.Attribute):
                found.add(n.func.attr)
            elif isinstance(n.func, ast.Name) and n.func.id in helpers:
                found |= helpers[n.func.id]
    return found


def _tests() -> dict[str, tuple[list[str], set[str]]]:
    """Every contract test: its parameters and the calls it makes."""
    support = ast.parse((HERE / "contract_support.py").read_text())
    helpers = {f.name: _calls(f, {}) for f in support.body if isinstance(f, ast.FunctionDef)}
    out: dict[str, tuple[list[str], set[str]]] = {}
    for path in sorted(HERE.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                params = [a.arg for a in node.args.args]
                out[f"{path.stem}::{node.name}"] = (params, _calls(node, helpers))
    return out


def _protocol_methods() -> set[str]:
    return {n for n in dir(Store) if not n.startswith("_") and callable(getattr(Store, n))}


def _module(short: str) -> str:
    return "test_store_contract" if short == "contract" else f"test_store_contract_{short}"


def test_every_store_method_is_exercised_by_a_named_contract_test() -> None:
    named = [(m, test) for test, ms in COVERED.items() for m in ms]
    covered = {m for m, _ in named}
    assert len(covered) == len(named), "a method is named twice"
    methods = _protocol_methods()
    assert sorted(methods - covered) == [], "methods no contract test is named for"
    assert sorted(covered - methods) == [], "names that are no longer Store methods"
    tests = _tests()
    wrong = []
    for method, short in named:
        module, _, test = short.partition("::")
        name = f"{_module(module)}::{test}"
        if name not in tests:
            wrong.append(f"{method}: no test {name}")
            continue
        params, calls = tests[name]
        if "store" not in params:
            wrong.append(f"{method}: {name} does not take the store fixture (both databases)")
        if method not in calls:
            wrong.append(f"{method}: {name} never calls it")
    assert wrong == []


def test_the_store_is_the_union_of_the_nouns() -> None:
    # A method on Store itself (not on a noun) would belong to no room of store/protocols.
    nouns = set().union(*({n for n in dir(p) if not n.startswith("_")} for p in NOUNS))
    assert _protocol_methods() - nouns == {"close"}
    assert set(Store.__mro__[1 : len(NOUNS) + 1]) == set(NOUNS)
