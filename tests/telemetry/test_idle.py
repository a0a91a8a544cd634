"""Unconfigured (no exporter, no provider set by anyone): longops is idle, its hooks build
nothing per operation or attempt, as with ``LONGOPS_TELEMETRY=off``; an SDK provider the
application sets afterwards, through the API's globals, is used from the next hook on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import _logs, trace
from opentelemetry._logs import _internal as logs_globals
from opentelemetry.metrics import _internal as metrics_globals
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from longops import Longops, telemetry
from longops.telemetry import catalogue as cat
from longops.telemetry import events, providers, traces
from longops.telemetry.metrics import Tally
from longops.testing import Runner

_GLOBALS = (
    (trace, "_TRACER_PROVIDER", "_TRACER_PROVIDER_SET_ONCE"),
    (metrics_globals, "_METER_PROVIDER", "_METER_PROVIDER_SET_ONCE"),
    (logs_globals, "_LOGGER_PROVIDER", "_LOGGER_PROVIDER_SET_ONCE"),
)


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No global provider set (as in a fresh process nobody configured), for one test."""
    saved = [
        (module, getattr(module, name), getattr(module, once)) for module, name, once in _GLOBALS
    ]
    for module, name, once in _GLOBALS:
        setattr(module, name, None)
        setattr(module, once, Once())
    for name in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_PYTHON_LOGGER_PROVIDER", raising=False)
    monkeypatch.delenv("LONGOPS_TELEMETRY", raising=False)
    telemetry.use()  # follow the global providers
    try:
        yield
    finally:
        for (module, name, once), (_, provider, set_once) in zip(_GLOBALS, saved, strict=True):
            setattr(module, name, provider)
            setattr(module, once, set_once)
        telemetry.use()


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)
    application.migrate()
    yield application
    application.close()


def _count(monkeypatch: pytest.MonkeyPatch, calls: list[str], owner: Any, name: str) -> None:
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)


@pytest.mark.usefixtures("unconfigured")
def test_unconfigured_operations_build_no_telemetry(
    app: Longops, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert providers.get().idle
    assert type(providers.current.tracer) is trace.NoOpTracer  # not the API's proxy
    assert telemetry.sql_timing()[1] is False  # a statement: two clock reads, no report
    events_log = logging.getLogger("longops.events")
    level = events_log.level
    events_log.setLevel(logging.WARNING)  # the console's default: warnings only
    calls: list[str] = []
    # What the hooks build for a span, a log record or a metric.
    _count(monkeypatch, calls, traces, "_op_attributes")
    _count(monkeypatch, calls, traces, "operation_attributes")
    _count(monkeypatch, calls, events, "operation_attributes")
    _count(monkeypatch, calls, events, "attribute")
    _count(monkeypatch, calls, traces, "emit_with")
    _count(monkeypatch, calls, traces, "sql_used")
    _count(monkeypatch, calls, Tally, "add")
    app.task(name="noop")(lambda: None)
    try:
        for _ in range(3):
            app.enqueue("noop")
        assert Runner(app).run_until_idle() == 3
    finally:
        events_log.setLevel(level)
    assert calls == []


@pytest.mark.usefixtures("unconfigured")
def test_a_provider_set_later_is_used_from_the_next_attempt(app: Longops) -> None:
    app.task(name="noop")(lambda: None)
    app.enqueue("noop")
    assert Runner(app).run_until_idle() == 1
    assert providers.current.idle
    # The application sets the SDK up itself, after longops was imported and started.
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    try:
        app.enqueue("noop")
        assert Runner(app).run_until_idle() == 1
        names = sorted(s.name for s in spans.get_finished_spans())
        assert names == ["process default", "send default"]
        assert not providers.current.idle
        assert providers.current.enabled
        # Every statement of an attempt counts on its span; elsewhere only slow ones report.
        assert telemetry.sql_timing()[1] is False
        op = app.store.get_operation(app.enqueue("noop").id)
        assert op is not None
        with telemetry.processing(op, 1):
            assert telemetry.sql_timing()[1] is True
    finally:
        provider.shutdown()


@pytest.mark.usefixtures("unconfigured")
def test_a_logger_provider_alone_wakes_it() -> None:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        InMemoryLogRecordExporter,
        SimpleLogRecordProcessor,
    )

    assert providers.get().idle
    logs = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    _logs.set_logger_provider(provider)
    try:
        telemetry.maintenance("pruner", 3)
        [record] = logs.get_finished_logs()
        assert record.log_record.attributes is not None
        assert record.log_record.attributes["eventId"] == cat.MAINTENANCE.id
    finally:
        provider.shutdown()
