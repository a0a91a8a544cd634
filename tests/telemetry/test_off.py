"""``LONGOPS_TELEMETRY=off``: longops's hooks use the no-op objects themselves and build
nothing for them; the console still gets the events it shows."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from otel_support import Captured

from longops import telemetry
from longops.telemetry import catalogue as cat
from longops.telemetry import providers
from longops.telemetry.settings import settings


@pytest.fixture
def off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LONGOPS_TELEMETRY", "off")
    settings.cache_clear()
    try:
        yield
    finally:
        telemetry.use()  # back to the global providers for the tests that follow


def test_off_means_no_op_objects_and_the_console_still_warns(
    off: None, caplog: pytest.LogCaptureFixture
) -> None:
    assert telemetry.configure() is False
    assert not providers.current.enabled
    assert not providers.current.idle  # off: a provider set later does not wake it
    # Not the API's proxy (a lookup of the global provider on every call).
    assert type(providers.current.tracer) is trace.NoOpTracer
    with caplog.at_level(logging.WARNING, logger="longops.events"):
        telemetry.sql_timed("claim", 10.0)  # past the default 0.5 s
    [record] = [r for r in caplog.records if r.name == "longops.events"]
    assert record.eventId == cat.SLOW_SQL.id  # type: ignore[attr-defined]


def test_off_leaves_providers_an_application_chose(off: None, otel: Captured) -> None:
    telemetry.configure()
    assert providers.current.enabled
    telemetry.maintenance("pruner", 3)
    assert otel.event_ids() == [cat.MAINTENANCE.id]


class _Cursor:
    def execute(self, query: str) -> None:
        pass


@pytest.mark.parametrize(("slow_after", "reported"), [("0", 1), ("60", 0)])
def test_off_a_timed_cursor_reports_only_slow_statements(
    off: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    slow_after: str,
    reported: int,
) -> None:
    from longops.store._sql import TimedCursor

    monkeypatch.setenv("LONGOPS_SLOW_SQL_AFTER", slow_after)
    settings.cache_clear()
    telemetry.configure()
    with caplog.at_level(logging.WARNING, logger="longops.events"):
        TimedCursor(_Cursor(), {"SELECT 1": "one"}).execute("SELECT 1")
    found = [r for r in caplog.records if r.name == "longops.events"]
    assert len(found) == reported
    assert all("one" in r.getMessage() for r in found)
