"""Operations: insert, read, act on, edit, delete; their attempts, timelines and waits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from longops.domain.filters import SortKey
from longops.domain.maintenance import MaintenanceMode
from longops.domain.operation import (
    Attempt,
    EventType,
    NewOperation,
    Operation,
    OperationEvent,
)
from longops.domain.status import Status
from longops.domain.users import (
    AuditEntry,
)
from longops.domain.waiting import CategorySlots, CompanyState, WaitContext
from longops.store._sql.core import Row, SqlCore, _company, _fields
from longops.store.base import (
    ActionParams,
    Companies,
    DeletedCopy,
    OperationEdit,
    OperationQuery,
)


class OperationsSql(SqlCore):
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

    SORT_SQL: ClassVar[dict[SortKey, tuple[str, str]]]
    """Per sort key, the dialect's expression of the column and of the cursor's value
    (``:cursor_value`` / ``%(cursor_value)s``) compared with it (postgres.py, sqlite.py)."""

    def list_operations(self, query: OperationQuery) -> list[Operation]:
        if query.sort is not SortKey.ENTRY_NO:
            return self._list_sorted(query)
        rows = self._all(
            "list_operations_desc" if query.descending else "list_operations",
            self._query_params(query),
        )
        return [self.operation(r) for r in rows]

    def _list_sorted(self, query: OperationQuery) -> list[Operation]:
        column, value = self.SORT_SQL[query.sort]
        params = self._query_params(query)
        after = "TRUE"
        if query.cursor is not None:
            no = "%(cursor_no)s" if self.dialect == "postgres" else ":cursor_no"
            after = f"({column}, entry_no) {'<' if query.descending else '>'} ({value}, {no})"
            cursor = query.cursor.value
            params["cursor_no"] = query.cursor.entry_no
            params["cursor_value"] = self.enc_ts(cursor) if isinstance(cursor, datetime) else cursor
        sql = (
            self.q["list_operations_sorted"]
            .replace("SORT_AFTER", after)
            .replace("SORT_KEY", column)
            .replace("SORT_DIR", "DESC" if query.descending else "ASC")
        )
        with self._read() as cur:
            cur.execute(sql, params)
            rows = list(cur.fetchall())
        return [self.operation(r) for r in rows]

    def count_operations(
        self, company: str | None = None, *, companies: Companies = None
    ) -> dict[Status, int]:
        counts = dict.fromkeys(Status, 0)
        params = {"company": company, "companies": self.enc_companies(companies)}
        for r in self._all("count_operations", params):
            counts[Status(r["status"])] = int(r["n"])
        return counts

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
        self,
        operation_id: uuid.UUID,
        company: str | None,
        *,
        audit: AuditEntry | None = None,
        keep: DeletedCopy | None = None,
    ) -> bool:
        with self._tx() as cur:
            key = self.enc_uuid(operation_id)
            if keep is not None:
                self._purge_copies(cur, keep.at)
                self._keep_copy(
                    cur,
                    {
                        "id": key,
                        "company": company,
                        "at": self.enc_ts(keep.at),
                        "until": self.enc_ts(keep.until),
                        "by": keep.by,
                    },
                )
            cur.execute(self.q["delete_operation"], {"id": key, "company": company})
            if cur.fetchone() is None:
                if keep is not None:  # changed meanwhile (it started, say): nothing to undo
                    cur.execute(self.q["forget_deleted_copy"], {"id": key})
                return False
            if keep is None:
                cur.execute(self.q["delete_events"], {"id": key})
            self._audit(cur, audit)
            return True

    def restore_operation(
        self,
        operation_id: uuid.UUID,
        company: str | None,
        at: datetime,
        by: str | None,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        with self._tx() as cur:
            key = self.enc_uuid(operation_id)
            params = {"id": key, "company": company, "at": self.enc_ts(at), "by": by}
            restored = self._restore_copy(cur, params)
            if restored:
                cur.execute(self.q["forget_deleted_copy"], {"id": key})
                self._audit(cur, audit)
            self._purge_copies(cur, at)
            return restored

    def _keep_copy(self, cur: Any, params: dict[str, Any]) -> None:
        """Copy the row (unless in process) into longops_deleted_operations (PostgreSQL:
        to_jsonb in SQL; SQLite overrides this, its columns read from the row)."""
        cur.execute(self.q["keep_deleted_copy"], params)

    def _restore_copy(self, cur: Any, params: dict[str, Any]) -> bool:
        """Insert the row back from its copy; False when there is no copy to restore."""
        cur.execute(self.q["restore_deleted_copy"], params)
        return cur.fetchone() is not None

    def _purge_copies(self, cur: Any, at: datetime) -> None:
        """Remove the copies past their time, and the timelines they kept."""
        cur.execute(self.q["purge_deleted_copies"], {"at": self.enc_ts(at)})
        for r in cur.fetchall():
            cur.execute(self.q["delete_orphan_events"], {"id": r["id"]})

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
        """The nine reads wait reasons are derived from, in one go: every ready operation
        the API shows reads them. Rows of ``running_in_categories``, ``list_all_categories``,
        ``served_queues``, ``running_per_company``, ``list_paused_queues``,
        ``list_companies``, ``list_users``, ``list_memberships`` and ``get_maintenance``,
        in that order."""
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
                ("get_maintenance", {}),
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
            maintenance_rows,
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
        stopped: dict[str, str] = {}
        tasks: set[str] | None = set()
        for r in queue_rows:
            if r.get("claim_stopped") is not None:
                # It runs but claims nothing (the schema guard): it serves no queue.
                stopped[r["name"]] = r["claim_stopped"]
                continue
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
            stopped_queues=stopped,
            # Maintenance mode holds back every due operation (domain/maintenance.py); read
            # with the rest (off in a database that predates it).
            maintenance=(
                self._maintenance(maintenance_rows[0])
                if maintenance_rows
                else MaintenanceMode(False)
            ),
        )

    def recent_durations(self, task: str, limit: int = 20) -> list[float]:
        rows = self._all("recent_durations", {"task": task, "limit": limit})
        return [float(r["seconds"]) for r in rows if r["seconds"] is not None]

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
