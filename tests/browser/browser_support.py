"""The browser tests' harness: a real ``longops serve`` process (on PostgreSQL and on
SQLite) driven by Debian's Chromium through Playwright. The fixtures are in ``conftest.py``;
the test modules import helpers from here (a name of its own: ``tests/web`` has a conftest
too, and only one module can be ``conftest``).

- ``server``: one ``longops --app pages_app:app serve --workers 2`` per database for the whole
  session, on a fresh migrated database seeded with two companies and three users (see
  ``USERS``); ``server.lib`` is a library instance on the same database, acting as SUPER, that
  tests use to set up operations and to read the truth behind a page.
- ``ui``: a new browser context and page per test. Any console error, uncaught page error,
  failed request or HTTP response >= 400 fails the test, unless the test declared it with
  ``ui.expect_status(...)``. ``ui.shot(name)`` saves a screenshot to ``test-artifacts/browser/``
  and every page the test navigated to must have been captured (checked at teardown).

Chromium is ``/usr/bin/chromium`` (Debian's package; ``.ci/run`` installs it). Playwright's own
browser download (``playwright install``) is never used.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    ConsoleMessage,
    Page,
    Request,
    Response,
)

from longops import Longops
from longops.domain.security import PermissionSet
from procs import wait_for as wait_until  # one polling helper for every test folder

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "tests" / "apps"
ARTIFACTS = ROOT / "test-artifacts" / "browser"

sys.path.insert(0, str(APPS))
sys.path.insert(0, str(ROOT / "tools"))
import pages_app  # noqa: E402

# One harness with the screenshot tool (tools/browser_harness.py); conftest.py takes
# Chromium and stop() from here.
from browser_harness import CHROMIUM as CHROMIUM  # noqa: E402
from browser_harness import CHROMIUM_ARGS as CHROMIUM_ARGS  # noqa: E402
from browser_harness import answers, free_port, start  # noqa: E402
from browser_harness import stop as stop  # noqa: E402

COMPANY_A = "CRONUS"
COMPANY_B = "FABRIKAM"
PASSWORD = "correct horse battery"  # noqa: S105 - a test user's password
USERS: dict[str, tuple[str, PermissionSet]] = {
    "admin": (COMPANY_A, PermissionSet.ADMIN),
    "viewer": (COMPANY_A, PermissionSet.VIEW),
    "bob": (COMPANY_B, PermissionSet.ADMIN),
}
"""Signed-in users: an admin and a viewer of company A, an admin of company B."""


@dataclass
class Server:
    """A running ``longops serve`` and a SUPER library instance on its database."""

    dialect: str
    base_url: str
    database_url: str
    lib: Longops
    process: subprocess.Popen[Any]
    log: Path

    def url(self, path: str) -> str:
        return self.base_url + path


def _seed(lib: Longops) -> None:
    lib.migrate()
    lib.add_company(COMPANY_A, display_name="CRONUS International")
    lib.add_company(COMPANY_B, display_name="Fabrikam Inc.")
    for name, (company, permission_set) in USERS.items():
        lib.security.add_user(name, password=PASSWORD, grants=[(company, permission_set)])


def start_server(dialect: str, database_url: str, log: Path) -> Server:
    lib = pages_app.register(Longops(database_url=database_url))
    _seed(lib)
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), env.get("PYTHONPATH", "")])
    # Signs the cookies and encrypts notification channels (the setup page's test).
    env.setdefault("LONGOPS_SECRET_KEY", secrets.token_urlsafe(32))
    env.setdefault("LONGOPS_BASE_URL", f"http://127.0.0.1:{port}")  # notifications link here
    cmd = [
        sys.executable, "-m", "longops.cli.main", "--app", "pages_app:app",
        "--database-url", database_url, "serve", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "2", "--log-level", "warning",
    ]  # fmt: skip
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = start(cmd, env, out)
    base = f"http://127.0.0.1:{port}"

    last: list[str] = ["no answer yet"]

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"longops serve exited with {process.returncode}:\n{log.read_text()[-4000:]}"
            )
        # The API's health check and the pages' sign-in form both answer.
        problem = answers(base, "/healthz", "/login")
        last[0] = problem or "ready"
        return problem is None

    try:
        wait_until(ready, timeout=60, what=f"longops serve on {base} ({dialect}): {last}")
    except BaseException:
        stop(process)
        lib.close()
        raise
    return Server(dialect, base, database_url, lib, process, log)


_ABORTED_STREAM = re.compile(r"/c/[^/]+/stream")
_FAILED_TO_LOAD = re.compile(
    r"Failed to load resource: the server responded with a status of (\d+)"
)


@dataclass
class UI:
    """One test's browser page, with the failure checks and screenshots described above."""

    page: Page
    folder: Path
    problems: list[str] = field(default_factory=list)
    expected: list[tuple[int, str]] = field(default_factory=list)
    navigated: list[str] = field(default_factory=list)
    captured: set[str] = field(default_factory=set)
    shots: int = 0
    closing: bool = False

    @classmethod
    def attach(cls, page: Page, folder: Path) -> UI:
        """Watch ``page`` for problems; screenshots go to ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        state = cls(page, folder)
        page.on("console", state.on_console)
        page.on("pageerror", state.on_page_error)
        page.on("requestfailed", state.on_request_failed)
        page.on("response", state.on_response)
        page.on("framenavigated", state.on_navigated)
        return state

    def finish(self) -> None:
        """Capture the last page (before the context closes)."""
        if self.page.url.startswith("http"):
            self.shot("final")

    def check(self) -> None:
        """Fail on any problem the page reported, or a page visited without a screenshot."""
        assert not self.problems, "the browser reported problems:\n" + "\n".join(self.problems)
        missing = self.unshot()
        assert not missing, f"pages visited without a screenshot: {missing}"

    def expect_status(self, status: int, path_part: str) -> None:
        """Declare that a response with ``status`` whose URL contains ``path_part`` is
        what the test wants (a 403 or 404 it provokes), not a failure."""
        self.expected.append((status, path_part))

    def shot(self, name: str) -> Path:
        """Screenshot the page as it is now (full page) into the test's artifacts folder."""
        self.shots += 1
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
        path = self.folder / f"{self.shots:02d}-{slug}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.captured.add(_page_key(self.page.url))
        return path

    def goto(self, url: str, name: str | None = None) -> Response | None:
        response = self.page.goto(url)
        self.shot(name or urlsplit(url).path)
        return response

    # -- event handlers ------------------------------------------------------------------
    def _expected(self, status: int, url: str) -> bool:
        return any(status == s and part in url for s, part in self.expected)

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        # Chromium logs every HTTP error response once more as a console error; one the
        # test expects is not a problem there either.
        loaded = _FAILED_TO_LOAD.match(msg.text)
        if loaded and self._expected(int(loaded.group(1)), str(msg.location.get("url", ""))):
            return
        self.problems.append(f"console error: {msg.text} ({msg.location.get('url')})")

    def on_page_error(self, error: Exception) -> None:
        self.problems.append(f"page error: {error}")

    def on_request_failed(self, request: Request) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" in failure and (self.closing or _ABORTED_STREAM.search(request.url)):
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {failure}")

    def on_response(self, response: Response) -> None:
        if response.status < 400:
            return
        if self._expected(response.status, response.url):
            return
        self.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def unshot(self) -> list[str]:
        """Pages the test navigated to and never captured."""
        return [
            url
            for url in dict.fromkeys(self.navigated)
            if url.startswith("http") and _page_key(url) not in self.captured
        ]

    def on_navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.navigated.append(frame.url)


def _page_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def artifact_folder(node: pytest.Item) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", node.name).strip("-")
    folder = ARTIFACTS / f"{node.module.__name__.rpartition('.')[2]}" / name  # type: ignore[attr-defined]
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


def sign_in(ui: UI, server: Server | str, user: str, password: str = PASSWORD) -> None:
    """Sign in through the login form (of ``server``, or of the base URL given) and land on
    the user's first company."""
    page = ui.page
    base = server if isinstance(server, str) else server.base_url
    ui.goto(base + "/login", "login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/c/[^/]+/"))
    ui.shot(f"signed-in-{user}")


UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button')].filter(el => {
    if (el.tagName === 'BUTTON') return !(el.textContent.trim() || el.getAttribute('aria-label'));
    return !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
        && !el.getAttribute('aria-labelledby') && !el.getAttribute('title');
}).map(el => el.outerHTML.slice(0, 120))"""


def unlabelled_controls(page: Page) -> list[str]:
    """Form controls with no accessible name (the pages promise a label on every one)."""
    return list(page.evaluate(UNLABELLED))


LOW_CONTRAST = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.offsetParent && getComputedStyle(el).position !== 'fixed') continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || el.closest('[disabled], [aria-hidden=true]')) continue;
    const fg = rgb(style.color).slice(0, 3), bg = background(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const text = el.textContent.trim().slice(0, 40);
    if (ratio < 4.5) found.push(`${ratio.toFixed(2)} ${el.tagName} "${text}"`);
  }
  return found;
}"""


def low_contrast_text(page: Page) -> list[str]:
    """Text whose colour against its background is below 4.5:1 (WCAG AA, normal text)."""
    return list(page.evaluate(LOW_CONTRAST))
