"""Text from task code that a database cannot hold as it is (a NUL, a lone surrogate) in an
exception's message, a progress message or a step name: stored as visible escapes
(``longops.domain.text``), the same on both databases, with a real worker. One bad message
must not take the worker's other runs down with it (on PostgreSQL it once failed the whole
batched result write, stopped the completer, and every run of the worker ended "session
lost")."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from longops import Longops, RunContext, Status


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)

    @application.task(name="nul_error", max_attempts=1)
    def nul_error() -> None:
        raise ValueError("bad\x00nul")

    @application.task(name="surrogate_error", max_attempts=1)
    def surrogate_error() -> None:
        raise ValueError("bad\ud800sur")

    @application.task(name="nul_progress", max_attempts=1)
    def nul_progress(ctx: RunContext) -> int:
        ctx.step("st\x00ep", 1, 2)
        ctx.progress(1, total=2, unit="u\x00", message="p\x00q\udc80")
        return 1

    @application.task(name="nul_result", max_attempts=1)
    def nul_result() -> str:
        return "res\x00nul"

    @application.task(name="plain", max_attempts=1)
    def plain(n: int) -> int:
        return n * 2

    yield application
    application.close()


def test_nul_and_lone_surrogates_are_stored_escaped_and_spare_the_other_runs(
    app: Longops,
) -> None:
    bad = [app.enqueue("nul_error"), app.enqueue("surrogate_error")]
    progress = app.enqueue("nul_progress")
    result = app.enqueue("nul_result")
    plain = [app.enqueue("plain", n) for n in range(5)]
    worker = app.worker(concurrency=8, poll_interval=0.05, run_services=False)
    worker.start()
    try:
        ops = {h.id: h.wait(timeout=30) for h in [*bad, progress, result, *plain]}
        # The worker is whole: no loop stopped by a bug, its session still active.
        deadline = time.monotonic() + 5
        while not worker.health().alive and time.monotonic() < deadline:
            time.sleep(0.02)
        health = worker.health()
        assert health.alive, health.loops
        sessions = {s.id: s for s in app.sessions.list_sessions(active_only=True)}
        assert worker.session_id in sessions
    finally:
        worker.stop()

    for n, h in enumerate(plain):
        op = ops[h.id]
        assert op.status is Status.FINISHED, op.last_error
        assert op.result == n * 2

    nul, surrogate = (ops[h.id] for h in bad)
    assert nul.status is Status.ERROR
    assert nul.last_error == "ValueError: bad\\x00nul"
    assert surrogate.status is Status.ERROR
    assert surrogate.last_error == "ValueError: bad\\ud800sur"
    [attempt] = app.service.attempts(nul.id)
    assert attempt.error_message == "ValueError: bad\\x00nul"
    assert attempt.traceback is not None
    assert "bad\\x00nul" in attempt.traceback
    assert "\x00" not in attempt.traceback

    done = ops[progress.id]
    assert done.status is Status.FINISHED, done.last_error
    assert done.progress is not None
    assert done.progress.message == "p\\x00q\\udc80"
    assert done.progress.step_name == "st\\x00ep"
    assert done.progress.unit == "u\\x00"

    # A result is JSON, which carries a NUL as an escape of its own: kept as it was.
    assert ops[result.id].status is Status.FINISHED
    assert ops[result.id].result == "res\x00nul"

    for op in ops.values():
        assert "lost" not in (op.last_error or "")


def test_a_result_the_database_still_refuses_is_recorded_as_an_error_without_its_text(
    app: Longops, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The defence behind the rule: with the escaping switched off, the raw text reaches the
    # database (PostgreSQL refuses a NUL in text; neither driver can send a lone
    # surrogate). The batch is written one by one, the refused result is recorded as an
    # Error that says so, and the worker and its other runs go on.
    import longops.store.protocols.runs as runs

    monkeypatch.setattr(runs, "storable_text", lambda text: text)
    names = ["surrogate_error"] + (["nul_error"] if db_url.startswith("postgres") else [])
    bad = [app.enqueue(name) for name in names]
    plain = [app.enqueue("plain", n) for n in range(5)]
    worker = app.worker(concurrency=8, poll_interval=0.05, run_services=False)
    worker.start()
    try:
        ops = {h.id: h.wait(timeout=30) for h in [*bad, *plain]}
        assert worker.health().alive, worker.health().loops
    finally:
        worker.stop()
    for n, h in enumerate(plain):
        assert ops[h.id].status is Status.FINISHED, ops[h.id].last_error
        assert ops[h.id].result == n * 2
    for h in bad:
        op = ops[h.id]
        assert op.status is Status.ERROR
        assert op.last_error is not None
        assert op.last_error.startswith("the run's result could not be stored"), op.last_error
