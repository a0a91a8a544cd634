"""The child's side of the process-isolation protocol: a cancel reaches the run it names,
and only that run (a child serves many runs one after another)."""

from __future__ import annotations

import uuid

from longops.worker.context import RunContext
from longops.worker.isolation import _ChildSide


def ctx() -> RunContext:
    return RunContext(operation_id=uuid.uuid4(), company="c", user=None, attempt=1, task="t")


def side() -> _ChildSide:
    return _ChildSide(conn=None)  # type: ignore[arg-type]  # only sends use the pipe


def test_a_cancel_for_the_running_run_reaches_it() -> None:
    s, a = side(), ctx()
    s.begin("A", a)
    s.cancel("A", "stop")
    assert a.cancelled


def test_a_late_cancel_for_an_ended_run_does_not_reach_the_next_one() -> None:
    s, a, b = side(), ctx(), ctx()
    s.begin("A", a)
    s.end()
    s.cancel("A", "meant for A")  # was in flight while A's result was on its way back
    s.begin("B", b)
    assert not b.cancelled
    s.cancel("A", "meant for A, again")
    assert not b.cancelled


def test_a_cancel_that_comes_before_its_run_begins_is_kept_for_it() -> None:
    s, c = side(), ctx()
    s.cancel("C", "early")
    s.begin("C", c)
    assert c.cancelled
    s.end()
    d = ctx()
    s.begin("D", d)
    assert not d.cancelled
