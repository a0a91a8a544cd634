"""Long-running detection (Business Central's RT0018 and RT0005): slow steps, timed sections
and slow SQL statements, with the thresholds lowered."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from otel_support import Captured

from longops import Longops, RunContext
from longops.telemetry.settings import settings
from longops.testing import Runner

SECRET = "s3cr3t-value-in-a-parameter"  # noqa: S105


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)
    yield application
    application.close()


def test_slow_steps_and_timed_sections(
    app: Longops, otel: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONGOPS_SLOW_STEP_AFTER", "0.05")
    settings.cache_clear()  # the application read them when it was made
    pause = threading.Event()

    @app.task(name="phases")
    def phases(ctx: RunContext) -> None:
        ctx.step("Quick", 1, 3)
        ctx.step("Slow", 2, 3)
        pause.wait(0.2)  # longer than the threshold
        ctx.step("Last", 3, 3)
        with ctx.timed("load ledger"):
            pause.wait(0.1)
        with ctx.timed("fast call"):
            pass
        with ctx.timed("own threshold", threshold=10):
            pause.wait(0.1)

    handle = app.enqueue("phases")
    assert Runner(app).run_until_idle() == 1
    slow = [r for r in otel.logs() if r["eventId"] == "LO0023"]
    # "Last" stays open while the timed sections run, so it is slow too.
    assert [r["step"] for r in slow] == ["Slow", "load ledger", "Last"]
    for record in slow:
        assert record["operationId"] == str(handle.id)
        assert record["bcEventId"] == "RT0018"
        assert int(record["elapsedInMs"]) >= 50
        assert record["thresholdInMs"] == 50
    names = {s.name for s in otel.spans()}
    assert {"timed load ledger", "timed fast call", "step Quick", "step Slow"} <= names


def test_slow_sql_names_the_statement_never_its_parameters(
    app: Longops, otel: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.task(name="echo")(lambda text: text)
    app.enqueue("echo", SECRET)  # fast: nothing yet
    assert "LO0024" not in otel.event_ids()
    monkeypatch.setenv("LONGOPS_SLOW_SQL_AFTER", "0")
    settings.cache_clear()
    app.enqueue("echo", SECRET)
    statements = {r["statement"] for r in otel.logs() if r["eventId"] == "LO0024"}
    # PostgreSQL sends a plain enqueue as one statement with its wake-up (and without
    # the Python-side pipeline's name); SQLite's is the INSERT itself (insert_operation_one).
    assert statements & {"insert_operation", "insert_operation_notify", "insert_operation_one"}
    assert all(r["bcEventId"] == "RT0005" for r in otel.logs() if r["eventId"] == "LO0024")
    assert SECRET not in repr(otel.logs())


def test_a_bad_threshold_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from longops.domain.errors import ValidationError

    monkeypatch.setenv("LONGOPS_SLOW_SQL_AFTER", "soon")
    with pytest.raises(ValidationError, match="LONGOPS_SLOW_SQL_AFTER"):
        settings()
