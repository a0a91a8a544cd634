"""Runs: cancel signals, checkpoints, run events, sessions, the leader and the sweeps."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from longops import telemetry
from longops.domain.operation import (
    EventType,
    Operation,
    Session,
    SessionEvent,
    SessionEventType,
    SessionState,
)
from longops.domain.status import Status
from longops.domain.users import (
    AuditEntry,
)
from longops.store._sql.core import Row, SqlCore
from longops.store.base import (
    CancelSignal,
    Claimed,
    ClaimedRun,
    ClaimParams,
    RunResult,
)
from longops.telemetry.prometheus import FleetSnapshot

PRUNE_BATCH = 5000
"""Rows pruning deletes per statement, each batch its own transaction: short enough that
no lock is held for long (a few tens of milliseconds a batch), long enough that a large
history goes in few round trips."""


class RunsSql(SqlCore):
    def claim(self, params: ClaimParams) -> Claimed:
        raise NotImplementedError  # each dialect's (postgres.py, sqlite.py)

    def finish_and_claim(self, results: Sequence[RunResult], params: ClaimParams) -> Claimed:
        """``results`` written and the next batch claimed in one transaction: on PostgreSQL
        one pipelined round trip and one commit; on SQLite one write transaction (finish,
        then claim). Both dialects' ``claim`` write ``ClaimParams.finished`` first."""
        return self.claim(replace(params, finished=tuple(results)))

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

    def set_session_tasks(self, session_id: uuid.UUID, tasks: Sequence[str]) -> None:
        with self._tx() as cur:
            cur.execute(
                self.q["set_session_tasks"],
                {"id": self.enc_uuid(session_id), "tasks": self.enc_list(list(tasks))},
            )

    def set_session_claim_stopped(self, session_id: uuid.UUID, reason: str | None) -> None:
        with self._tx() as cur:
            cur.execute(
                self.q["set_session_claim_stopped"],
                {"id": self.enc_uuid(session_id), "reason": reason},
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

    prune_batch: int = PRUNE_BATCH
    """Rows :meth:`prune` deletes per statement and transaction (tests lower it)."""

    def prune(self, older_than: datetime) -> int:
        before = self.enc_ts(older_than)
        removed = self._prune_batches("prune_operations", before)
        # Deliveries before the outbox entries they came from (an entry goes with its last).
        for query in (
            "prune_attempts",
            "prune_session_events",
            "prune_sessions",
            "prune_notifications",
            "prune_web_sessions",
            "prune_notify_deliveries",
            "prune_notify_outbox",
            "prune_operation_events",
        ):
            self._prune_batches(query, before)
        # A Delete's copies kept for Undo (migration 0017) are removed by the next Delete
        # or Undo once their time is up; these are the ones no Delete came after (few: one
        # statement).
        with self._tx() as cur:
            cur.execute(self.q["purge_deleted_copies"], {"at": before})
            cur.fetchall()
        return removed

    def _prune_batches(self, query: str, before: Any) -> int:
        """Run a prune statement a batch at a time, each batch its own short transaction,
        until one deletes fewer than a batch; the rows deleted."""
        batch = self.prune_batch
        removed = 0
        while True:
            with self._tx() as cur:
                self._allow_long(cur)  # a batch may still walk past rows it keeps
                cur.execute(self.q[query], {"before": before, "batch": batch})
                count = int(cur.rowcount)
            removed += count
            if count < batch:
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
