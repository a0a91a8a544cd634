"""A server process derives the wait reasons of ready operations from the wait context it
read in the last ``LONGOPS_API_WAIT_CONTEXT_SECONDS`` (``api.deps.WaitContexts``): a poll
of a ready operation is one database read, not three. The operation itself is read every
time; a change made through this process shows in the next answer, one made elsewhere at
most the kept seconds late."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from live import OWN, Live

from longops.api import deps
from longops.api.deps import TokenCache, WaitContexts
from longops.domain.errors import ValidationError
from longops.domain.operation import Operation
from longops.domain.security import PermissionSet

SUPER = PermissionSet.SUPER.value
VIEW = PermissionSet.VIEW.value


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def waits(live: Live) -> Iterator[tuple[WaitContexts, Ticks]]:
    """The live server's wait contexts, emptied, on a clock of the test's."""
    kept = deps._WAITS[live.app]
    ticks = Ticks()
    clock = kept._clock
    kept._clock = ticks
    kept._entries.clear()
    yield kept, ticks
    kept._clock = clock
    kept._entries.clear()


@pytest.fixture
def reads(live: Live, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per wait-context read of the store."""
    counted: list[int] = []
    real = live.app.store.wait_context

    def wait_context(now: Any) -> Any:
        counted.append(1)
        return real(now)

    monkeypatch.setattr(live.app.store, "wait_context", wait_context)
    return counted


@pytest.fixture
def queue(live: Live) -> Iterator[str]:
    """A queue of the test's own, resumed afterwards."""
    name = f"q-{uuid.uuid4().hex[:8]}"
    yield name
    live.app.companies.resume_queue(name)


def ready_op(live: Live, queue: str) -> Operation:
    return live.op(on_hold=False, queue=queue)


def wait_code(live: Live, who: str, op: Operation) -> str | None:
    answer = live.http(who).get(f"/v1/companies/{OWN}/operations/{op.id}")
    assert answer.status_code == 200, answer.text
    reason = answer.json()["metadata"]["waitReason"]
    return None if reason is None else str(reason["code"])


def test_polls_of_ready_operations_share_one_read_while_it_is_kept(
    live: Live, waits: tuple[WaitContexts, Ticks], reads: list[int], queue: str
) -> None:
    _, ticks = waits
    op = ready_op(live, queue)
    first = wait_code(live, SUPER, op)
    assert first is not None
    for _ in range(3):
        assert wait_code(live, SUPER, op) == first
    assert len(reads) == 1, "one read served four polls"
    ticks.now += 1.01  # past LONGOPS_API_WAIT_CONTEXT_SECONDS (1)
    assert wait_code(live, SUPER, op) == first
    assert len(reads) == 2


def test_a_change_through_this_server_shows_in_the_next_poll(
    live: Live, waits: tuple[WaitContexts, Ticks], queue: str
) -> None:
    op = ready_op(live, queue)
    assert wait_code(live, SUPER, op) != "queue_paused"  # the context is kept now
    paused = live.http(SUPER).post(f"/v1/queues/{queue}:pause")
    assert paused.status_code == 200, paused.text
    assert wait_code(live, SUPER, op) == "queue_paused"
    resumed = live.http(SUPER).post(f"/v1/queues/{queue}:resume")
    assert resumed.status_code == 200, resumed.text
    assert wait_code(live, SUPER, op) != "queue_paused"


def test_a_change_made_elsewhere_shows_once_the_kept_time_is_over(
    live: Live, waits: tuple[WaitContexts, Ticks], queue: str
) -> None:
    _, ticks = waits
    op = ready_op(live, queue)
    before = wait_code(live, SUPER, op)
    assert before != "queue_paused"
    live.app.companies.pause_queue(queue)  # the library: not through this server
    assert wait_code(live, SUPER, op) == before  # at most the kept seconds late
    ticks.now += 1.01
    assert wait_code(live, SUPER, op) == "queue_paused"


def test_each_scope_of_companies_has_its_own(
    live: Live, waits: tuple[WaitContexts, Ticks], reads: list[int], queue: str
) -> None:
    kept, _ = waits
    op = ready_op(live, queue)
    wait_code(live, SUPER, op)
    wait_code(live, VIEW, op)
    wait_code(live, VIEW, op)
    assert len(reads) == 2, "SUPER (every company) and the viewer (company A) read apart"
    assert set(kept._entries) == {None, frozenset({OWN})}


class _View:
    """What ``WaitContexts`` asks of a caller: its actor's scope and a wait-context read."""

    def __init__(self, scope: frozenset[str] | None, read: Any) -> None:
        self.actor = type("A", (), {"scope": lambda _self: scope})()
        self.service = type("S", (), {"wait_context": staticmethod(read)})()


def test_a_read_that_a_change_overlapped_is_not_kept() -> None:
    tokens = TokenCache(1.0)
    waits = WaitContexts(1.0, tokens, clock=lambda: 0.0)
    made: list[object] = []

    def read() -> object:
        tokens.changed()  # a state-changing request began while this read ran
        made.append(object())
        return made[-1]

    view: Any = _View(None, read)
    assert waits.context(view) is made[0]
    assert waits.context(view) is made[1], "read again: the first may predate the change"


def test_zero_seconds_reads_with_every_answer_and_the_bound_is_checked() -> None:
    tokens = TokenCache(1.0)
    view: Any = _View(None, lambda: pytest.fail("no read when nothing is kept"))
    assert WaitContexts(0, tokens).context(view) is None
    for bad in (-1, 61):
        with pytest.raises(ValidationError):
            WaitContexts(bad, tokens)
