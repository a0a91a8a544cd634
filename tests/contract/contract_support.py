"""Small builders shared by the store contract tests (not a test module itself)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

from longops.domain.clock import FrozenClock
from longops.domain.operation import (
    Attempt,
    Category,
    Company,
    NewOperation,
    Operation,
    Outcome,
    Session,
)
from longops.domain.status import Status
from longops.store.base import ClaimedRun, ClaimParams, RunResult, Store
from longops.testing import active_session


def session(now: datetime, queues: tuple[str, ...] = ("default",)) -> Session:
    # A fixed host and pid, which the session-event assertions name.
    return dataclasses.replace(active_session(now, queues), host="h", pid=1)


def register(store: Store, now: datetime, queues: tuple[str, ...] = ("default",)) -> uuid.UUID:
    """Register an ACTIVE session and return its id."""
    s = session(now, queues)
    store.register_session(s)
    return s.id


def add_company(store: Store, name: str) -> None:
    """Create a company besides the 'default' one the schema seeds."""
    store.upsert_company(Company(name, name, "UTC"))


def category(
    store: Store,
    code: str = "POSTING",
    max_concurrent: int = 1,
    *,
    company: str = "default",
    paused: bool = False,
) -> Category:
    return store.upsert_category(
        Category(company, code, max_concurrent=max_concurrent, paused=paused)
    )


def build(clock: FrozenClock, **kw: Any) -> NewOperation:
    return NewOperation.build(task=kw.pop("task", "t"), now=clock.now(), **kw)


def insert(store: Store, clock: FrozenClock, **kw: Any) -> Operation:
    [op] = store.insert_operations([build(clock, **kw)])
    return op


def claim(
    store: Store,
    session_id: uuid.UUID,
    now: datetime,
    limit: int = 10,
    queues: tuple[str, ...] = ("default",),
) -> list[ClaimedRun]:
    return store.claim(ClaimParams(session_id=session_id, queues=queues, limit=limit, now=now))


def result(
    run: ClaimedRun,
    at: datetime,
    *,
    status: Status = Status.FINISHED,
    outcome: Outcome = Outcome.SUCCESS,
    lease_token: uuid.UUID | None = None,
    **kw: Any,
) -> RunResult:
    return RunResult(
        operation_id=run.operation.id,
        lease_token=run.lease_token if lease_token is None else lease_token,
        run_no=run.run_no,
        at=at,
        outcome=outcome,
        status=status,
        **kw,
    )


def finish(store: Store, run: ClaimedRun, at: datetime, **kw: Any) -> bool:
    [ok] = store.finish_runs([result(run, at, **kw)])
    return ok


def get(store: Store, op: Operation | ClaimedRun | uuid.UUID) -> Operation:
    """The stored operation, which must exist."""
    if isinstance(op, ClaimedRun):
        op = op.operation
    found = store.get_operation(op if isinstance(op, uuid.UUID) else op.id)
    assert found is not None
    return found


def attempts(store: Store, op: Operation | ClaimedRun) -> list[Attempt]:
    if isinstance(op, ClaimedRun):
        op = op.operation
    return store.list_attempts(op.id)


def make_error(
    store: Store, clock: FrozenClock, sid: uuid.UUID, at: datetime, **kw: Any
) -> Operation:
    """An operation that ran once and failed for good at ``at`` (claimed from its own queue,
    so no other ready operation is touched)."""
    kw.setdefault("queue", "errq")
    op = insert(store, clock, **kw)
    [run] = claim(store, sid, clock.now(), limit=1, queues=(op.queue,))
    assert run.operation.id == op.id
    assert finish(store, run, at, status=Status.ERROR, outcome=Outcome.ERROR, error_message="x")
    return get(store, op)
