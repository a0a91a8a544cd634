"""End-to-end fixtures (the set-up is in e2e_support.py, importable by the tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import Deployment, deploy


@pytest.fixture
def served(pg_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """``longops serve --workers 4`` on a fresh PostgreSQL database."""
    yield from deploy(pg_url, tmp_path, workers=4)


@pytest.fixture
def served_api_only(pg_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """``longops serve --workers 0``: the tests run the worker in a process of its own, so
    the API server can be killed and restarted while the operation runs on."""
    yield from deploy(pg_url, tmp_path, workers=0)
