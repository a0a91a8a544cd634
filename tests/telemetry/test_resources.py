"""Resource monitoring per attempt: CPU seconds (the runner thread's, or the child
process's), peak resident memory of process-isolated attempts, and longops's SQL statements
on the attempt's thread, as attributes of the attempt's process span."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.trace import SpanKind
from otel_support import Captured

from apps import telemetry_app
from longops import Longops, RunContext
from longops.testing import Runner

WALL = 0.6


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)
    application.registry.add(telemetry_app.burn, name="burn")
    application.registry.add(telemetry_app.rest, name="rest")
    application.registry.add(telemetry_app.burn, name="burn_child", isolation="process")
    yield application
    application.close()


def _process_span_of(otel: Captured, task: str) -> dict[str, object]:
    [span] = [
        s
        for s in otel.spans()
        if s.kind is SpanKind.CONSUMER and (s.attributes or {}).get("longops.task") == task
    ]
    return dict(span.attributes or {})


def test_cpu_bound_thread_task_shows_cpu_close_to_wall(app: Longops, otel: Captured) -> None:
    burning = app.enqueue("burn", WALL)
    app.enqueue("rest", WALL)
    runner = Runner(app)
    assert runner.run_until_idle() == 2
    burn = _process_span_of(otel, "burn")
    rest = _process_span_of(otel, "rest")
    # The machine is shared: a CPU-bound thread may get less than a core, so the figure is
    # compared with what the task itself measured (CPU = wall on an idle machine).
    own = float(burning.refresh().result)
    cpu = float(burn["longops.cpu_seconds"])  # type: ignore[arg-type]
    assert own <= cpu <= own + 0.2
    assert own > 0.01
    assert float(rest["longops.cpu_seconds"]) < 0.1  # type: ignore[arg-type]
    assert "longops.peak_rss_bytes" not in burn  # only measured for a child process


def test_process_isolated_attempt_reports_the_childs_cpu_and_memory(
    app: Longops, otel: Captured
) -> None:
    burning = app.enqueue("burn_child", WALL)
    runner = Runner(app)
    try:
        assert runner.run_until_idle() == 1
    finally:
        runner.close()
    span = _process_span_of(otel, "burn_child")
    own = float(burning.refresh().result)
    cpu = float(span["longops.cpu_seconds"])  # type: ignore[arg-type]
    # /proc counts in clock ticks (10 ms): allow a few either side.
    assert own - 0.05 <= cpu <= own + 0.3
    assert own > 0.01
    assert 10 * 2**20 < int(span["longops.peak_rss_bytes"]) < 2**31  # type: ignore[call-overload]


def test_sql_statements_of_the_attempt_are_counted(app: Longops, otel: Captured) -> None:
    @app.task(name="checkpoints")
    def checkpoints(ctx: RunContext) -> None:
        for n in range(3):
            ctx.checkpoint({"next": n})

    app.enqueue("checkpoints")
    assert Runner(app).run_until_idle() == 1
    span = _process_span_of(otel, "checkpoints")
    assert int(span["longops.sql.statements"]) >= 3  # type: ignore[call-overload]
    assert float(span["longops.sql.seconds"]) > 0  # type: ignore[arg-type]
