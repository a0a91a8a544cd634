"""The process-isolation protocol: on the child's side a cancel reaches the run it names,
and only that run (a child serves many runs one after another); on both sides a message
the protocol does not have is a protocol error that fails the attempt, never a crash."""

from __future__ import annotations

import pickle
import threading
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from longops.domain.operation import Outcome
from longops.worker.context import RunContext
from longops.worker.executor import _drive_child, _on_message
from longops.worker.isolation import (
    Ack,
    Begun,
    Cancel,
    LoadFailed,
    ProgressReport,
    ProtocolError,
    Result,
    Run,
    _ChildSide,
)


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


# -- malformed messages are protocol errors -----------------------------------------------------
class _Pipe:
    """One end of a pipe that holds the given messages and remembers what is sent to it."""

    def __init__(self, *messages: object) -> None:
        self.messages = list(messages)
        self.sent: list[object] = []

    def poll(self, timeout: float) -> bool:
        return bool(self.messages)

    def recv(self) -> object:
        if not self.messages:
            raise EOFError
        return self.messages.pop(0)

    def send(self, message: object) -> None:
        self.sent.append(message)


class _FakeChild:
    def __init__(self, *messages: object) -> None:
        self.conn = _Pipe(*messages)
        self.alive = True

    def send(self, message: object) -> bool:
        self.conn.send(message)
        return True


class _FakePool:
    def __init__(self) -> None:
        self.discarded: list[object] = []

    def discard(self, child: object) -> None:
        self.discarded.append(child)


def _result(**changes: object) -> Result:
    fields: dict[str, Any] = {
        "outcome": "success",
        "result_json": "1",
        "error": None,
        "traceback": None,
        "rss": 1,
        "reading": None,
        "versions": (0, 0),
        "cpu_seconds": 0.1,
        "peak_rss": 1,
    }
    return Result(**{**fields, **changes})


@pytest.mark.parametrize(
    "message",
    [
        ("result", "success", "1", None, None, 1, None, (0, 0), 0.1, 1),  # the old tuples
        ("gibberish", 1),
        None,
        Run("A", "t", b""),  # a message for the child, sent back
        ProgressReport({"completed": 1}, "1", 0),  # type: ignore[arg-type]
        LoadFailed("someone else's run", "why"),
        _result(outcome="exploded"),
        _result(rss="a lot"),
        _result(versions=(1,)),
    ],
    ids=repr,
)
def test_a_malformed_message_from_a_child_is_a_protocol_error(message: object) -> None:
    with pytest.raises(ProtocolError):
        _on_message(None, None, "A", message)  # type: ignore[arg-type]  # never reached


def test_a_child_that_sends_a_malformed_message_fails_the_attempt_not_the_worker() -> None:
    op = SimpleNamespace(id=uuid.uuid4(), task="t")
    control = SimpleNamespace(
        operation=op, cancel=threading.Event(), force_applied=False, kill_after=1.0, reason=None
    )
    child, pool = _FakeChild(Begun("other"), _result(peak_rss="high")), _FakePool()
    outcome = _drive_child(control, None, pool, child, "A", b"spec")  # type: ignore[arg-type]
    assert outcome.outcome is Outcome.ERROR
    assert outcome.error_message is not None
    assert outcome.error_message.startswith("child process broke the protocol: Result(")
    assert "ProtocolError: unexpected message of type Result" in outcome.error_message
    assert pool.discarded == [child]  # replaced, never reused
    assert child.conn.sent == [Run("A", "t", b"spec")]


def test_the_child_refuses_a_message_the_protocol_does_not_have() -> None:
    s = side()
    not_text: Any = 7
    s.conn = _Pipe(Cancel("A", not_text))  # type: ignore[assignment]  # a stand-in pipe
    with pytest.raises(ProtocolError, match="unexpected message from the worker: Cancel"):
        s._read()


def test_messages_are_frozen_values() -> None:
    message = Ack("A", True)
    with pytest.raises(AttributeError):
        message.saved = False  # type: ignore[misc]
    assert not hasattr(message, "__dict__")  # slots
    assert pickle.loads(pickle.dumps(message)) == message  # noqa: S301  # as the pipe does
