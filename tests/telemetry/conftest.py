from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from otel_support import Captured, captured

from longops.domain.clock import OffsetClock
from longops.telemetry.settings import settings


@pytest.fixture
def otel() -> Iterator[Captured]:
    """longops's telemetry sent to in-memory SDK exporters for one test."""
    yield from captured()


@pytest.fixture
def clock() -> OffsetClock:
    """A clock the tests move forward (expiry, stall, rescue), real time otherwise."""
    return OffsetClock()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    settings.cache_clear()
    yield
    settings.cache_clear()
