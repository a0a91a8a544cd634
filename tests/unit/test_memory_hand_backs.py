"""Counting an operation's memory hand-backs in a row from its attempts (worker/memory.py):
what counts, what ends the row and what neither counts nor ends it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from longops.domain.operation import Attempt, Outcome
from longops.worker.memory import (
    MEMORY_HAND_BACKS,
    failed_message,
    hand_back_message,
    memory_hand_backs,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)
OP = uuid.uuid4()


def _attempt(n: int, outcome: Outcome, message: str | None = None) -> Attempt:
    return Attempt(
        id=n, operation_id=OP, company="c", number=n, attempt=1, session_id=None, user=None,
        task="t", started_at=AT, ended_at=AT, outcome=outcome, error_message=message,
        traceback=None,
    )  # fmt: skip


def _memory(n: int) -> Attempt:
    text = hand_back_message(uuid.uuid4(), 300 * 2**20, 200 * 2**20, 1, MEMORY_HAND_BACKS)
    return _attempt(n, Outcome.INTERRUPTED, text)


def test_memory_hand_backs_in_a_row_are_counted() -> None:
    assert memory_hand_backs([]) == 0
    assert memory_hand_backs([_memory(1), _memory(2), _attempt(3, Outcome.IN_PROCESS)]) == 2


def test_a_plain_drain_or_a_run_window_neither_counts_nor_ends_the_row() -> None:
    drained = _attempt(2, Outcome.INTERRUPTED, "worker session x shut down before the run ended")
    skipped = _attempt(4, Outcome.SKIPPED)
    assert memory_hand_backs([_memory(1), drained, _memory(3), skipped]) == 2
    # The words for runs not counted (code not begun, a child process) are not counted.
    other = _attempt(5, Outcome.INTERRUPTED, "went past its --max-memory limit (not counted")
    assert memory_hand_backs([_memory(1), other]) == 1


def test_any_other_ending_ends_the_row() -> None:
    for outcome in (Outcome.SUCCESS, Outcome.ERROR, Outcome.TIMEOUT, Outcome.LOST):
        assert memory_hand_backs([_memory(1), _memory(2), _attempt(3, outcome), _memory(4)]) == 1
    # The failure it ends in ends its row too: a restart begins a new one.
    failed = _attempt(3, Outcome.ERROR, failed_message(300 * 2**20, 200 * 2**20, 3))
    assert memory_hand_backs([_memory(1), _memory(2), failed]) == 0
