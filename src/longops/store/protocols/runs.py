"""What a store keeps about running: the claim and the finish, progress, worker sessions,
the leader and the services' sweeps. The hot path is :meth:`RunStore.claim`,
:meth:`RunStore.finish_and_claim` and :meth:`RunStore.finish_runs`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from longops.domain.clock import Clock
from longops.domain.operation import (
    CancelMode,
    EventType,
    Operation,
    Outcome,
    Session,
    SessionEvent,
    SessionEventType,
    SessionState,
    StopMode,
)
from longops.domain.status import Status
from longops.domain.text import storable_text
from longops.domain.users import AuditEntry
from longops.telemetry.prometheus import FleetSnapshot


@dataclass(frozen=True, slots=True)
class ClaimParams:
    """Claim up to ``limit`` ready operations of ``queues`` for ``session_id`` at ``now``."""

    session_id: uuid.UUID
    queues: tuple[str, ...]
    limit: int
    now: datetime
    clock: Clock | None = None
    """When given, the claim reads the time as late as it can (on SQLite, under the write
    lock). The attempt's recorded start is corrected to when its code began when the run
    ends (``RunResult.started_at``)."""
    companies: tuple[str, ...] | None = None
    """Claim only these companies' operations (None: every active company)."""
    tasks: tuple[str, ...] | None = None
    """Claim only operations of these tasks, the ones the worker can run (None: any)."""
    finished: tuple[RunResult, ...] = ()
    """Results to write first, in the claim's own transaction (as :meth:`Store.finish_runs`
    would, each under its lease): one commit for a worker's finished runs and its next
    claim. Whether each applied is :attr:`Claimed.finished`."""

    def at(self) -> datetime:
        return self.clock.now() if self.clock is not None else self.now


class Claimed(list["ClaimedRun"]):
    """What :meth:`Store.claim` returns: the runs claimed, in order, and for each result
    of ``ClaimParams.finished`` whether it applied (False: fenced, as ``finish_runs``)."""

    finished: list[bool]
    contended: bool
    """Rows the claim chose were taken by a concurrent claim first (PostgreSQL): more work
    may be ready than it got, so the caller should claim again rather than wait."""

    def __init__(
        self,
        runs: Iterable[ClaimedRun] = (),
        finished: Sequence[bool] = (),
        *,
        contended: bool = False,
    ) -> None:
        super().__init__(runs)
        self.finished = list(finished)
        self.contended = contended


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """An operation just claimed, with the run number of its new attempt row."""

    operation: Operation
    run_no: int

    @property
    def lease_token(self) -> uuid.UUID:
        token = self.operation.lease_token
        assert token is not None  # a claimed row always carries one (CHECK constraint)
        return token


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one run ended and where its operation goes next; applied only under its lease."""

    operation_id: uuid.UUID
    lease_token: uuid.UUID
    run_no: int
    at: datetime
    outcome: Outcome
    status: Status
    status_reason: str | None = None
    earliest_start_at: datetime | None = None
    attempt_count: int | None = None
    error_message: str | None = None
    traceback: str | None = None
    result_json: str | None = None
    started_at: datetime | None = None
    """When task code began (None when it never ran, e.g. rescued or handed back): the
    attempt's start becomes this, so an attempt's interval is the time its code ran."""
    progress_json: str | None = None
    """The run's last progress reading (the flush "at the end"); None keeps the last one
    flushed."""
    stop_mode: StopMode | None = None
    cancel_mode: CancelMode | None = None
    clear_checkpoint: bool = False
    """A run that finished its work leaves no checkpoint for the next one."""
    peak_rss: int | None = None
    """Peak resident memory of the attempt's child process, in bytes (process isolation)."""

    def __post_init__(self) -> None:
        # The boundary where task code's text (an exception's message and traceback)
        # becomes what the worker writes: NUL and lone surrogates as visible escapes
        # (``longops.domain.text``), so no database refuses the row, nor the batch with it.
        for name in ("error_message", "traceback"):
            value = getattr(self, name)
            if value is not None:
                clean = storable_text(value)
                if clean is not value:
                    object.__setattr__(self, name, clean)


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """A progress reading to write for a running operation, fenced by its lease."""

    operation_id: uuid.UUID
    lease_token: uuid.UUID
    at: datetime
    progress_json: str
    moved: bool
    """Whether the work moved since the last reading (completed, total, step or message
    changed): it resets the stall clock and ends a stall."""


@dataclass(frozen=True, slots=True)
class CancelSignal:
    """A pending request to stop a running operation, as a worker learns of it."""

    operation_id: uuid.UUID
    force: bool = False
    reason: str | None = None
    requested_by: str | None = None


class CancelListener(Protocol):
    """Cancel requests pushed as they are made (PostgreSQL NOTIFY)."""

    def wait(self, timeout: float) -> list[uuid.UUID]:
        """Block up to ``timeout`` seconds; the operations asked to stop meanwhile."""
        ...

    def close(self) -> None: ...


class Wakeups(Protocol):
    """Tells a dispatcher that work may be ready: NOTIFY on PostgreSQL, a poll on SQLite."""

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when woken early."""
        ...

    def interrupt(self) -> None:
        """End the current (or the next) :meth:`wait` at once; callable from any thread
        (a drain uses it so that an idle dispatcher does not sleep out its poll)."""
        ...

    def close(self) -> None: ...


class RunStore(Protocol):
    """Claiming operations, finishing their runs, and what runs write as they go."""

    def claim(self, params: ClaimParams) -> Claimed: ...
    def finish_and_claim(self, results: Sequence[RunResult], params: ClaimParams) -> Claimed:
        """Write ``results`` (each under its lease, as :meth:`finish_runs`) and claim (as
        :meth:`claim`) in one transaction, one commit: the dispatcher's call while the
        queue is busy. Whether each result applied is ``Claimed.finished``; if the call
        fails, none of it happened (or, reply lost, all of it: a retry is fenced)."""
        ...

    def finish_runs(self, results: Sequence[RunResult]) -> list[bool]: ...
    def next_due_at(
        self, queues: Sequence[str], companies: Sequence[str] | None = None
    ) -> datetime | None: ...
    def cancel_requested(self, operation_ids: Sequence[uuid.UUID]) -> list[CancelSignal]: ...
    def cancel_listener(self) -> CancelListener | None:
        """Pushed cancel requests, or None where the worker must poll (SQLite)."""
        ...

    def wakeups(self) -> Wakeups: ...
    def flush_progress(self, updates: Sequence[ProgressUpdate]) -> list[bool]: ...
    def save_checkpoint(
        self,
        operation_id: uuid.UUID,
        lease_token: uuid.UUID,
        at: datetime,
        state_json: str,
        progress_json: str | None = None,
        *,
        moved: bool = False,
    ) -> bool: ...
    def mark_cancel_overdue(
        self, operation_id: uuid.UUID, lease_token: uuid.UUID, at: datetime, data: dict[str, Any]
    ) -> bool: ...
    def record_run_event(
        self,
        operation_id: uuid.UUID,
        lease_token: uuid.UUID,
        at: datetime,
        type: EventType,
        data: dict[str, Any],
    ) -> bool: ...


class SessionStore(Protocol):
    """Worker sessions: registration, heartbeats, drains, their events."""

    def register_session(self, session: Session) -> None: ...
    def set_session_tasks(self, session_id: uuid.UUID, tasks: Sequence[str]) -> None:
        """The tasks a live session can claim, as its app registry grows."""
        ...

    def set_session_claim_stopped(self, session_id: uuid.UUID, reason: str | None) -> None:
        """Why a live session stopped claiming (the schema guard); None: it claims again."""
        ...

    def heartbeat(self, session_id: uuid.UUID, at: datetime) -> SessionState | None: ...
    def end_session(
        self,
        session_id: uuid.UUID,
        state: SessionState,
        at: datetime,
        event: SessionEventType,
        comment: str | None = None,
    ) -> None: ...
    def record_session_event(
        self, session_id: uuid.UUID, event: SessionEventType, at: datetime, comment: str | None
    ) -> None: ...
    def request_drain(
        self, session_id: uuid.UUID, at: datetime, comment: str, *, audit: AuditEntry | None = None
    ) -> Session | None:
        """Ask a live session to drain (it sees it at its next heartbeat); None if it is
        not active."""
        ...

    def list_sessions(self, *, active_only: bool = False) -> list[Session]: ...
    def fleet_metrics(self, now: datetime) -> FleetSnapshot:
        """The fleet's figures for ``/metrics``, in one statement."""
        ...

    def list_session_events(self, session_id: uuid.UUID | None = None) -> list[SessionEvent]: ...


class ServiceStore(Protocol):
    """What the services do: the leader's lease, lost sessions, expiry, stalls, pruning,
    recurrence."""

    def mark_lost_sessions(self, now: datetime, timeout: timedelta) -> list[uuid.UUID]: ...
    def orphaned_runs(self, limit: int = 1000) -> list[ClaimedRun]: ...
    def session_runs(self, session_id: uuid.UUID) -> list[ClaimedRun]:
        """The operations the database says ``session_id`` runs (``in_process`` under it),
        in entry order: a worker hands back those it does not know of."""
        ...

    def expire_operations(self, now: datetime) -> list[uuid.UUID]: ...
    def flag_stalled(self, now: datetime) -> list[uuid.UUID]: ...
    def prune(self, older_than: datetime) -> int: ...
    def try_lead(self, name: str, session_id: uuid.UUID, now: datetime, ttl: timedelta) -> bool: ...
    def resign(self, name: str, session_id: uuid.UUID) -> None: ...
    def ready_recurring(self, now: datetime, limit: int) -> list[Operation]: ...
    def move_start(
        self, operation_id: uuid.UUID, expected_start: datetime, new_start: datetime, at: datetime
    ) -> bool: ...
