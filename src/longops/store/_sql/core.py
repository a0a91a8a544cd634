"""The base every noun's SQL methods build on: connections' hooks, row mapping, helpers.

A dialect supplies the connection handling (``_tx``), value encoders and decoders, and the
few methods whose mechanics differ (the claim, bulk insert, finishing runs, wake-ups).
"""

from __future__ import annotations

import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from longops import telemetry
from longops.domain.filters import search_terms
from longops.domain.maintenance import MaintenanceMode
from longops.domain.operation import (
    Attempt,
    CancelMode,
    CancelRequest,
    Category,
    Company,
    EventType,
    NewOperation,
    Operation,
    OperationEvent,
    Outcome,
    Priority,
    Session,
    SessionState,
    StopMode,
)
from longops.domain.progress import Progress
from longops.domain.read_models import Notification, NotificationKind
from longops.domain.recurrence import Recurrence
from longops.domain.security import PermissionSet
from longops.domain.status import Status, StatusReason
from longops.domain.users import AuditEntry, User, UserState
from longops.store.base import Companies, OperationQuery
from longops.store.queries import load_queries

Row = Mapping[str, Any]

_scope: ContextVar[frozenset[str] | None] = ContextVar("longops_scope", default=None)
"""The companies this thread's (or task's) transactions may see; None: every company."""


class _Scope:
    # A plain class, not @contextmanager: every core call enters one.
    __slots__ = ("companies", "token")

    def __init__(self, companies: frozenset[str] | None) -> None:
        self.companies = companies

    def __enter__(self) -> None:
        self.token = _scope.set(self.companies)

    def __exit__(self, *exc: object) -> None:
        _scope.reset(self.token)


def current_scope_text() -> str:
    """The scope as the row-level security policies read it: '*' or 'A,B'."""
    scope = _scope.get()
    # Company names cannot hold a comma (domain.operation.NAME_RE).
    return "*" if scope is None else ",".join(sorted(scope))


class TimedCursor:
    """A cursor whose statements are timed: one of longops's own that takes longer than
    ``LONGOPS_SLOW_SQL_AFTER`` is reported by its query name (LO0024), never its parameters.
    With telemetry off, a statement costs a pair of clock reads unless it was slow."""

    __slots__ = ("_cur", "_every", "_names", "_slow_after")

    def __init__(self, cur: Any, names: Mapping[str, str]) -> None:
        self._cur = cur
        self._names = names
        # Read once per transaction: the threshold, and whether every statement is counted
        # (telemetry on: the attempt's SQL figures on its span).
        self._slow_after, self._every = telemetry.sql_timing()

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self._cur.execute, query, args, kwargs)

    def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self._cur.executemany, query, args, kwargs)

    def _timed(self, run: Any, query: Any, args: Any, kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return run(query, *args, **kwargs)
        finally:
            elapsed = time.perf_counter() - began
            if self._every or elapsed >= self._slow_after:
                name = self._names.get(query) if isinstance(query, str) else None
                telemetry.sql_timed(name or "(unnamed)", elapsed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)

    def __iter__(self) -> Any:
        return iter(self._cur)


class SqlCore(ABC):
    dialect: str
    url: str

    def __init__(self, url: str) -> None:
        self.url = url
        self.q = load_queries(self.dialect)
        self._query_names = {text: name for name, text in self.q.items()}

    def timed(self, cur: Any) -> TimedCursor:
        """``cur`` with its statements timed (see :class:`TimedCursor`)."""
        return TimedCursor(cur, self._query_names)

    def scope(self, companies: Companies) -> _Scope:
        """Transactions started inside see only ``companies`` (row-level security)."""
        return _Scope(None if companies is None else frozenset(companies))

    # -- dialect hooks ---------------------------------------------------------------------
    @abstractmethod
    def _tx(self) -> AbstractContextManager[Any]:
        """A short write transaction; yields a cursor with mapping rows."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A read; yields a cursor with mapping rows."""

    @abstractmethod
    def enc_uuid(self, value: uuid.UUID | None) -> Any: ...
    @abstractmethod
    def enc_ts(self, value: datetime | None) -> Any: ...
    @abstractmethod
    @abstractmethod
    def enc_list(self, value: Sequence[str]) -> Any: ...
    @abstractmethod
    def dec_uuid(self, value: Any) -> uuid.UUID: ...
    @abstractmethod
    def dec_ts(self, value: Any) -> datetime: ...
    @abstractmethod
    def dec_json(self, value: Any) -> Any: ...
    @abstractmethod
    def dec_list(self, value: Any) -> list[str]: ...
    @abstractmethod
    def _apply_migration_script(self, cur: Any, sql: str) -> None: ...

    def _migration_lock(self, cur: Any) -> None:
        """Serialise concurrent upgrades (PostgreSQL); SQLite's write lock already does."""

    def _allow_long(self, cur: Any) -> None:
        """Lift this transaction's statement timeout to ``maintenance_timeout`` for work
        that is long by nature (PostgreSQL; SQLite has no statement timeout)."""

    # -- helpers -----------------------------------------------------------------------------
    def dec_ts_opt(self, value: Any) -> datetime | None:
        return None if value is None else self.dec_ts(value)

    def dec_uuid_opt(self, value: Any) -> uuid.UUID | None:
        return None if value is None else self.dec_uuid(value)

    def enc_companies(self, companies: Companies) -> Any:
        return None if companies is None else self.enc_list(sorted(companies))

    def _audit(self, cur: Any, entry: AuditEntry | None) -> None:
        """Record ``entry`` in the caller's transaction, so it commits with the action."""
        if entry is None:
            return
        cur.execute(
            self.q["insert_audit"],
            {
                "company": entry.company,
                "at": self.enc_ts(entry.at),
                "actor": entry.actor,
                "front_end": entry.front_end.value,
                "action": entry.action,
                "target": entry.target,
                "details": json.dumps(dict(entry.details), default=str),
            },
        )

    def _write_audited(
        self, name: str, params: Mapping[str, Any], audit: AuditEntry | None
    ) -> Row | None:
        """One guarded write and, when it matched a row, its audit entry: one transaction."""
        with self._tx() as cur:
            cur.execute(self.q[name], params)
            row: Row | None = cur.fetchone()
            if row is not None:
                self._audit(cur, audit)
            return row

    def _all(self, name: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        with self._read() as cur:
            cur.execute(self.q[name], params or {})
            return list(cur.fetchall())

    def _one(self, name: str, params: Mapping[str, Any] | None = None) -> Row | None:
        with self._read() as cur:
            cur.execute(self.q[name], params or {})
            row: Row | None = cur.fetchone()
            return row

    def _reads(self, statements: Sequence[tuple[str, Mapping[str, Any]]]) -> list[list[Row]]:
        """Each named query's rows, the queries independent of each other (no one needs
        another's result). Here one after the other in one read; PostgreSQL sends them
        all at once (one round trip)."""
        with self._read() as cur:
            out: list[list[Row]] = []
            for name, params in statements:
                cur.execute(self.q[name], params)
                out.append(list(cur.fetchall()))
            return out

    def _write_one(self, name: str, params: Mapping[str, Any]) -> Row | None:
        with self._tx() as cur:
            cur.execute(self.q[name], params)
            row: Row | None = cur.fetchone()
            return row

    def _wake(self, queue: str) -> None:
        """Tell dispatchers that ``queue`` may have work."""

    def _maintenance(self, row: Row) -> MaintenanceMode:
        return MaintenanceMode(
            active=bool(row["active"]),
            reason=row["reason"],
            drain_timeout=timedelta(seconds=float(row["drain_timeout"])),
            started_at=self.dec_ts_opt(row["started_at"]),
            stopped_at=self.dec_ts_opt(row["stopped_at"]),
        )

    def _users(self, rows: list[Row], memberships: list[Row]) -> list[User]:
        grants: dict[str, list[tuple[str, PermissionSet]]] = {}
        for m in memberships:
            grants.setdefault(m["user_name"], []).append(
                (m["company"], PermissionSet(m["permission_set"]))
            )
        return [
            User(
                name=r["name"],
                display_name=r["display_name"],
                state=UserState(r["state"]),
                is_super=bool(r["is_super"]),
                created_at=self.dec_ts(r["created_at"]),
                disabled_at=self.dec_ts_opt(r["disabled_at"]),
                has_password=bool(r["has_password"]),
                grants=tuple(sorted(grants.get(r["name"], ()))),
            )
            for r in rows
        ]

    # -- row mapping -------------------------------------------------------------------------
    def operation(self, r: Row) -> Operation:
        data = self.dec_json(r["args"])
        rec = r["recurrence"]
        policy = r["retry_policy"]
        result = r["result"]
        labels = r["labels"]
        cancel_at = r["cancel_requested_at"]
        progress = r["progress"]
        checkpoint = r["checkpoint"]
        cancel_mode = r["cancel_mode"]
        reason = r["status_reason"]
        permission = r["required_permission"]
        ts, ts_opt, uuid_opt = self.dec_ts, self.dec_ts_opt, self.dec_uuid_opt
        return Operation(
            id=self.dec_uuid(r["id"]),
            entry_no=int(r["entry_no"]),
            company=r["company"],
            task=r["task"],
            args=tuple(data.get("args", ())),
            kwargs=dict(data.get("kwargs", {})),
            description=r["description"],
            queue=r["queue"],
            category=r["category"],
            priority=_priority(r["priority"]),
            status=_status(r["status"]),
            status_reason=_reason(reason),
            earliest_start_at=ts(r["earliest_start_at"]),
            expires_at=ts_opt(r["expires_at"]),
            max_attempts=int(r["max_attempts"]),
            attempt_count=int(r["attempt_count"]),
            rerun_delay=int(r["rerun_delay"]),
            retry_policy=None if policy is None else self.dec_json(policy),
            timeout=timedelta(seconds=float(r["timeout_seconds"])),
            recurrence=None if rec is None else Recurrence.from_json(self.dec_json(rec)),
            user=r["user_name"],
            created_at=ts(r["created_at"]),
            updated_at=ts(r["updated_at"]),
            ready_at=ts_opt(r["ready_at"]),
            started_at=ts_opt(r["started_at"]),
            ended_at=ts_opt(r["ended_at"]),
            last_error=r["last_error"],
            result=None if result is None else self.dec_json(result),
            lease_token=uuid_opt(r["lease_token"]),
            session_id=uuid_opt(r["session_id"]),
            dedup_key=r["dedup_key"],
            labels=self.dec_json(labels) if labels is not None else {},
            cancel_request=(
                None
                if cancel_at is None
                else CancelRequest(
                    ts(cancel_at),
                    r["cancel_requested_by"],
                    r["cancel_reason"],
                    bool(r["cancel_force"]),
                )
            ),
            progress=None if progress is None else Progress.from_json(self.dec_json(progress)),
            stall_after=timedelta(seconds=float(r["stall_after_seconds"])),
            stalled_at=ts_opt(r["stalled_at"]),
            checkpoint=None if checkpoint is None else self.dec_json(checkpoint),
            checkpoint_at=ts_opt(r["checkpoint_at"]),
            cancel_mode=None if cancel_mode is None else CancelMode(cancel_mode),
            cancel_overdue_at=ts_opt(r["cancel_overdue_at"]),
            request_hash=r["request_hash"],
            trace_context=r["trace_context"],
            required_permission=None if permission is None else PermissionSet(permission),
        )

    @staticmethod
    def inserted(op: NewOperation, entry_no: int) -> Operation:
        """The operation ``op`` became once inserted as entry ``entry_no``: what reading its
        row back would give (:meth:`operation`), built without that read. Every value but
        the entry number is the caller's (no column default or trigger fills one in)."""
        data = json.loads(op.args_json)
        policy = op.retry_policy
        rec = op.recurrence
        return Operation(
            id=op.id,
            entry_no=entry_no,
            company=op.company,
            task=op.task,
            args=tuple(data.get("args", ())),
            kwargs=dict(data.get("kwargs", {})),
            description=op.description,
            queue=op.queue,
            category=op.category,
            priority=Priority(int(op.priority)),
            status=op.status,
            status_reason=None,
            earliest_start_at=op.earliest_start_at,
            expires_at=op.expires_at,
            max_attempts=op.max_attempts,
            attempt_count=0,
            rerun_delay=op.rerun_delay,
            # As stored: JSON text, read back.
            retry_policy=None if policy is None else json.loads(json.dumps(policy)),
            timeout=timedelta(seconds=float(op.timeout.total_seconds())),
            recurrence=None
            if rec is None
            else Recurrence.from_json(json.loads(json.dumps(rec.to_json()))),
            user=op.user,
            created_at=op.created_at,
            updated_at=op.created_at,
            ready_at=op.created_at if op.status is Status.READY else None,
            started_at=None,
            ended_at=None,
            last_error=None,
            result=None,
            lease_token=None,
            session_id=None,
            dedup_key=op.dedup_key,
            labels=dict(op.labels),
            cancel_request=None,
            stall_after=timedelta(seconds=float(op.stall_after.total_seconds())),
            request_hash=op.request_hash,
            trace_context=op.trace_context,
            required_permission=op.required_permission,
        )

    def attempt(self, r: Row) -> Attempt:
        return Attempt(
            id=int(r["entry_no"]),
            operation_id=self.dec_uuid(r["operation_id"]),
            company=r["company"],
            number=int(r["run_no"]),
            attempt=int(r["attempt"]),
            session_id=self.dec_uuid_opt(r["session_id"]),
            user=r["user_name"],
            task=r["task"],
            started_at=self.dec_ts(r["started_at"]),
            ended_at=self.dec_ts_opt(r["ended_at"]),
            outcome=Outcome(r["outcome"]),
            error_message=r["error_message"],
            traceback=r["traceback"],
            stop_mode=None if r["stop_mode"] is None else StopMode(r["stop_mode"]),
            peak_rss=None if r["peak_rss"] is None else int(r["peak_rss"]),
            progress=(
                None if r["progress"] is None else Progress.from_json(self.dec_json(r["progress"]))
            ),
        )

    def event(self, r: Row) -> OperationEvent:
        data = r["data"]
        return OperationEvent(
            id=int(r["id"]),
            operation_id=self.dec_uuid(r["operation_id"]),
            company=r["company"],
            at=self.dec_ts(r["at"]),
            type=EventType(r["type"]),
            run_no=None if r["run_no"] is None else int(r["run_no"]),
            data=self.dec_json(data) if data is not None else {},
        )

    def session(self, r: Row) -> Session:
        return Session(
            id=self.dec_uuid(r["id"]),
            host=r["host"],
            pid=int(r["pid"]),
            queues=tuple(self.dec_list(r["queues"])),
            concurrency=int(r["concurrency"]),
            state=SessionState(r["state"]),
            started_at=self.dec_ts(r["started_at"]),
            last_heartbeat_at=self.dec_ts(r["last_heartbeat_at"]),
            ended_at=self.dec_ts_opt(r["ended_at"]),
            companies=None if r["companies"] is None else tuple(self.dec_list(r["companies"])),
            # .get: the columns came with migration 0012 (apps); `db status` reads older.
            tasks=None if r.get("tasks") is None else tuple(self.dec_list(r["tasks"])),
            code_version=r.get("code_version"),
            schema_version=None if r.get("schema_version") is None else int(r["schema_version"]),
            claim_stopped=r.get("claim_stopped"),
        )

    def category(self, r: Row) -> Category:
        return Category(
            company=r["company"],
            code=r["code"],
            description=r["description"],
            max_concurrent=int(r["max_concurrent"]),
            paused=bool(r["paused"]),
        )

    def new_operation_params(self, op: NewOperation) -> dict[str, Any]:
        return {
            "id": self.enc_uuid(op.id),
            "company": op.company,
            "task": op.task,
            "args": op.args_json,
            "description": op.description,
            "queue": op.queue,
            "category": op.category,
            "priority": int(op.priority),
            "status": op.status.value,
            "earliest_start_at": self.enc_ts(op.earliest_start_at),
            "expires_at": self.enc_ts(op.expires_at),
            "max_attempts": op.max_attempts,
            "rerun_delay": op.rerun_delay,
            "retry_policy": None if op.retry_policy is None else json.dumps(op.retry_policy),
            "timeout_seconds": op.timeout.total_seconds(),
            "recurrence": None if op.recurrence is None else json.dumps(op.recurrence.to_json()),
            "user_name": op.user,
            "created_at": self.enc_ts(op.created_at),
            "ready_at": self.enc_ts(op.created_at) if op.status is Status.READY else None,
            "dedup_key": op.dedup_key,
            "labels": json.dumps(dict(op.labels)) if op.labels else "{}",
            "stall_after_seconds": op.stall_after.total_seconds(),
            "request_hash": op.request_hash,
            "trace_context": op.trace_context,
            "required_permission": (
                None if op.required_permission is None else op.required_permission.value
            ),
        }

    def enc_bool(self, value: bool) -> Any:
        return value

    def _query_params(self, query: OperationQuery) -> dict[str, Any]:
        text = like = terms = None
        if query.text is not None:
            terms = search_terms(query.text)
            text = terms.text
            if not terms.number_only:
                like = f"%{_like_escape(terms.text.lower())}%"
        prefix = query.user_prefix
        companies = query.companies
        if query.company is not None and companies is not None and query.company in companies:
            # One company among those the actor may read: the company alone says it (the
            # planner would count the company twice, and misjudge every plan by its share).
            companies = None
        return {
            "company": query.company,
            "companies": self.enc_companies(companies),
            "statuses": self.enc_list([s.value for s in query.statuses]),
            "task": query.task,
            "category": query.category,
            "queue": query.queue,
            "after_entry_no": query.after_entry_no,
            "before_entry_no": query.before_entry_no,
            "user_name": query.user,
            "created_after": self.enc_ts(query.created_after),
            "created_before": self.enc_ts(query.created_before),
            "started_after": self.enc_ts(query.started_after),
            "started_before": self.enc_ts(query.started_before),
            "text": text,
            "text_like": like,
            "text_entry_no": None if terms is None else terms.entry_no,
            "id_low": None if terms is None else self.enc_uuid(terms.id_low),
            "id_high": None if terms is None else self.enc_uuid(terms.id_high),
            "user_prefix": None if prefix is None else f"{_like_escape(prefix.lower())}%",
            "stalled": None if query.stalled is None else self.enc_bool(query.stalled),
            "limit": query.limit,
        }

    def _insert_event(
        self,
        cur: Any,
        operation_id: Any,
        company: str,
        at: datetime,
        type: EventType,
        run_no: int | None,
        data: Mapping[str, Any],
    ) -> None:
        cur.execute(
            self.q["insert_event"],
            {
                "id": operation_id,
                "company": company,
                "at": self.enc_ts(at),
                "type": type.value,
                "run_no": run_no,
                "data": json.dumps(data, default=str),
            },
        )

    def notification(self, r: Row) -> Notification:
        return Notification(
            id=int(r["id"]),
            company=r["company"],
            user=r["user_name"],
            operation_id=self.dec_uuid(r["operation_id"]),
            kind=NotificationKind(r["kind"]),
            title=r["title"],
            created_at=self.dec_ts(r["created_at"]),
            read_at=self.dec_ts_opt(r["read_at"]),
        )

    def enc_ids(self, ids: Sequence[int]) -> Any:
        """A list of integer ids as the dialect's queries take it."""
        return json.dumps([int(i) for i in ids])


def _like_escape(text: str) -> str:
    """``text`` as a LIKE pattern that matches it literally (``\\`` is the escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _company(r: Row) -> Company:
    limit = r["max_in_process"]
    return Company(
        name=r["name"],
        display_name=r["display_name"],
        time_zone=r["time_zone"],
        active=bool(r["active"]),
        max_in_process=None if limit is None else int(limit),
    )


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {f: getattr(entry, f) for f in AuditEntry.__dataclass_fields__}


def in_turns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A claimed batch in the order its runs should start: companies take turns (each
    company's first, then each one's second, ...; High -> Normal -> Low then entry number
    within a company), as the claim chose them. Sorting the batch by entry number alone
    would start a whole batch of one company's backlog before another company's single
    operation claimed with it."""
    ordered = sorted(rows, key=lambda r: (r["priority"], r["entry_no"]))
    seen: dict[str, int] = {}
    turns = []
    for r in ordered:
        seen[r["company"]] = seen.get(r["company"], 0) + 1
        turns.append(seen[r["company"]])
    return [r for _, r in sorted(zip(turns, ordered, strict=True), key=lambda t: t[0])]


_PRIORITIES = {int(p): p for p in Priority}
_STATUSES: dict[Any, Status] = {s.value: s for s in Status}
_STATUS_REASONS: dict[Any, StatusReason] = {r.value: r for r in StatusReason}


def _priority(value: Any) -> Priority:
    """``Priority(int(value))``, looked up (an enum's call costs a microsecond a column)."""
    found = _PRIORITIES.get(value)
    return Priority(int(value)) if found is None else found


def _status(value: Any) -> Status:
    found = _STATUSES.get(value)
    return Status(value) if found is None else found


def _reason(value: str | None) -> StatusReason | None:
    if value is None:
        return None
    found = _STATUS_REASONS.get(value)
    return StatusReason(value) if found is None else found
