"""Fixtures of the browser tests (helpers and the harness itself: ``browser_support``).

- ``server``: one ``longops serve --workers 2`` per database (PostgreSQL and SQLite) for the
  whole session, on a fresh seeded database;
- ``playwright`` / ``browser``: Debian's Chromium (``/usr/bin/chromium``) through Playwright;
- ``ui``: a fresh browser context and page per test that fails the test on any console
  error, page error, failed request or unexpected HTTP error, with screenshots.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    UI,
    Server,
    artifact_folder,
    start_server,
    stop,
)
from playwright.sync_api import Browser, Playwright, sync_playwright


@pytest.fixture(
    scope="session", params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A ``longops serve --workers 2`` on a fresh, seeded database of each dialect."""
    dialect = request.param
    # One log per xdist worker: each worker starts its own servers.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    log = ARTIFACTS / f"server-{dialect}-{worker}.log"
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'longops.db'}"
        drop: Callable[[], None] = lambda: None  # noqa: E731
    else:
        databases = request.getfixturevalue("pg_databases")
        name = databases.take()
        url = databases.url(name)

        def drop() -> None:
            databases.release(name)

    srv = start_server(dialect, url, log)
    try:
        yield srv
    finally:
        stop(srv.process)
        srv.lib.close()
        drop()


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the
# main thread while it is open, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


# Leaving a page closes its live stream (EventSource); Chromium reports that as an aborted
# request. That is the browser's normal behaviour, not a failure of the page.
@pytest.fixture
def ui(browser: Browser, request: pytest.FixtureRequest) -> Iterator[UI]:
    """A fresh browser context (no cookies) and page; see the module docstring."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    state = UI.attach(context.new_page(), artifact_folder(request.node))
    try:
        yield state
        state.finish()
    finally:
        state.closing = True
        context.close()
    state.check()
