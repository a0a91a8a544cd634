"""Data classification: every column of every table, in Business Central's classes.

Business Central classifies every field (domain reference §8); longops classifies every
column here, in one registry, and a test compares it with the real schema of both
databases, so a new column without a class fails the build. Logs (and, later, telemetry)
decide by class what they may carry: by default only system metadata, organization
identifiers and pseudonymous ids, never customer content (task arguments, results, error
text) or a user's name.

Example::

    >>> classify("longops_operations.args")
    <DataClass.CUSTOMER_CONTENT: 'CustomerContent'>
    >>> loggable("longops_operations.args", [42])
    '[redacted: CustomerContent]'
    >>> loggable("longops_operations.entry_no", 12)
    12
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class DataClass(StrEnum):
    """Business Central's DataClassification values (ToBeClassified is not allowed)."""

    CUSTOMER_CONTENT = "CustomerContent"
    END_USER_IDENTIFIABLE = "EndUserIdentifiableInformation"
    END_USER_PSEUDONYMOUS = "EndUserPseudonymousIdentifiers"
    ORGANIZATION_IDENTIFIABLE = "OrganizationIdentifiableInformation"
    ACCOUNT_DATA = "AccountData"
    SYSTEM_METADATA = "SystemMetadata"


CC = DataClass.CUSTOMER_CONTENT
EUII = DataClass.END_USER_IDENTIFIABLE
EUPI = DataClass.END_USER_PSEUDONYMOUS
OII = DataClass.ORGANIZATION_IDENTIFIABLE
ACCOUNT = DataClass.ACCOUNT_DATA
SYSTEM = DataClass.SYSTEM_METADATA

LOGGED_BY_DEFAULT: frozenset[DataClass] = frozenset({SYSTEM, OII, EUPI})
"""What logs carry unless configured otherwise (the worker's ``--log-class``)."""


def _table(name: str, classes: Mapping[str, DataClass]) -> dict[str, DataClass]:
    return {f"{name}.{column}": data_class for column, data_class in classes.items()}


# As Business Central (§8.2): the entry and its log entries are customer content, the
# user is EUII, the session EUPI, numbers and times system metadata. Departures: a task
# name is a code identifier chosen by developers (like an object id), so SystemMetadata;
# a Python traceback quotes the exception's message, so CustomerContent (Business Central
# has Error Call Stack as SystemMetadata).
COLUMNS: Mapping[str, DataClass] = {
    **_table(
        "longops_companies",
        {
            "name": OII,
            "display_name": OII,
            "time_zone": OII,
            "active": SYSTEM,
            "created_at": SYSTEM,
            "max_in_process": SYSTEM,
            "served_seq": SYSTEM,
        },
    ),
    **_table(
        "longops_categories",
        {
            "company": OII,
            "code": CC,
            "description": CC,
            "max_concurrent": SYSTEM,
            "paused": SYSTEM,
        },
    ),
    **_table("longops_paused_queues", {"name": CC, "paused_at": SYSTEM}),
    **_table(
        "longops_sessions",
        {
            "id": EUPI,
            "host": OII,
            "pid": SYSTEM,
            "queues": CC,
            "concurrency": SYSTEM,
            "state": SYSTEM,
            "started_at": SYSTEM,
            "last_heartbeat_at": SYSTEM,
            "ended_at": SYSTEM,
            "companies": OII,
            # The code a session runs (0012): task names, package versions, a number.
            "tasks": SYSTEM,
            "code_version": SYSTEM,
            "schema_version": SYSTEM,
            "claim_stopped": SYSTEM,  # the schema guard's reason (0014): versions, names
        },
    ),
    **_table(
        "longops_session_events",
        {"id": SYSTEM, "session_id": EUPI, "type": SYSTEM, "at": SYSTEM, "comment": OII},
    ),
    **_table(
        "longops_operations",
        {
            "id": SYSTEM,
            "entry_no": SYSTEM,
            "company": OII,
            "task": SYSTEM,
            "args": CC,
            "description": CC,
            "queue": CC,
            "category": CC,
            "priority": SYSTEM,
            "status": SYSTEM,
            "status_reason": SYSTEM,
            "earliest_start_at": SYSTEM,
            "expires_at": SYSTEM,
            "max_attempts": SYSTEM,
            "attempt_count": SYSTEM,
            "run_count": SYSTEM,
            "rerun_delay": SYSTEM,
            "retry_policy": SYSTEM,
            "timeout_seconds": SYSTEM,
            "recurrence": SYSTEM,
            "user_name": EUII,
            "created_at": SYSTEM,
            "updated_at": SYSTEM,
            "ready_at": SYSTEM,
            "started_at": SYSTEM,
            "ended_at": SYSTEM,
            "last_error": CC,
            "result": CC,
            "lease_token": SYSTEM,
            "session_id": EUPI,
            "dedup_key": CC,
            "labels": CC,
            "cancel_requested_at": SYSTEM,
            "cancel_requested_by": EUII,
            "cancel_reason": CC,
            "required_permission": SYSTEM,
            # Progress readings carry task code's messages; checkpoints its state.
            "progress": CC,
            "progress_moved_at": SYSTEM,
            "stall_after_seconds": SYSTEM,
            "stalled_at": SYSTEM,
            "checkpoint": CC,
            "checkpoint_at": SYSTEM,
            "cancel_force": SYSTEM,
            "cancel_mode": SYSTEM,
            "cancel_overdue_at": SYSTEM,
            "request_hash": SYSTEM,
            "trace_context": SYSTEM,
        },
    ),
    **_table(
        "longops_operation_events",
        {
            "id": SYSTEM,
            "operation_id": SYSTEM,
            "company": OII,
            "at": SYSTEM,
            "type": SYSTEM,
            "run_no": SYSTEM,
            # Readings, reasons and who asked: the strictest class of what it may hold.
            "data": CC,
        },
    ),
    **_table(
        "longops_attempts",
        {
            "entry_no": SYSTEM,
            "operation_id": SYSTEM,
            "company": OII,
            "run_no": SYSTEM,
            "attempt": SYSTEM,
            "session_id": EUPI,
            "user_name": EUII,
            "task": SYSTEM,
            "started_at": SYSTEM,
            "ended_at": SYSTEM,
            "outcome": SYSTEM,
            "error_message": CC,
            "traceback": CC,
            "stop_mode": SYSTEM,
            "progress": CC,
            "peak_rss": SYSTEM,
        },
    ),
    **_table("longops_leaders", {"name": SYSTEM, "session_id": EUPI, "expires_at": SYSTEM}),
    # Maintenance mode (0013): the reason is a person's free text.
    **_table(
        "longops_maintenance",
        {
            "id": SYSTEM,
            "active": SYSTEM,
            "reason": CC,
            "drain_timeout": SYSTEM,
            "started_at": SYSTEM,
            "stopped_at": SYSTEM,
        },
    ),
    **_table(
        "longops_migrations",
        {
            "version": SYSTEM,
            "name": SYSTEM,
            "checksum": SYSTEM,
            "applied_at": SYSTEM,
            "flags": SYSTEM,
        },
    ),
    # The apps registry (0012): names and versions of installed code, their tasks.
    **_table(
        "longops_apps",
        {
            "name": SYSTEM,
            "version": SYSTEM,
            "seen_at": SYSTEM,
            "uninstalled_at": SYSTEM,
            "purge_at": SYSTEM,
            "exported_at": SYSTEM,
        },
    ),
    **_table("longops_app_tasks", {"app": SYSTEM, "task": SYSTEM, "worker_wait_seconds": SYSTEM}),
    **_table(
        "longops_users",
        {
            "name": EUII,
            "display_name": EUII,
            "password_hash": ACCOUNT,
            "state": SYSTEM,
            "is_super": SYSTEM,
            "created_at": SYSTEM,
            "updated_at": SYSTEM,
            "disabled_at": SYSTEM,
            # Where a person's notifications go when they chose "also email": personal.
            "email": EUII,
            "notify_by_email": SYSTEM,
        },
    ),
    **_table(
        "longops_memberships",
        {"user_name": EUII, "company": OII, "permission_set": SYSTEM, "granted_at": SYSTEM},
    ),
    **_table(
        "longops_api_tokens",
        {
            "id": EUPI,
            "user_name": EUII,
            "name": CC,
            "token_hash": ACCOUNT,
            "created_at": SYSTEM,
            "expires_at": SYSTEM,
            "last_used_at": SYSTEM,
            "revoked_at": SYSTEM,
        },
    ),
    **_table(
        "longops_deleted_operations",
        {
            "id": SYSTEM,
            "company": OII,
            "entry_no": SYSTEM,
            "deleted_at": SYSTEM,
            "keep_until": SYSTEM,
            "deleted_by": EUII,
            # The whole row as it was: its arguments, result and user among it.
            "operation": CC,
        },
    ),
    **_table(
        "longops_audit_log",
        {
            "id": SYSTEM,
            "company": OII,
            "at": SYSTEM,
            "actor": EUII,
            "front_end": SYSTEM,
            "action": SYSTEM,
            # "user:<name>" for actions on users, so EUII (forget rewrites it).
            "target": EUII,
            "details": CC,
        },
    ),
    **_table(
        "longops_notifications",
        {
            "id": SYSTEM,
            "company": OII,
            "user_name": EUII,
            "operation_id": SYSTEM,
            "kind": SYSTEM,
            # The operation's description (or task name) when it ended, as the operation's.
            "title": CC,
            "created_at": SYSTEM,
            "read_at": SYSTEM,
        },
    ),
    # Who may run what now (a view over users and memberships; run-time security).
    **_table(
        "longops_may_run",
        {"user_name": EUII, "is_super": SYSTEM, "company": OII, "required": SYSTEM},
    ),
    # The pages' sign-ins: the client address is the person's, the secret only hashed.
    **_table(
        "longops_web_sessions",
        {
            "id": EUPI,
            "user_name": EUII,
            "secret_hash": ACCOUNT,
            "created_at": SYSTEM,
            "last_seen_at": SYSTEM,
            "expires_at": SYSTEM,
            "revoked_at": SYSTEM,
            "client": EUII,
        },
    ),
    # Notifications (migration 8). A channel's URL holds a password or token: account data,
    # like a password hash; its masked form and name are the organization's configuration.
    # A recipient or a rule's `to` names people (inbox:USER, user:NAME): EUII. A delivery's
    # last error quotes what a channel answered: customer content.
    **_table("longops_notified_admins", {"company": OII, "user_name": EUII}),
    **_table(
        "longops_notify_channels",
        {
            "company": OII,
            "name": OII,
            "url_secret": ACCOUNT,
            "url_masked": OII,
            "url_schema": SYSTEM,
            "rate_limit": SYSTEM,
            "rate_window": SYSTEM,
            "created_at": SYSTEM,
            "personal_email": SYSTEM,
        },
    ),
    **_table(
        "longops_notify_rules",
        {
            "company": OII,
            "name": OII,
            "on_event": SYSTEM,
            "task": SYSTEM,
            "category": CC,
            "queue": CC,
            "user_name": EUII,
            "recipients": EUII,
            "enabled": SYSTEM,
            "threshold": SYSTEM,
            "created_at": SYSTEM,
        },
    ),
    **_table("longops_notify_mutes", {"company": OII, "user_name": EUII, "rule_name": OII}),
    **_table(
        "longops_notify_outbox",
        {
            "id": SYSTEM,
            "company": OII,
            "operation_id": SYSTEM,
            "event": SYSTEM,
            "at": SYSTEM,
            "rule_name": OII,
            "dedup": OII,
            "expanded_at": SYSTEM,
        },
    ),
    **_table(
        "longops_notify_deliveries",
        {
            "id": SYSTEM,
            "outbox_id": SYSTEM,
            "company": OII,
            "operation_id": SYSTEM,
            "event": SYSTEM,
            "rule_name": OII,
            "recipient": EUII,
            "idem_key": SYSTEM,
            "status": SYSTEM,
            "attempts": SYSTEM,
            "next_at": SYSTEM,
            "locked_until": SYSTEM,
            "claim_token": SYSTEM,
            "created_at": SYSTEM,
            "sent_at": SYSTEM,
            "last_error": CC,
        },
    ),
}
"""``table.column`` → its class, for every column of every longops table."""

LOG_FIELDS: Mapping[str, str] = {
    "operation_id": "longops_attempts.operation_id",
    "session_id": "longops_sessions.id",
    "task": "longops_operations.task",
    "company": "longops_operations.company",
    "user": "longops_operations.user_name",
    "task_args": "longops_operations.args",
    "task_kwargs": "longops_operations.args",
    "task_result": "longops_operations.result",
    "error_message": "longops_attempts.error_message",
    "traceback": "longops_attempts.traceback",
    "cancel_reason": "longops_operations.cancel_reason",
}
"""Names used for structured log fields (``extra=``) → the column whose class they carry.
None of them is an attribute of ``logging.LogRecord`` itself (``args``, ``msg``, ...)."""


def classify(column: str) -> DataClass:
    """The class of ``table.column``; KeyError for an unclassified column."""
    return COLUMNS[column]


def loggable(
    column: str, value: object, allowed: Iterable[DataClass] = LOGGED_BY_DEFAULT
) -> object:
    """``value`` if its column's class may be logged, else a marker naming the class."""
    data_class = classify(column)
    return value if data_class in frozenset(allowed) else f"[redacted: {data_class.value}]"
