"""What the SQLite and PostgreSQL stores share: row mapping and the dialect-neutral methods.

A dialect supplies the connection handling (``_tx``), value encoders and decoders, and the
few methods whose mechanics differ (the claim, bulk insert, finishing runs, wake-ups).
"""

from __future__ import annotations

import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from longops import telemetry
from longops.domain.apps import AppInfo, AppRecord, AppTask
from longops.domain.errors import ConfigurationError
from longops.domain.notify import Channel as NotifyChannel
from longops.domain.notify import (
    Delivery,
    DeliveryStatus,
    OutboxEntry,
    PlannedDelivery,
    Watched,
)
from longops.domain.notify import Event as NotifyEvent
from longops.domain.notify import Rule as NotifyRule
from longops.domain.notify import idem_key as notify_idem_key
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
    SessionEvent,
    SessionEventType,
    SessionState,
    StopMode,
)
from longops.domain.progress import Progress
from longops.domain.read_models import CategoryActivity, LogEntry, Notification, NotificationKind
from longops.domain.recurrence import Recurrence
from longops.domain.security import FrontEnd, PermissionSet
from longops.domain.status import Status, StatusReason
from longops.domain.users import (
    ApiToken,
    AuditEntry,
    User,
    UserState,
    WebSession,
    user_target,
)
from longops.domain.waiting import CategorySlots, CompanyState, WaitContext
from longops.store.base import (
    ActionParams,
    AttemptQuery,
    CancelSignal,
    ClaimedRun,
    Companies,
    OperationEdit,
    OperationQuery,
    PersonalData,
)
from longops.store.maintenance import MaintenanceSql
from longops.store.migrate import MigrationState, compare, load_migrations
from longops.store.queries import load_queries
from longops.telemetry.prometheus import FleetSnapshot

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


class SqlStore(MaintenanceSql, ABC):
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
            priority=Priority(int(r["priority"])),
            status=Status(r["status"]),
            status_reason=_reason(r["status_reason"]),
            earliest_start_at=self.dec_ts(r["earliest_start_at"]),
            expires_at=self.dec_ts_opt(r["expires_at"]),
            max_attempts=int(r["max_attempts"]),
            attempt_count=int(r["attempt_count"]),
            rerun_delay=int(r["rerun_delay"]),
            retry_policy=None if policy is None else self.dec_json(policy),
            timeout=timedelta(seconds=float(r["timeout_seconds"])),
            recurrence=None if rec is None else Recurrence.from_json(self.dec_json(rec)),
            user=r["user_name"],
            created_at=self.dec_ts(r["created_at"]),
            updated_at=self.dec_ts(r["updated_at"]),
            ready_at=self.dec_ts_opt(r["ready_at"]),
            started_at=self.dec_ts_opt(r["started_at"]),
            ended_at=self.dec_ts_opt(r["ended_at"]),
            last_error=r["last_error"],
            result=None if result is None else self.dec_json(result),
            lease_token=self.dec_uuid_opt(r["lease_token"]),
            session_id=self.dec_uuid_opt(r["session_id"]),
            dedup_key=r["dedup_key"],
            labels=self.dec_json(labels) if labels is not None else {},
            cancel_request=(
                None
                if cancel_at is None
                else CancelRequest(
                    self.dec_ts(cancel_at),
                    r["cancel_requested_by"],
                    r["cancel_reason"],
                    bool(r["cancel_force"]),
                )
            ),
            progress=None if progress is None else Progress.from_json(self.dec_json(progress)),
            stall_after=timedelta(seconds=float(r["stall_after_seconds"])),
            stalled_at=self.dec_ts_opt(r["stalled_at"]),
            checkpoint=None if checkpoint is None else self.dec_json(checkpoint),
            checkpoint_at=self.dec_ts_opt(r["checkpoint_at"]),
            cancel_mode=None if cancel_mode is None else CancelMode(cancel_mode),
            cancel_overdue_at=self.dec_ts_opt(r["cancel_overdue_at"]),
            request_hash=r["request_hash"],
            trace_context=r["trace_context"],
            required_permission=(
                None
                if r["required_permission"] is None
                else PermissionSet(r["required_permission"])
            ),
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

    # -- schema -----------------------------------------------------------------------------
    def _applied(self, cur: Any) -> dict[int, tuple[str, str]]:
        cur.execute(self.q["create_migrations_table"])
        cur.execute(self.q["list_migrations"])
        return {int(r["version"]): (r["name"], r["checksum"]) for r in cur.fetchall()}

    def migrate(self) -> list[str]:
        """Apply pending migrations; returns the names applied."""
        done: list[str] = []
        with self._tx() as cur:
            self._allow_long(cur)  # a migration may rewrite a large table
            self._migration_lock(cur)
            applied = self._applied(cur)
            states = compare(load_migrations(self.dialect), applied)
            bad = [s for s in states if s.state in ("checksum mismatch", "unknown")]
            if bad:
                raise ConfigurationError(
                    "database schema does not match this longops version: "
                    + ", ".join(f"{s.version:04d}_{s.name} ({s.state})" for s in bad)
                )
            pending = {s.version for s in states if s.state == "pending"}
            # Not online: only in maintenance mode (store/maintenance.py).
            self._check_online(
                cur, applied, [m for m in load_migrations(self.dialect) if m.version in pending]
            )
            for m in load_migrations(self.dialect):
                if m.version in pending:
                    self._apply_migration_script(cur, m.sql)
                    cur.execute(
                        self.q["record_migration"],
                        {"version": m.version, "name": m.name, "checksum": m.checksum},
                    )
                    if m.flags:  # only migrations from 0012 on, which add the column
                        cur.execute(
                            self.q["record_migration_flags"],
                            {"version": m.version, "flags": ",".join(sorted(m.flags))},
                        )
                    done.append(f"{m.version:04d}_{m.name}")
        return done

    def migration_status(self) -> list[MigrationState]:
        with self._tx() as cur:
            return compare(load_migrations(self.dialect), self._applied(cur))

    def migration_sql(self) -> str:
        parts = [
            f"-- longops schema for {self.dialect}\n",
            self.q["create_migrations_table"] + ";\n",
        ]
        for m in load_migrations(self.dialect):
            parts.append(f"\n-- {m.version:04d}_{m.name}\n{m.sql.strip()}\n")
            parts.append(
                "INSERT INTO longops_migrations (version, name, checksum) VALUES "
                f"({m.version}, '{m.name}', '{m.checksum}');\n"
            )
            if m.flags:
                parts.append(
                    f"UPDATE longops_migrations SET flags = '{','.join(sorted(m.flags))}' "
                    f"WHERE version = {m.version};\n"
                )
        return "".join(parts)

    def schema_is_current(self) -> bool:
        return all(s.state == "applied" for s in self.migration_status())

    # -- companies, categories, queues --------------------------------------------------------
    def get_company(self, name: str) -> Company | None:
        r = self._one("get_company", {"name": name})
        return None if r is None else _company(r)

    def upsert_company(self, company: Company, *, audit: AuditEntry | None = None) -> Company:
        r = self._write_audited(
            "upsert_company",
            {
                "name": company.name,
                "display_name": company.display_name,
                "time_zone": company.time_zone,
                "active": self.enc_bool(company.active),
                "max_in_process": company.max_in_process,
            },
            audit,
        )
        assert r is not None
        return _company(r)

    def get_operation_by_entry_no(
        self, entry_no: int, company: str | None = None, *, companies: Companies = None
    ) -> Operation | None:
        r = self._one(
            "get_operation_by_entry_no",
            {"entry_no": entry_no, "company": company, "companies": self.enc_companies(companies)},
        )
        return None if r is None else self.operation(r)

    def list_companies(self, companies: Companies = None) -> list[Company]:
        rows = self._all("list_companies", {"companies": self.enc_companies(companies)})
        return [_company(r) for r in rows]

    def upsert_category(self, category: Category, *, audit: AuditEntry | None = None) -> Category:
        r = self._write_audited(
            "upsert_category",
            {
                "company": category.company,
                "code": category.code,
                "description": category.description,
                "max_concurrent": category.max_concurrent,
                "paused": self.enc_bool(category.paused),
            },
            audit,
        )
        assert r is not None
        return self.category(r)

    def enc_bool(self, value: bool) -> Any:
        return value

    def get_category(self, company: str, code: str) -> Category | None:
        r = self._one("get_category", {"company": company, "code": code})
        return None if r is None else self.category(r)

    def list_categories(self, company: str) -> list[Category]:
        return [self.category(r) for r in self._all("list_categories", {"company": company})]

    def set_queue_paused(
        self, name: str, paused: bool, at: datetime, *, audit: AuditEntry | None = None
    ) -> None:
        with self._tx() as cur:
            if paused:
                cur.execute(self.q["pause_queue"], {"name": name, "at": self.enc_ts(at)})
            else:
                cur.execute(self.q["resume_queue"], {"name": name})
            self._audit(cur, audit)
        if not paused:
            self._wake(name)

    def paused_queues(self) -> frozenset[str]:
        return frozenset(r["name"] for r in self._all("list_paused_queues"))

    def _wake(self, queue: str) -> None:
        """Tell dispatchers that ``queue`` may have work."""

    # -- operations ----------------------------------------------------------------------------
    def _insert_with(self, cur: Any, ops: Sequence[NewOperation]) -> list[Operation]:
        out: list[Operation] = []
        for op in ops:
            cur.execute(self.q["insert_operation"], self.new_operation_params(op))
            row = cur.fetchone()
            if row is None and op.request_hash is not None:
                # A client's Operation-Id used before: hand back what it made (the caller
                # compares the requests).
                cur.execute(self.q["get_operation_any"], {"id": self.enc_uuid(op.id)})
                row = cur.fetchone()
            if row is None:
                # The dedup key is held by an active operation: hand that one back.
                cur.execute(
                    self.q["get_active_by_dedup"],
                    {"company": op.company, "dedup_key": op.dedup_key},
                )
                row = cur.fetchone()
                if row is None:  # pragma: no cover - the holder finished in between
                    raise RuntimeError("dedup conflict but no active operation found")
            out.append(self.operation(row))
        return out

    def get_operation(
        self, operation_id: uuid.UUID, company: str | None = None, *, companies: Companies = None
    ) -> Operation | None:
        r = self._one(
            "get_operation",
            {
                "id": self.enc_uuid(operation_id),
                "company": company,
                "companies": self.enc_companies(companies),
            },
        )
        return None if r is None else self.operation(r)

    def list_operations(self, query: OperationQuery) -> list[Operation]:
        rows = self._all(
            "list_operations_desc" if query.descending else "list_operations",
            self._query_params(query),
        )
        return [self.operation(r) for r in rows]

    def _query_params(self, query: OperationQuery) -> dict[str, Any]:
        text = None if query.text is None else f"%{_like_escape(query.text.lower())}%"
        return {
            "company": query.company,
            "companies": self.enc_companies(query.companies),
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
            "stalled": None if query.stalled is None else self.enc_bool(query.stalled),
            "limit": query.limit,
        }

    def count_operations(
        self, company: str | None = None, *, companies: Companies = None
    ) -> dict[Status, int]:
        counts = dict.fromkeys(Status, 0)
        params = {"company": company, "companies": self.enc_companies(companies)}
        for r in self._all("count_operations", params):
            counts[Status(r["status"])] = int(r["n"])
        return counts

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

    def apply_action(
        self, params: ActionParams, *, audit: AuditEntry | None = None
    ) -> Operation | None:
        with self._tx() as cur:
            cur.execute(
                self.q["apply_action"],
                {
                    "id": self.enc_uuid(params.operation_id),
                    "company": params.company,
                    "allowed_from": self.enc_list([s.value for s in params.allowed_from]),
                    "status": params.status.value,
                    "status_reason": params.status_reason,
                    "earliest_start_at": self.enc_ts(params.earliest_start_at),
                    "reset_attempts": self.enc_bool(params.reset_attempts),
                    "at": self.enc_ts(params.at),
                    "user_name": params.user,
                    "clear_cancel": self.enc_bool(params.clear_cancel_request),
                    "cancel_mode": None if params.cancel_mode is None else params.cancel_mode.value,
                    "cancel_by": params.cancel_by,
                    "cancel_reason": params.cancel_reason,
                    "clear_checkpoint": self.enc_bool(params.clear_checkpoint),
                },
            )
            r = cur.fetchone()
            if r is None:
                return None
            self._insert_event(
                cur,
                r["id"],
                r["company"],
                params.at,
                EventType.STATUS_CHANGED,
                None,
                {
                    "action": params.action,
                    "status": params.status.value,
                    "by": params.by or (params.cancel_by if params.cancel_mode else params.user),
                },
            )
            self._audit(cur, audit)
        op = self.operation(r)
        if op.status is Status.READY:
            self._wake(op.queue)
        return op

    def request_cancel(
        self,
        operation_id: uuid.UUID,
        company: str | None,
        at: datetime,
        by: str | None,
        reason: str | None,
        *,
        force: bool = False,
        audit: AuditEntry | None = None,
    ) -> Operation | None:
        with self._tx() as cur:
            cur.execute(
                self.q["request_cancel"],
                {
                    "id": self.enc_uuid(operation_id),
                    "company": company,
                    "at": self.enc_ts(at),
                    "by": by,
                    "reason": reason,
                    "force": self.enc_bool(force),
                },
            )
            r = cur.fetchone()
            if r is None:
                return None
            self._insert_event(
                cur,
                r["id"],
                r["company"],
                at,
                EventType.CANCEL_REQUESTED,
                int(r["run_count"]),
                {"by": by, "reason": reason, "force": force},
            )
            self._cancel_requested(cur, operation_id)
            self._audit(cur, audit)
        return self.operation(r)

    def _cancel_requested(self, cur: Any, operation_id: uuid.UUID) -> None:
        """Tell the running worker at once (PostgreSQL); SQLite's workers poll for it."""

    def delete_operation(
        self, operation_id: uuid.UUID, company: str | None, *, audit: AuditEntry | None = None
    ) -> bool:
        with self._tx() as cur:
            key = self.enc_uuid(operation_id)
            cur.execute(self.q["delete_operation"], {"id": key, "company": company})
            if cur.fetchone() is None:
                return False
            cur.execute(self.q["delete_events"], {"id": key})
            self._audit(cur, audit)
            return True

    def delete_failed(
        self, company: str, ended_before: datetime, *, audit: AuditEntry | None = None
    ) -> int:
        with self._tx() as cur:
            cur.execute(
                self.q["delete_failed"],
                {"company": company, "ended_before": self.enc_ts(ended_before)},
            )
            gone = [r["id"] for r in cur.fetchall()]
            for op_id in gone:
                cur.execute(self.q["delete_events"], {"id": op_id})
            removed = len(gone)
            if audit is not None:
                details = {**audit.details, "removed": removed}
                self._audit(cur, AuditEntry(**{**_fields(audit), "details": details}))
            return removed

    def list_attempts(
        self, operation_id: uuid.UUID, *, companies: Companies = None
    ) -> list[Attempt]:
        params = {"id": self.enc_uuid(operation_id), "companies": self.enc_companies(companies)}
        return [self.attempt(r) for r in self._all("list_attempts", params)]

    def list_events(
        self,
        operation_id: uuid.UUID,
        *,
        after_id: int | None = None,
        types: Sequence[EventType] = (),
        limit: int = 1000,
        run_no: int | None = None,
        newest_first: bool = False,
    ) -> list[OperationEvent]:
        rows = self._all(
            "list_events",
            {
                "id": self.enc_uuid(operation_id),
                "after_id": after_id,
                "types": self.enc_list([t.value for t in types]),
                "limit": limit,
                "run_no": run_no,
                "newest_first": self.enc_bool(newest_first),
            },
        )
        return [self.event(r) for r in rows]

    def events_since(self, after_id: int, limit: int = 1000) -> list[OperationEvent]:
        rows = self._all("events_since", {"after_id": after_id, "limit": limit})
        return [self.event(r) for r in rows]

    def company_events_since(
        self, company: str, after_id: int, limit: int = 1000
    ) -> list[OperationEvent]:
        rows = self._all(
            "company_events_since", {"company": company, "after_id": after_id, "limit": limit}
        )
        return [self.event(r) for r in rows]

    def last_event_id(self) -> int:
        r = self._one("last_event_id")
        return 0 if r is None else int(r["id"])

    def last_entry_no(self) -> int:
        r = self._one("last_entry_no")
        return 0 if r is None else int(r["entry_no"])

    def writers_snapshot(self) -> str | None:
        return None

    def writers_done(self, token: str) -> bool:
        return True

    def _wait_rows(self) -> list[list[Row]]:
        """The eight reads wait reasons are derived from, in one go: every ready operation
        the API shows reads them. Rows of ``running_in_categories``, ``list_all_categories``,
        ``served_queues``, ``running_per_company``, ``list_paused_queues``,
        ``list_companies``, ``list_users``, ``list_memberships``, in that order."""
        return self._reads(
            [
                ("running_in_categories", {}),
                ("list_all_categories", {}),
                ("served_queues", {}),
                ("running_per_company", {}),
                ("list_paused_queues", {}),
                ("list_companies", {"companies": self.enc_companies(None)}),
                ("list_users", {}),
                ("list_memberships", {"name": None}),
            ]
        )

    def wait_context(self, now: datetime) -> WaitContext:
        (
            holding,
            category_rows,
            queue_rows,
            running_rows,
            paused_rows,
            company_rows,
            user_rows,
            member_rows,
        ) = self._wait_rows()
        paused = frozenset(r["name"] for r in paused_rows)
        holders: dict[tuple[str, str], list[uuid.UUID]] = {}
        for r in holding:
            holders.setdefault((r["company"], r["category"]), []).append(self.dec_uuid(r["id"]))
        categories = {
            (c.company, c.code): CategorySlots(
                c.max_concurrent, c.paused, tuple(holders.get((c.company, c.code), ()))
            )
            for c in (self.category(r) for r in category_rows)
        }
        served: dict[str, frozenset[str] | None] = {}
        tasks: set[str] | None = set()
        for r in queue_rows:
            if r.get("tasks") is None:
                tasks = None  # a session that runs any task (code from before 0012)
            elif tasks is not None:
                tasks.update(self.dec_list(r["tasks"]))
            companies = None if r["companies"] is None else frozenset(self.dec_list(r["companies"]))
            known = served.get(r["name"], frozenset())
            # A session serving every company makes the queue served for all of them.
            served[r["name"]] = None if companies is None or known is None else known | companies
        running = {r["company"]: int(r["running"]) for r in running_rows}
        # Who may still run what (run-time security: a disabled user's operation waits).
        users = {u.name: u for u in self._users(user_rows, member_rows)}
        return WaitContext(
            now=now,
            paused_queues=paused,
            categories=categories,
            served_queues=frozenset(served),
            served_companies=served,
            companies={
                c.name: CompanyState(c.active, c.max_in_process, running.get(c.name, 0))
                for c in (_company(r) for r in company_rows)
            },
            users=users or None,
            served_tasks=None if tasks is None else frozenset(tasks),
        )

    def recent_durations(self, task: str, limit: int = 20) -> list[float]:
        rows = self._all("recent_durations", {"task": task, "limit": limit})
        return [float(r["seconds"]) for r in rows if r["seconds"] is not None]

    def cancel_requested(self, operation_ids: Sequence[uuid.UUID]) -> list[CancelSignal]:
        ids = self.enc_list([self.enc_uuid(i) for i in operation_ids])
        rows = self._all("cancel_requested", {"ids": ids})
        return [
            CancelSignal(
                self.dec_uuid(r["id"]),
                bool(r["cancel_force"]),
                r["cancel_reason"],
                r["cancel_requested_by"],
            )
            for r in rows
        ]

    def cancel_listener(self) -> Any:
        return None

    def _lock_run(self, cur: Any, operation_id: uuid.UUID, lease_token: uuid.UUID) -> Row | None:
        """The running row, if the lease still holds (locked on PostgreSQL)."""
        cur.execute(
            self.q["lock_run_row"],
            {"id": self.enc_uuid(operation_id), "lease_token": self.enc_uuid(lease_token)},
        )
        row: Row | None = cur.fetchone()
        return row

    def save_checkpoint(
        self,
        operation_id: uuid.UUID,
        lease_token: uuid.UUID,
        at: datetime,
        state_json: str,
        progress_json: str | None = None,
        *,
        moved: bool = False,
    ) -> bool:
        with self._tx() as cur:
            row = self._lock_run(cur, operation_id, lease_token)
            if row is None:
                return False
            key = self.enc_uuid(operation_id)
            cur.execute(
                self.q["save_checkpoint"],
                {
                    "id": key,
                    "lease_token": self.enc_uuid(lease_token),
                    "at": self.enc_ts(at),
                    "state": state_json,
                    "progress": progress_json,
                    "moved": self.enc_bool(moved),
                },
            )
            run_no = int(row["run_count"])
            self._insert_event(
                cur,
                key,
                row["company"],
                at,
                EventType.CHECKPOINT,
                run_no,
                {"bytes": len(state_json)},
            )
            if moved and row["stalled_at"] is not None:
                self._insert_event(
                    cur,
                    key,
                    row["company"],
                    at,
                    EventType.UNSTALLED,
                    run_no,
                    {"stalled_at": self.dec_ts(row["stalled_at"]).isoformat()},
                )
                telemetry.unstalled([operation_id])
            return True

    def mark_cancel_overdue(
        self, operation_id: uuid.UUID, lease_token: uuid.UUID, at: datetime, data: dict[str, Any]
    ) -> bool:
        with self._tx() as cur:
            cur.execute(
                self.q["mark_cancel_overdue"],
                {
                    "id": self.enc_uuid(operation_id),
                    "lease_token": self.enc_uuid(lease_token),
                    "at": self.enc_ts(at),
                },
            )
            r = cur.fetchone()
            if r is None:
                return False
            self._insert_event(
                cur, r["id"], r["company"], at, EventType.CANCEL_OVERDUE, int(r["run_count"]), data
            )
            return True

    def record_run_event(
        self,
        operation_id: uuid.UUID,
        lease_token: uuid.UUID,
        at: datetime,
        type: EventType,
        data: dict[str, Any],
    ) -> bool:
        with self._tx() as cur:
            r = self._lock_run(cur, operation_id, lease_token)
            if r is None:
                return False
            self._insert_event(
                cur, self.enc_uuid(operation_id), r["company"], at, type, int(r["run_count"]), data
            )
        return True

    def flag_stalled(self, now: datetime) -> list[uuid.UUID]:
        with self._tx() as cur:
            cur.execute(self.q["flag_stalled"], {"now": self.enc_ts(now)})
            rows = list(cur.fetchall())
            for r in rows:
                self._insert_event(
                    cur,
                    r["id"],
                    r["company"],
                    now,
                    EventType.STALLED,
                    int(r["run_count"]),
                    {"progress_moved_at": self.dec_ts(r["progress_moved_at"]).isoformat()},
                )
        return [self.dec_uuid(r["id"]) for r in rows]

    def next_due_at(
        self, queues: Sequence[str], companies: Sequence[str] | None = None
    ) -> datetime | None:
        r = self._one(
            "next_due_at",
            {"queues": self.enc_list(list(queues)), "companies": self.enc_companies(companies)},
        )
        return None if r is None or r["due"] is None else self.dec_ts(r["due"])

    # -- sessions ------------------------------------------------------------------------------
    def register_session(self, session: Session) -> None:
        with self._tx() as cur:
            cur.execute(
                self.q["insert_session"],
                {
                    "id": self.enc_uuid(session.id),
                    "host": session.host,
                    "pid": session.pid,
                    "queues": self.enc_list(list(session.queues)),
                    "concurrency": session.concurrency,
                    "state": session.state.value,
                    "started_at": self.enc_ts(session.started_at),
                    "companies": self.enc_companies(session.companies),
                    "tasks": None if session.tasks is None else self.enc_list(session.tasks),
                    "code_version": session.code_version,
                    "schema_version": session.schema_version,
                },
            )
            self._event(
                cur,
                session.id,
                SessionEventType.LOGON,
                session.started_at,
                f"{session.host} pid {session.pid}",
            )

    def heartbeat(self, session_id: uuid.UUID, at: datetime) -> SessionState | None:
        with self._tx() as cur:
            cur.execute(
                self.q["heartbeat"], {"id": self.enc_uuid(session_id), "at": self.enc_ts(at)}
            )
            row = cur.fetchone()
            if row is None:
                cur.execute(self.q["get_session_state"], {"id": self.enc_uuid(session_id)})
                row = cur.fetchone()
            return None if row is None else SessionState(row["state"])

    def _event(
        self,
        cur: Any,
        session_id: uuid.UUID,
        event: SessionEventType,
        at: datetime,
        comment: str | None,
    ) -> None:
        cur.execute(
            self.q["insert_session_event"],
            {
                "session_id": self.enc_uuid(session_id),
                "type": event.value,
                "at": self.enc_ts(at),
                "comment": comment,
            },
        )
        telemetry.session_event(session_id, event)

    def end_session(
        self,
        session_id: uuid.UUID,
        state: SessionState,
        at: datetime,
        event: SessionEventType,
        comment: str | None = None,
    ) -> None:
        with self._tx() as cur:
            cur.execute(
                self.q["end_session"],
                {"id": self.enc_uuid(session_id), "state": state.value, "at": self.enc_ts(at)},
            )
            self._event(cur, session_id, event, at, comment)

    def record_session_event(
        self, session_id: uuid.UUID, event: SessionEventType, at: datetime, comment: str | None
    ) -> None:
        with self._tx() as cur:
            self._event(cur, session_id, event, at, comment)

    def request_drain(
        self, session_id: uuid.UUID, at: datetime, comment: str, *, audit: AuditEntry | None = None
    ) -> Session | None:
        with self._tx() as cur:
            cur.execute(self.q["request_drain"], {"id": self.enc_uuid(session_id)})
            row = cur.fetchone()
            if row is None:
                return None
            self._event(cur, session_id, SessionEventType.DRAIN_STARTED, at, comment)
            self._audit(cur, audit)
        return self.session(row)

    def list_sessions(self, *, active_only: bool = False) -> list[Session]:
        rows = self._all("list_sessions", {"active_only": self.enc_bool(active_only)})
        return [self.session(r) for r in rows]

    # -- apps (issue 15: apps, the schema guard, uninstall) ----------------------------------
    def set_session_tasks(self, session_id: uuid.UUID, tasks: Sequence[str]) -> None:
        with self._tx() as cur:
            cur.execute(
                self.q["set_session_tasks"],
                {"id": self.enc_uuid(session_id), "tasks": self.enc_list(list(tasks))},
            )

    def applied_migrations(self) -> dict[int, tuple[str, frozenset[str]]]:
        """Each applied migration's name and declared flags (the schema guard's input)."""
        rows = self._all("list_migrations_flags")
        return {
            int(r["version"]): (
                r["name"],
                frozenset(f for f in (r.get("flags") or "").split(",") if f),
            )
            for r in rows
        }

    def record_apps(self, apps: Sequence[AppInfo], at: datetime) -> None:
        """Record the apps a worker or server has and their tasks. Tasks are added, never
        dropped: in a rolling deploy an older worker starting again must not forget the
        tasks the newer version added (an uninstall finds their operations by them). An
        app seen again is no longer uninstalled."""
        with self._tx() as cur:
            for app in apps:
                name = {"app": app.name}
                cur.execute(
                    self.q["upsert_app"],
                    {**name, "version": app.version, "at": self.enc_ts(at)},
                )
                for task in app.tasks:
                    wait = task.worker_wait
                    cur.execute(
                        self.q["insert_app_task"],
                        {
                            **name,
                            "task": task.name,
                            "wait": None if wait is None else wait.total_seconds(),
                        },
                    )

    def list_apps(self) -> list[AppRecord]:
        """Every recorded app with its tasks and the live sessions having any of them."""
        apps = self._all("list_apps")
        tasks = self._all("list_app_tasks")
        live = self.list_sessions(active_only=True)
        out = []
        for a in apps:
            mine = tuple(
                AppTask(
                    t["task"],
                    None
                    if t["worker_wait_seconds"] is None
                    else timedelta(seconds=float(t["worker_wait_seconds"])),
                )
                for t in tasks
                if t["app"] == a["name"]
            )
            names = {t.name for t in mine}
            served = tuple(str(s.id) for s in live if s.tasks is not None and names & set(s.tasks))
            out.append(
                AppRecord(
                    a["name"],
                    a["version"],
                    mine,
                    self.dec_ts(a["seen_at"]),
                    self.dec_ts_opt(a["uninstalled_at"]),
                    served,
                )
            )
        return out

    def mark_app_uninstalled(
        self,
        name: str,
        at: datetime | None,
        purge_at: datetime | None,
        *,
        audit: AuditEntry | None = None,
    ) -> None:
        with self._tx() as cur:
            cur.execute(
                self.q["mark_app_uninstalled"],
                {"app": name, "at": self.enc_ts(at), "purge_at": self.enc_ts(purge_at)},
            )
            self._audit(cur, audit)

    def mark_app_exported(self, name: str, at: datetime) -> None:
        with self._tx() as cur:
            cur.execute(self.q["mark_app_exported"], {"app": name, "at": self.enc_ts(at)})

    def app_exported_at(self, name: str) -> datetime | None:
        r = self._one("get_app", {"app": name})
        return None if r is None else self.dec_ts_opt(r["exported_at"])

    def operations_of_tasks(
        self, tasks: Sequence[str], companies: Sequence[str] | None, *, after_entry: int = 0
    ) -> list[Operation]:
        """Up to 1,000 operations of ``tasks`` (in ``companies``; None: all) after entry
        number ``after_entry``, in entry order (page on with the last one's)."""
        rows = self._all(
            "operations_of_tasks",
            {
                "tasks": self.enc_list(list(tasks)),
                "companies": self.enc_companies(companies),
                "after": after_entry,
            },
        )
        return [self.operation(r) for r in rows]

    def delete_unused_categories(self, company: str, codes: Sequence[str]) -> list[str]:
        """Delete those of ``company``'s categories no active operation uses; their codes."""
        with self._tx() as cur:
            cur.execute(
                self.q["delete_unused_categories"],
                {"company": company, "codes": self.enc_list(list(codes))},
            )
            return sorted(r["code"] for r in cur.fetchall())

    def fail_unserved(self, now: datetime) -> list[uuid.UUID]:
        """Fail the ready operations whose task no live session has and that waited past
        their task's ``worker_wait`` (status ``error``, reason ``no_worker_for_task``)."""
        with self._tx() as cur:
            cur.execute(self.q["fail_unserved"], {"now": self.enc_ts(now)})
            return [self.dec_uuid(r["id"]) for r in cur.fetchall()]

    def purge_uninstalled(self, now: datetime) -> int:
        """Delete the finished, failed and cancelled operations (with their history) of
        apps uninstalled with a purge date that has passed; how many."""
        params = {"now": self.enc_ts(now)}
        with self._tx() as cur:
            # SQLite has no data-modifying CTEs: the history goes first, statement by statement.
            for name in ("purge_uninstalled_events", "purge_uninstalled_attempts"):
                if name in self.q:
                    cur.execute(self.q[name], params)
            cur.execute(self.q["purge_uninstalled"], params)
            return len(cur.fetchall())

    def fleet_metrics(self, now: datetime) -> FleetSnapshot:
        snap = FleetSnapshot(at=now)
        alive = 0
        for r in self._all("fleet_metrics", {"now": self.enc_ts(now)}):
            metric, n = r["metric"], int(r["n"])
            if metric == "operations":
                snap.operations.append((r["company"], r["queue"], r["status"], n))
            elif metric == "oldest_ready":
                snap.oldest_ready[r["queue"]] = self.dec_ts(r["at"])
            elif metric == "stalled":
                snap.stalled[r["company"]] = n
            else:
                alive = n
        return replace(snap, sessions_alive=alive)

    def list_session_events(self, session_id: uuid.UUID | None = None) -> list[SessionEvent]:
        rows = self._all("list_session_events", {"session_id": self.enc_uuid(session_id)})
        return [
            SessionEvent(
                id=int(r["id"]),
                session_id=self.dec_uuid(r["session_id"]),
                type=SessionEventType(r["type"]),
                at=self.dec_ts(r["at"]),
                comment=r["comment"],
            )
            for r in rows
        ]

    # -- services ------------------------------------------------------------------------------
    def mark_lost_sessions(self, now: datetime, timeout: timedelta) -> list[uuid.UUID]:
        with self._tx() as cur:
            cur.execute(
                self.q["mark_lost_sessions"],
                {"now": self.enc_ts(now), "cutoff": self.enc_ts(now - timeout)},
            )
            lost = [self.dec_uuid(r["id"]) for r in cur.fetchall()]
            for sid in lost:
                self._event(
                    cur,
                    sid,
                    SessionEventType.LOST,
                    now,
                    f"no heartbeat for {timeout.total_seconds():g} s",
                )
        return lost

    def orphaned_runs(self, limit: int = 1000) -> list[ClaimedRun]:
        return [
            ClaimedRun(self.operation(r), int(r["run_count"]))
            for r in self._all("orphaned_runs", {"limit": limit})
        ]

    def session_runs(self, session_id: uuid.UUID) -> list[ClaimedRun]:
        return [
            ClaimedRun(self.operation(r), int(r["run_count"]))
            for r in self._all("session_runs", {"session_id": self.enc_uuid(session_id)})
        ]

    def expire_operations(self, now: datetime) -> list[uuid.UUID]:
        with self._tx() as cur:
            cur.execute(self.q["expire_operations"], {"now": self.enc_ts(now)})
            rows = list(cur.fetchall())
            for r in rows:
                self._insert_event(
                    cur,
                    r["id"],
                    r["company"],
                    now,
                    EventType.STATUS_CHANGED,
                    None,
                    {"action": "expire", "status": Status.CANCELLED.value, "by": None},
                )
        return [self.dec_uuid(r["id"]) for r in rows]

    def prune(self, older_than: datetime) -> int:
        before = {"before": self.enc_ts(older_than)}
        with self._tx() as cur:
            self._allow_long(cur)  # the first prune of a large backlog deletes many rows
            cur.execute(self.q["prune_operations"], before)
            removed = int(cur.rowcount)
            cur.execute(self.q["prune_attempts"], before)
            cur.execute(self.q["prune_session_events"], before)
            cur.execute(self.q["prune_sessions"], before)
            cur.execute(self.q["prune_notifications"], before)
            cur.execute(self.q["prune_web_sessions"], before)
            cur.execute(self.q["prune_notify_deliveries"], before)
            cur.execute(self.q["prune_notify_outbox"], before)
        # Timelines in batches, each its own short transaction.
        for _ in range(1000):
            with self._tx() as cur:
                cur.execute(self.q["prune_operation_events"], before)
                if cur.rowcount < 10_000:
                    break
        return removed

    def try_lead(self, name: str, session_id: uuid.UUID, now: datetime, ttl: timedelta) -> bool:
        r = self._write_one(
            "try_lead",
            {
                "name": name,
                "session_id": self.enc_uuid(session_id),
                "now": self.enc_ts(now),
                "expires_at": self.enc_ts(now + ttl),
            },
        )
        return r is not None

    def resign(self, name: str, session_id: uuid.UUID) -> None:
        with self._tx() as cur:
            cur.execute(self.q["resign"], {"name": name, "session_id": self.enc_uuid(session_id)})

    def ready_recurring(self, now: datetime, limit: int) -> list[Operation]:
        rows = self._all("ready_recurring", {"now": self.enc_ts(now), "limit": limit})
        return [self.operation(r) for r in rows]

    def move_start(
        self, operation_id: uuid.UUID, expected_start: datetime, new_start: datetime, at: datetime
    ) -> bool:
        r = self._write_one(
            "move_start",
            {
                "id": self.enc_uuid(operation_id),
                "expected_start": self.enc_ts(expected_start),
                "new_start": self.enc_ts(new_start),
                "at": self.enc_ts(at),
            },
        )
        return r is not None

    # -- users, permission sets, tokens, audit ------------------------------------------------
    def insert_user(
        self, user: User, password_hash: str | None, *, audit: AuditEntry | None = None
    ) -> bool:
        with self._tx() as cur:
            cur.execute(
                self.q["insert_user"],
                {
                    "name": user.name,
                    "display_name": user.display_name,
                    "password_hash": password_hash,
                    "state": user.state.value,
                    "is_super": self.enc_bool(user.is_super),
                    "created_at": self.enc_ts(user.created_at),
                },
            )
            if cur.fetchone() is None:
                return False
            for company, permission_set in user.grants:
                self._grant(cur, user.name, company, permission_set, user.created_at)
            self._audit(cur, audit)
        return True

    def _grant(
        self, cur: Any, name: str, company: str, permission_set: PermissionSet, at: datetime
    ) -> bool:
        cur.execute(
            self.q["insert_membership"],
            {
                "name": name,
                "company": company,
                "permission_set": permission_set.value,
                "at": self.enc_ts(at),
            },
        )
        return cur.fetchone() is not None

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

    def get_user(self, name: str) -> User | None:
        with self._read() as cur:
            return self._user_in(cur, name)

    def _user_in(self, cur: Any, name: str) -> User | None:
        cur.execute(self.q["get_user"], {"name": name})
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute(self.q["list_memberships"], {"name": name})
        [user] = self._users([row], list(cur.fetchall()))
        return user

    def token_user(self, token_id: uuid.UUID) -> tuple[ApiToken, str, User] | None:
        # The token, its user and the user's grants, all keyed by the token: independent
        # reads, so one round trip on PostgreSQL (every API request starts here).
        key = {"id": self.enc_uuid(token_id)}
        tokens, users, members = self._reads(
            [("get_token", key), ("get_token_user", key), ("list_token_memberships", key)]
        )
        if not tokens or not users:
            return None
        [user] = self._users(users, members)
        return self._token(tokens[0]), tokens[0]["token_hash"], user

    def web_session_user(self, session_id: uuid.UUID) -> tuple[WebSession, str, User] | None:
        found = self._row_with_user("get_web_session", session_id)
        if found is None:
            return None
        return self._web_session(found[0]), found[0]["secret_hash"], found[1]

    def _row_with_user(self, query: str, key: uuid.UUID) -> tuple[Row, User] | None:
        """A credential's row and its user with grants, in one read transaction."""
        with self._read() as cur:
            cur.execute(self.q[query], {"id": self.enc_uuid(key)})
            r = cur.fetchone()
            user = None if r is None else self._user_in(cur, r["user_name"])
        return None if r is None or user is None else (r, user)

    def list_users(self) -> list[User]:
        with self._read() as cur:
            cur.execute(self.q["list_users"], {})
            rows = list(cur.fetchall())
            cur.execute(self.q["list_memberships"], {"name": None})
            return self._users(rows, list(cur.fetchall()))

    def get_password_hash(self, name: str) -> str | None:
        r = self._one("get_password_hash", {"name": name})
        return None if r is None else r["password_hash"]

    def set_password_hash(self, name: str, password_hash: str, at: datetime) -> bool:
        params = {"name": name, "password_hash": password_hash, "at": self.enc_ts(at)}
        return self._write_one("set_password_hash", params) is not None

    def set_user_state(
        self, name: str, state: UserState, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"name": name, "state": state.value, "at": self.enc_ts(at)}
        return self._write_audited("set_user_state", params, audit) is not None

    def set_user_super(
        self, name: str, is_super: bool, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"name": name, "is_super": self.enc_bool(is_super), "at": self.enc_ts(at)}
        return self._write_audited("set_user_super", params, audit) is not None

    def delete_user(self, name: str, *, audit: AuditEntry | None = None) -> bool:
        return self._write_audited("delete_user", {"name": name}, audit) is not None

    def grant(
        self,
        name: str,
        company: str,
        permission_set: PermissionSet,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        with self._tx() as cur:
            if not self._grant(cur, name, company, permission_set, at):
                return False
            self._audit(cur, audit)
        return True

    def revoke(
        self,
        name: str,
        company: str,
        permission_set: PermissionSet,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        params = {"name": name, "company": company, "permission_set": permission_set.value}
        return self._write_audited("delete_membership", params, audit) is not None

    def active_users(self, names: Collection[str]) -> set[str]:
        if not names:
            return set()
        rows = self._all("active_users", {"names": self.enc_list(sorted(names))})
        return {r["name"] for r in rows}

    def _token(self, r: Row) -> ApiToken:
        return ApiToken(
            id=self.dec_uuid(r["id"]),
            user=r["user_name"],
            name=r["name"],
            created_at=self.dec_ts(r["created_at"]),
            expires_at=self.dec_ts_opt(r["expires_at"]),
            last_used_at=self.dec_ts_opt(r["last_used_at"]),
            revoked_at=self.dec_ts_opt(r["revoked_at"]),
        )

    def insert_token(
        self, token: ApiToken, token_hash: str, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {
            "id": self.enc_uuid(token.id),
            "user_name": token.user,
            "name": token.name,
            "token_hash": token_hash,
            "created_at": self.enc_ts(token.created_at),
            "expires_at": self.enc_ts(token.expires_at),
        }
        return self._write_audited("insert_token", params, audit) is not None

    def get_token(self, token_id: uuid.UUID) -> tuple[ApiToken, str, UserState] | None:
        r = self._one("get_token", {"id": self.enc_uuid(token_id)})
        if r is None:
            return None
        return self._token(r), r["token_hash"], UserState(r["user_state"])

    def touch_token(self, token_id: uuid.UUID, at: datetime, not_since: datetime) -> None:
        with self._tx() as cur:
            cur.execute(
                self.q["touch_token"],
                {
                    "id": self.enc_uuid(token_id),
                    "at": self.enc_ts(at),
                    "not_since": self.enc_ts(not_since),
                },
            )

    def list_tokens(self, user: str) -> list[ApiToken]:
        return [self._token(r) for r in self._all("list_tokens", {"user_name": user})]

    def revoke_token(
        self, token_id: uuid.UUID, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"id": self.enc_uuid(token_id), "at": self.enc_ts(at)}
        return self._write_audited("revoke_token", params, audit) is not None

    def _web_session(self, r: Row) -> WebSession:
        return WebSession(
            id=self.dec_uuid(r["id"]),
            user=r["user_name"],
            created_at=self.dec_ts(r["created_at"]),
            last_seen_at=self.dec_ts(r["last_seen_at"]),
            expires_at=self.dec_ts(r["expires_at"]),
            revoked_at=self.dec_ts_opt(r["revoked_at"]),
            client=r["client"],
        )

    def insert_web_session(
        self, session: WebSession, secret_hash: str, *, audit: AuditEntry | None = None
    ) -> None:
        params = {
            "id": self.enc_uuid(session.id),
            "user_name": session.user,
            "secret_hash": secret_hash,
            "created_at": self.enc_ts(session.created_at),
            "expires_at": self.enc_ts(session.expires_at),
            "client": session.client,
        }
        self._write_audited("insert_web_session", params, audit)

    def get_web_session(self, session_id: uuid.UUID) -> tuple[WebSession, str, UserState] | None:
        r = self._one("get_web_session", {"id": self.enc_uuid(session_id)})
        if r is None:
            return None
        return self._web_session(r), r["secret_hash"], UserState(r["user_state"])

    def touch_web_session(self, session_id: uuid.UUID, at: datetime, not_since: datetime) -> None:
        params = {
            "id": self.enc_uuid(session_id),
            "at": self.enc_ts(at),
            "not_since": self.enc_ts(not_since),
        }
        with self._tx() as cur:
            cur.execute(self.q["touch_web_session"], params)

    def list_web_sessions(self, user: str) -> list[WebSession]:
        return [self._web_session(r) for r in self._all("list_web_sessions", {"user_name": user})]

    def revoke_web_sessions(
        self,
        user: str,
        at: datetime,
        session_id: uuid.UUID | None = None,
        *,
        audit: AuditEntry | None = None,
    ) -> int:
        params = {"user_name": user, "at": self.enc_ts(at), "id": self.enc_uuid(session_id)}
        with self._tx() as cur:
            cur.execute(self.q["revoke_web_sessions"], params)
            ended = len(cur.fetchall())
            if ended:
                self._audit(cur, audit)
            return ended

    def record_audit(self, entry: AuditEntry) -> None:
        with self._tx() as cur:
            self._audit(cur, entry)

    def _audit_entry(self, r: Row) -> AuditEntry:
        return AuditEntry(
            id=int(r["id"]),
            company=r["company"],
            at=self.dec_ts(r["at"]),
            actor=r["actor"],
            front_end=FrontEnd(r["front_end"]),
            action=r["action"],
            target=r["target"],
            details=self.dec_json(r["details"]),
        )

    def list_audit(
        self,
        companies: Companies,
        *,
        include_global: bool,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        rows = self._all(
            "list_audit",
            {
                "companies": self.enc_companies(companies),
                "include_global": self.enc_bool(include_global),
                "limit": limit,
                "before_id": before_id,
            },
        )
        return [self._audit_entry(r) for r in rows]

    def personal_data(self, name: str) -> PersonalData:
        user = self.get_user(name)
        with self._read() as cur:
            cur.execute(self.q["personal_operations"], {"name": name})
            ops = [self.operation(r) for r in cur.fetchall()]
            cur.execute(self.q["personal_attempts"], {"name": name})
            attempts = [self.attempt(r) for r in cur.fetchall()]
            cur.execute(self.q["personal_audit"], {"name": name, "target": user_target(name)})
            audit = [self._audit_entry(r) for r in cur.fetchall()]
            cur.execute(self.q["personal_events"], {"name": name})
            events = [self.event(r) for r in cur.fetchall()]
            cur.execute(self.q["personal_notifications"], {"name": name})
            notes = [self.notification(r) for r in cur.fetchall()]
        return PersonalData(user, self.list_tokens(name), ops, attempts, audit, events, notes)

    def forget_user(self, name: str, pseudonym: str, *, audit: AuditEntry | None = None) -> int:
        params = {
            "name": name,
            "pseudonym": pseudonym,
            "target": user_target(name),
            "pseudonym_target": user_target(pseudonym),
        }
        changed = 0
        with self._tx() as cur:
            for query in (
                "forget_operations",
                "forget_attempts",
                "forget_audit",
                "forget_events",
                "forget_notifications",
            ):
                cur.execute(self.q[query], params)
                changed += int(cur.rowcount)
            cur.execute(self.q["delete_user"], {"name": name})
            changed += len(cur.fetchall())
            if changed:
                # Nothing named the user: nothing was forgotten, and nothing is audited.
                self._audit(cur, audit)
        return changed

    # -- the pages ---------------------------------------------------------------------------
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

    def count_capped(self, queries: Sequence[OperationQuery], cap: int) -> list[int]:
        out: list[int] = []
        with self._read() as cur:
            for query in queries:
                params = {**self._query_params(query), "cap": cap}
                name = "count_operations_capped"
                if query.company is not None and len(query.statuses) == 1:
                    name = "count_operations_capped_status"
                    params["status"] = query.statuses[0].value
                cur.execute(self.q[name], params)
                out.append(int(cur.fetchone()["n"]))
        return out

    def list_running(
        self,
        company: str | None = None,
        *,
        user: str | None = None,
        companies: Companies = None,
        limit: int = 100,
    ) -> list[Operation]:
        rows = self._all(
            "list_running",
            {
                "company": company,
                "companies": self.enc_companies(companies),
                "user_name": user,
                "limit": limit,
            },
        )
        return [self.operation(r) for r in rows]

    def runs_per_hour(
        self, company: str, since: datetime, hours: int
    ) -> list[tuple[int, int, int]]:
        rows = self._all(
            "runs_per_hour",
            {
                "company": company,
                "since": self.enc_ts(since),
                "until": self.enc_ts(since + timedelta(hours=hours)),
            },
        )
        return [(int(r["bucket"]), int(r["finished"]), int(r["failed"])) for r in rows]

    def category_activity(self, company: str, cap: int) -> list[CategoryActivity]:
        rows = self._all("category_activity", {"company": company, "cap": cap})
        return [
            CategoryActivity(company, r["code"], int(r["running"]), int(r["waiting"])) for r in rows
        ]

    def list_company_attempts(self, query: AttemptQuery) -> list[LogEntry]:
        rows = self._all(
            "list_company_attempts",
            {
                "company": query.company,
                "companies": self.enc_companies(query.companies),
                "task": query.task,
                "outcomes": self.enc_list([o.value for o in query.outcomes]),
                "operation_id": self.enc_uuid(query.operation_id),
                "started_from": self.enc_ts(query.started_from),
                "started_to": self.enc_ts(query.started_to),
                "before_entry_no": query.before_entry_no,
                "limit": query.limit,
            },
        )
        return [LogEntry(self.attempt(r), r["operation_description"]) for r in rows]

    def delete_attempts(
        self, company: str, ended_before: datetime, *, audit: AuditEntry | None = None
    ) -> int:
        with self._tx() as cur:
            cur.execute(
                self.q["delete_attempts"],
                {"company": company, "ended_before": self.enc_ts(ended_before)},
            )
            removed = int(cur.rowcount)
            if audit is not None:
                details = {**audit.details, "removed": removed}
                self._audit(cur, AuditEntry(**{**_fields(audit), "details": details}))
            return removed

    def update_operation(
        self,
        operation_id: uuid.UUID,
        company: str,
        edit: OperationEdit,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> Operation | None:
        rec = edit.recurrence
        r = self._write_audited(
            "update_operation",
            {
                "id": self.enc_uuid(operation_id),
                "company": company,
                "description": edit.description,
                "priority": int(edit.priority),
                "category": edit.category,
                "earliest_start_at": self.enc_ts(edit.earliest_start_at),
                "recurrence": None if rec is None else json.dumps(rec.to_json()),
                "max_attempts": edit.max_attempts,
                "timeout_seconds": edit.timeout.total_seconds(),
                "at": self.enc_ts(at),
            },
            audit,
        )
        return None if r is None else self.operation(r)

    def list_notifications(
        self,
        company: str,
        user: str,
        *,
        unread_only: bool = False,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Notification]:
        rows = self._all(
            "list_notifications",
            {
                "company": company,
                "user_name": user,
                "unread_only": self.enc_bool(unread_only),
                "before_id": before_id,
                "limit": limit,
            },
        )
        return [self.notification(r) for r in rows]

    def count_unread_notifications(self, company: str, user: str) -> int:
        r = self._one("count_unread_notifications", {"company": company, "user_name": user})
        return 0 if r is None else int(r["n"])

    def mark_notifications_read(
        self, company: str, user: str, ids: Sequence[int] | None, at: datetime
    ) -> int:
        with self._tx() as cur:
            cur.execute(
                self.q["mark_notifications_read"],
                {
                    "company": company,
                    "user_name": user,
                    "ids": None if ids is None else self.enc_ids(ids),
                    "at": self.enc_ts(at),
                },
            )
            return int(cur.rowcount)

    def enc_ids(self, ids: Sequence[int]) -> Any:
        """A list of integer ids as the dialect's queries take it."""
        return json.dumps([int(i) for i in ids])

    def notifications_since(self, after_id: int, limit: int = 1000) -> list[Notification]:
        rows = self._all("notifications_since", {"after_id": after_id, "limit": limit})
        return [self.notification(r) for r in rows]

    def last_notification_id(self) -> int:
        r = self._one("last_notification_id")
        return 0 if r is None else int(r["id"])

    # -- notifications: rules, admins, channels, outbox, deliveries (migration 8) -----------
    def notify_rule(self, r: Row) -> NotifyRule:
        recipients = r["recipients"]
        if isinstance(recipients, str):
            recipients = json.loads(recipients)
        return NotifyRule(
            company=r["company"],
            name=r["name"],
            on=NotifyEvent(r["on_event"]),
            recipients=tuple(recipients),
            task=r["task"],
            category=r["category"],
            queue=r["queue"],
            user=r["user_name"],
            enabled=bool(r["enabled"]),
            created_at=self.dec_ts(r["created_at"]),
            threshold=None if r["threshold"] is None else float(r["threshold"]),
        )

    def upsert_notify_rule(
        self, rule: NotifyRule, *, audit: AuditEntry | None = None
    ) -> NotifyRule:
        r = self._write_audited(
            "upsert_notify_rule",
            {
                "company": rule.company,
                "name": rule.name,
                "on_event": rule.on.value,
                "task": rule.task,
                "category": rule.category,
                "queue": rule.queue,
                "user_name": rule.user,
                "recipients": json.dumps(list(rule.recipients)),
                "enabled": self.enc_bool(rule.enabled),
                "created_at": self.enc_ts(rule.created_at),
                "threshold": rule.threshold,
            },
            audit,
        )
        assert r is not None  # an upsert always returns its row
        return self.notify_rule(r)

    def set_notify_mute(
        self,
        company: str,
        user: str,
        rule: str,
        muted: bool,
        *,
        audit: AuditEntry | None = None,
    ) -> None:
        params = {"company": company, "user_name": user, "rule_name": rule}
        with self._tx() as cur:
            cur.execute(self.q["mute_rule" if muted else "unmute_rule"], params)
            self._audit(cur, audit)

    def set_user_contact(
        self,
        name: str,
        email: str | None,
        notify_by_email: bool,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        params = {
            "name": name,
            "email": email,
            "notify_by_email": self.enc_bool(notify_by_email),
            "at": self.enc_ts(at),
        }
        return self._write_audited("set_user_contact", params, audit) is not None

    def get_user_contact(self, name: str) -> tuple[str | None, bool] | None:
        r = self._one("get_user_contact", {"name": name})
        return None if r is None else (r["email"], bool(r["notify_by_email"]))

    def email_recipients(self) -> dict[str, str]:
        return {str(r["name"]): str(r["email"]) for r in self._all("email_recipients")}

    def set_personal_email_channel(
        self, company: str, name: str | None, *, audit: AuditEntry | None = None
    ) -> bool:
        try:
            with self._tx() as cur:
                cur.execute(self.q["clear_personal_email_channel"], {"company": company})
                if name is not None:
                    cur.execute(
                        self.q["mark_personal_email_channel"], {"company": company, "name": name}
                    )
                    if cur.fetchone() is None:
                        raise _NoSuchChannel  # rolls the clearing back
                self._audit(cur, audit)
        except _NoSuchChannel:
            return False
        return True

    def personal_email_channel(self, company: str) -> str | None:
        r = self._one("personal_email_channel", {"company": company})
        return None if r is None else str(r["name"])

    def list_notify_mutes(self, company: str) -> set[tuple[str, str]]:
        rows = self._all("list_mutes", {"company": company})
        return {(str(r["user_name"]), str(r["rule_name"])) for r in rows}

    def list_watch_rules(self) -> list[NotifyRule]:
        return [self.notify_rule(r) for r in self._all("list_watch_rules")]

    def insert_watched(self, found: Sequence[Watched], at: datetime) -> int:
        """Write watched conditions to the outbox; one already told adds nothing."""
        added = 0
        with self._tx() as cur:
            for w in found:
                cur.execute(
                    self.q["insert_watched"],
                    {
                        "company": w.company,
                        "operation_id": self.enc_uuid(w.operation_id),
                        "event": w.event.value,
                        "at": self.enc_ts(at),
                        "rule_name": w.rule_name,
                        "dedup": w.dedup,
                    },
                )
                added += max(0, int(cur.rowcount))
        return added

    def delete_notify_rule(
        self, company: str, name: str, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"company": company, "name": name}
        return self._write_audited("delete_notify_rule", params, audit) is not None

    def list_notify_rules(self, company: str) -> list[NotifyRule]:
        return [self.notify_rule(r) for r in self._all("list_notify_rules", {"company": company})]

    def add_notified_admin(
        self, company: str, user: str, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"company": company, "user_name": user}
        return self._write_audited("add_notified_admin", params, audit) is not None

    def remove_notified_admin(
        self, company: str, user: str, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"company": company, "user_name": user}
        return self._write_audited("remove_notified_admin", params, audit) is not None

    def list_notified_admins(self, company: str) -> list[str]:
        rows = self._all("list_notified_admins", {"company": company})
        return [str(r["user_name"]) for r in rows]

    def notify_channel(self, r: Row) -> NotifyChannel:
        return NotifyChannel(
            company=r["company"],
            name=r["name"],
            url_masked=r["url_masked"],
            url_schema=r["url_schema"],
            created_at=self.dec_ts(r["created_at"]),
            rate_limit=r["rate_limit"],
            rate_window=int(r["rate_window"]),
        )

    def upsert_notify_channel(
        self, channel: NotifyChannel, url_secret: str, *, audit: AuditEntry | None = None
    ) -> NotifyChannel:
        r = self._write_audited(
            "upsert_notify_channel",
            {
                "company": channel.company,
                "name": channel.name,
                "url_secret": url_secret,
                "url_masked": channel.url_masked,
                "url_schema": channel.url_schema,
                "rate_limit": channel.rate_limit,
                "rate_window": channel.rate_window,
                "created_at": self.enc_ts(channel.created_at),
            },
            audit,
        )
        assert r is not None  # an upsert always returns its row
        return self.notify_channel(r)

    def delete_notify_channel(
        self, company: str, name: str, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"company": company, "name": name}
        return self._write_audited("delete_notify_channel", params, audit) is not None

    def list_notify_channels(self, company: str) -> list[NotifyChannel]:
        rows = self._all("list_notify_channels", {"company": company})
        return [self.notify_channel(r) for r in rows]

    def get_notify_channel_secret(
        self, company: str, name: str
    ) -> tuple[str, int | None, int] | None:
        r = self._one("get_notify_channel_secret", {"company": company, "name": name})
        if r is None:
            return None
        return str(r["url_secret"]), r["rate_limit"], int(r["rate_window"])

    def pending_outbox(self, limit: int = 100) -> list[OutboxEntry]:
        rows = self._all("pending_outbox", {"limit": limit})
        return [
            OutboxEntry(
                id=int(r["id"]),
                company=r["company"],
                operation_id=self.dec_uuid(r["operation_id"]),
                event=NotifyEvent(r["event"]),
                at=self.dec_ts(r["at"]),
                rule_name=r["rule_name"],
            )
            for r in rows
        ]

    def expand_outbox(
        self, entry: OutboxEntry, planned: Sequence[PlannedDelivery], at: datetime
    ) -> int:
        """Write one delivery per planned recipient and mark ``entry`` expanded: one
        transaction, and a second expansion of the same entry adds nothing (unique key)."""
        with self._tx() as cur:
            for p in planned:
                cur.execute(
                    self.q["insert_delivery"],
                    {
                        "outbox_id": entry.id,
                        "company": entry.company,
                        "operation_id": self.enc_uuid(entry.operation_id),
                        "event": entry.event.value,
                        "rule_name": p.rule_name,
                        "recipient": p.recipient,
                        "idem_key": self.enc_uuid(
                            notify_idem_key(entry.id, entry.operation_id, p.recipient)
                        ),
                        "at": self.enc_ts(at),
                    },
                )
            cur.execute(self.q["mark_outbox_expanded"], {"id": entry.id, "at": self.enc_ts(at)})
            return len(planned)

    def delivery(self, r: Row) -> Delivery:
        return Delivery(
            id=int(r["id"]),
            outbox_id=int(r["outbox_id"]),
            company=r["company"],
            operation_id=self.dec_uuid(r["operation_id"]),
            event=NotifyEvent(r["event"]),
            rule_name=r["rule_name"],
            recipient=r["recipient"],
            idem_key=self.dec_uuid(r["idem_key"]),
            status=DeliveryStatus(r["status"]),
            attempts=int(r["attempts"]),
            next_at=self.dec_ts(r["next_at"]),
            created_at=self.dec_ts(r["created_at"]),
            last_error=r["last_error"],
            sent_at=self.dec_ts_opt(r["sent_at"]),
            claim_token=self.dec_uuid_opt(r["claim_token"]),
        )

    def claim_deliveries(self, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
        """Take up to ``limit`` due deliveries for ``lease``; a sender that dies holds them
        no longer than that."""
        if self._one("deliveries_due", {"now": self.enc_ts(now)}) is None:
            return []  # idle: no write transaction
        with self._tx() as cur:
            cur.execute(
                self.q["claim_deliveries"],
                {
                    "claim_token": self.enc_uuid(uuid.uuid4()),
                    "until": self.enc_ts(now + lease),
                    "now": self.enc_ts(now),
                    "limit": limit,
                },
            )
            rows = list(cur.fetchall())
        return sorted((self.delivery(r) for r in rows), key=lambda d: d.id)

    def finish_delivery(
        self,
        delivery: Delivery,
        status: DeliveryStatus,
        at: datetime,
        *,
        next_at: datetime | None = None,
        error: str | None = None,
        inbox_title: str | None = None,
        uncharge: bool = False,
    ) -> bool:
        """Record how a claimed delivery went, under its claim token (a sender whose claim
        lapsed changes nothing). With ``inbox_title``, the in-app notification is written in
        the same transaction: an inbox delivery happens exactly once."""
        with self._tx() as cur:
            cur.execute(
                self.q["finish_delivery"],
                {
                    "id": delivery.id,
                    "claim_token": self.enc_uuid(delivery.claim_token),
                    "status": status.value,
                    "next_at": self.enc_ts(next_at or delivery.next_at),
                    "error": error,
                    "sent_at": self.enc_ts(at if status in _DELIVERED else None),
                    "uncharge": 1 if uncharge else 0,
                },
            )
            if cur.fetchone() is None:
                return False
            if inbox_title is not None:
                cur.execute(
                    self.q["insert_inbox_notification"],
                    {
                        "company": delivery.company,
                        "user_name": delivery.recipient.removeprefix("inbox:"),
                        "operation_id": self.enc_uuid(delivery.operation_id),
                        "kind": delivery.event.value,
                        "title": inbox_title,
                        "at": self.enc_ts(at),
                    },
                )
            return True

    def list_deliveries(
        self, company: str, *, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[Delivery]:
        rows = self._all(
            "list_deliveries",
            {
                "company": company,
                "status": None if status is None else status.value,
                "limit": limit,
            },
        )
        return [self.delivery(r) for r in rows]

    def count_recent_sends(self, company: str, recipient: str, since: datetime) -> int:
        r = self._one(
            "count_recent_sends",
            {"company": company, "recipient": recipient, "since": self.enc_ts(since)},
        )
        return 0 if r is None else int(r["n"])

    def retry_delivery(
        self, company: str, delivery_id: int, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"company": company, "id": delivery_id, "at": self.enc_ts(at)}
        return self._write_audited("retry_delivery", params, audit) is not None


_DELIVERED = (DeliveryStatus.SENT, DeliveryStatus.DIGESTED)


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


class _NoSuchChannel(Exception):
    """Raised inside a transaction to undo it: the channel to mark does not exist."""


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


def _reason(value: str | None) -> StatusReason | None:
    return None if value is None else StatusReason(value)
