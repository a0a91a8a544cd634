"""Payload limits: arguments refused at enqueue, results and checkpoints failing the
attempt, on both databases; and the 20 MB payloads on PostgreSQL with a real worker."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from longops import EnqueueRequest, Longops, PayloadLimits, RunContext, Status, ValidationError
from longops.domain.limits import MIB
from longops.store.base import OperationQuery
from longops.testing import Runner

SMALL = PayloadLimits(arguments=1024, result=1024, checkpoint=512, progress_message=20)


def _app(url: str, limits: PayloadLimits) -> Longops:
    app = Longops(url, limits=limits)

    @app.task(name="echo")
    def echo(value: object = None) -> object:
        return value

    @app.task(name="sized_result", max_attempts=2)
    def sized_result(n: int) -> str:
        return "x" * n

    @app.task(name="umlauts")
    def umlauts(n: int, tail: str = "") -> str:
        return "ü" * n + tail

    @app.task(name="saves")
    def saves(ctx: RunContext, n: int) -> None:
        ctx.checkpoint("y" * n)

    @app.task(name="says")
    def says(ctx: RunContext, n: int) -> None:
        ctx.progress(1, total=2, message="m" * n)

    return app


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = _app(db_url, SMALL)
    yield application
    application.close()


def _count(app: Longops) -> int:
    return len(app.service.list_operations(OperationQuery(limit=100)))


def test_arguments_over_the_limit_are_refused_at_enqueue_and_nothing_is_written(
    app: Longops,
) -> None:
    with pytest.raises(ValidationError) as caught:
        app.enqueue("echo", "x" * 2000)
    assert caught.value.field == "args"
    assert "at most 1 KiB (1024 bytes)" in caught.value.rule
    assert "LONGOPS_MAX_ARGUMENT_BYTES" in caught.value.rule
    # A bulk enqueue with one payload over the limit writes none of its rows.
    requests = [EnqueueRequest(task="echo", args=[i]) for i in range(3)]
    requests.append(EnqueueRequest(task="echo", args=["x" * 2000]))
    with pytest.raises(ValidationError, match="LONGOPS_MAX_ARGUMENT_BYTES"):
        app.service.enqueue_many(requests)
    assert _count(app) == 0
    # Just under the limit is fine: {"args":["xx…"],"kwargs":{}} is 25 bytes of framing.
    app.enqueue("echo", "x" * (1024 - 25))
    assert _count(app) == 1


def test_a_result_over_the_limit_fails_the_attempt_and_is_retried(app: Longops) -> None:
    op = app.enqueue("sized_result", 5000).operation
    runner = Runner(app)
    assert runner.run_once() == 1
    after = app.service.get(op.id)
    assert after.status is Status.READY  # retried per its policy (max_attempts=2)
    [attempt] = app.service.attempts(op.id)
    assert attempt.error_message is not None
    assert attempt.error_message.startswith(
        "ResultTooLarge: the task's result is 4.88 KiB (5002 bytes)"
    )
    assert "the limit is 1 KiB (1024 bytes) (LONGOPS_MAX_RESULT_BYTES)" in attempt.error_message
    assert after.result is None
    # A result within the limit is kept as it is.
    ok = app.enqueue("sized_result", 100).operation
    runner.run_until_idle()
    assert app.service.get(ok.id).result == "x" * 100


def test_a_checkpoint_over_the_limit_fails_the_attempt(app: Longops) -> None:
    op = app.enqueue("saves", 600).operation
    Runner(app).run_until_idle()
    after = app.service.get(op.id)
    assert after.status is Status.ERROR
    assert after.checkpoint is None
    [attempt] = app.service.attempts(op.id)
    assert attempt.error_message is not None
    assert "state: must be at most 512 bytes" in attempt.error_message
    assert "LONGOPS_MAX_CHECKPOINT_BYTES" in attempt.error_message


def test_a_progress_message_over_the_limit_fails_the_attempt(app: Longops) -> None:
    fits, too_long = app.enqueue("says", 20).operation, app.enqueue("says", 21).operation
    Runner(app).run_until_idle()
    assert app.service.get(fits.id).status is Status.FINISHED
    assert app.service.get(fits.id).progress.message == "m" * 20  # type: ignore[union-attr]
    assert app.service.get(too_long.id).status is Status.ERROR
    [attempt] = app.service.attempts(too_long.id)
    assert attempt.error_message == "ValidationError: message: must be at most 20 characters"


def test_limits_and_connection_options_come_from_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LONGOPS_MAX_ARGUMENT_BYTES", str(2 * MIB))
    monkeypatch.setenv("LONGOPS_MAX_RESULT_BYTES", "4096")
    monkeypatch.setenv("LONGOPS_MAX_PROGRESS_MESSAGE_CHARS", "1000")
    monkeypatch.setenv("LONGOPS_POOL_SIZE", "3")
    monkeypatch.setenv("LONGOPS_LOCK_TIMEOUT", "1.5")
    monkeypatch.setenv("LONGOPS_BUSY_TIMEOUT", "7")
    app = Longops(f"sqlite:///{tmp_path / 'a.db'}", statement_timeout=12)
    assert app.limits == PayloadLimits(arguments=2 * MIB, result=4096, progress_message=1000)
    options = app.store_options
    assert (options.pool_size, options.lock_timeout, options.busy_timeout) == (3, 1.5, 7)
    assert options.statement_timeout == 12  # the argument wins over the setting
    app.configure_store(pool_size=5)
    assert app.store_options.pool_size == 5
    with pytest.raises(ValidationError, match="pool_size: must be between 1 and 1000"):
        app.configure_store(pool_size=0)
    app.migrate()  # the database is open: its options are fixed from now on
    with pytest.raises(Exception, match="already open"):
        app.configure_store(pool_size=6)
    app.close()
    with pytest.raises(ValidationError, match="max_result_bytes"):
        PayloadLimits(result=0)
    with pytest.raises(ValidationError, match="max_progress_message_chars"):
        PayloadLimits(progress_message=100_000)


# -- 20 MB on PostgreSQL, with a real worker ---------------------------------------------------
TWENTY_MB = 20 * MIB


def _run_with_worker(app: Longops, *ops: tuple[str, object]) -> list[Status]:
    worker = app.worker(concurrency=2, poll_interval=0.2, run_services=False)
    worker.start()
    try:
        handles = [app.enqueue(task, arg) for task, arg in ops]
        return [h.wait(timeout=120).status for h in handles]
    finally:
        worker.stop(grace=10)


@pytest.mark.postgres
def test_20_mb_payloads_on_postgres_are_refused_at_the_default_limits(pg_url: str) -> None:
    app = _app(pg_url, PayloadLimits())
    try:
        with pytest.raises(ValidationError, match="at most 1 MiB"):
            app.enqueue("echo", "x" * TWENTY_MB)
        assert _count(app) == 0
        # A 20 MB result fails its attempts cleanly; the small operation after it finishes.
        statuses = _run_with_worker(app, ("sized_result", TWENTY_MB), ("echo", 1))
        assert statuses == [Status.ERROR, Status.FINISHED]
        [big] = app.service.list_operations(OperationQuery(task="sized_result"))
        errors = [a.error_message or "" for a in app.service.attempts(big.id)]
        assert len(errors) == 2
        assert all(e.startswith("ResultTooLarge") for e in errors)
    finally:
        app.close()


@pytest.mark.postgres
def test_20_mb_payloads_on_postgres_are_recorded_under_raised_limits(pg_url: str) -> None:
    raised = PayloadLimits(arguments=32 * MIB, result=32 * MIB, checkpoint=32 * MIB)
    app = _app(pg_url, raised)
    try:
        statuses = _run_with_worker(
            app, ("echo", "a" * TWENTY_MB), ("sized_result", TWENTY_MB), ("echo", 1)
        )
        assert statuses == [Status.FINISHED] * 3
        results = {
            op.task: op.result for op in app.service.list_operations(OperationQuery(limit=10))
        }
        assert len(results["sized_result"]) == TWENTY_MB
    finally:
        app.close()


def _stored_bytes(app: Longops, column: str, op_id: object) -> int:
    """Bytes of the JSON the database holds in ``column`` of the operation's row."""
    store: Any = app.store
    if store.dialect == "postgres":
        sql = f"SELECT octet_length({column}::text) AS n FROM longops_operations WHERE id = %s"
        with store._connection() as conn:
            return int(conn.execute(sql, [op_id]).fetchone()["n"])
    sql = f"SELECT length(CAST({column} AS BLOB)) AS n FROM longops_operations WHERE id = ?"
    conn = sqlite3.connect(store.path)
    try:
        return int(conn.execute(sql, [store.enc_uuid(op_id)]).fetchone()[0])
    finally:
        conn.close()


def test_non_ascii_payloads_count_their_utf8_bytes_as_stored(app: Longops) -> None:
    # {"args":["…"],"kwargs":{}} is 25 bytes of framing; "é" is 2 bytes of UTF-8 and "€" 3
    # (as \u escapes they were 6 each, and these were refused at a sixth of the limit).
    fits = "é" * 498 + "€"  # 25 + 996 + 3 = 1024 bytes: the limit exactly
    op = app.enqueue("echo", fits).operation
    assert _stored_bytes(app, "args", op.id) == 1024
    assert app.service.get(op.id).args == (fits,)
    with pytest.raises(ValidationError) as caught:
        app.enqueue("echo", "é" * 499 + "€")  # one byte over
    assert caught.value.field == "args"
    assert caught.value.value == 1026
    # A result: "…" quoted, in UTF-8 bytes (limit 1024).
    result = app.enqueue("umlauts", 511).operation  # 2 + 1022 bytes
    over = app.enqueue("umlauts", 511, "x").operation  # 1025 bytes
    Runner(app).run_until_idle()
    done = app.service.get(result.id)
    assert (done.status, done.result) == (Status.FINISHED, "ü" * 511)
    assert _stored_bytes(app, "result", result.id) == 1024
    failed = app.service.get(over.id)
    assert failed.status is Status.ERROR
    [attempt] = app.service.attempts(over.id)
    assert "(1025 bytes)" in (attempt.error_message or "")
    # A lone surrogate, which UTF-8 cannot carry, keeps its escape (as before).
    odd = app.enqueue("echo", "\ud800").operation
    assert app.service.get(odd.id).args == ("\ud800",)
