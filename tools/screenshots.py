"""Screenshots of every page docs/pages.md describes, taken from a throwaway ``longops demo``.

One command (``./dev screenshots``, or ``python tools/screenshots.py``):

1. starts ``longops demo`` in a subprocess on a free port and a SQLite file in a temporary
   folder (the demo's own companies, users and operations), and reads the sign-ins it prints;
2. waits (with a deadline, polling the demo's database) until CRONUS has operations running,
   finished, in error, on hold and cancelled, and the admin has a notification;
3. signs in through the sign-in form as the demo's users (admin, viewer, super) in Debian's
   Chromium (``/usr/bin/chromium``, through Playwright; never a downloaded browser) and saves a
   PNG of each page in :data:`PAGES` at 1366x900 (the list, a card and the Overview at 390x844
   too) into ``docs/images/pages/`` (``--out`` elsewhere);
4. fails (exit 1, each problem named) when a page answers another status than expected, lacks
   the header, or the browser reports a console error, a page error or a failed request.

Pages are found by URL and checked by role and text (the main navigation, the sign-in button),
never by CSS classes, so a new layout changes the pictures, not the tool. With Pillow installed
the PNGs are reduced to 256 colours (a third of the size); without it they are kept as
Chromium writes them. ``tests/browser/test_browser_screenshots.py`` runs the whole list into a
temporary folder, so the tool cannot rot.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    sync_playwright,
)

from browser_harness import CHROMIUM, CHROMIUM_ARGS, answers, free_port, start, stop, wait_for
from longops import Longops
from longops.domain.filters import OperationFilter
from longops.domain.operation import Operation
from longops.domain.status import Status

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images" / "pages"
DESKTOP = (1366, 900)
PHONE = (390, 844)
COMPANY = "CRONUS"
SIGN_IN = re.compile(r"^\s+(\w+) / (\S+)\s+\((.*)\)$")
EVERY_STATE = frozenset(
    {Status.IN_PROCESS, Status.FINISHED, Status.ERROR, Status.ON_HOLD, Status.CANCELLED}
)
STREAM = re.compile(r"/c/[^/]+/stream")


@dataclass(frozen=True, slots=True)
class Shot:
    """One screenshot: the page at ``path`` as ``user`` sees it.

    ``path`` may name ``{company}`` and the demo operations ``{running}`` (the long report,
    in process), ``{error}`` (the sync that keeps failing), ``{held}`` (on hold) and
    ``{cancelled}`` (the archive clean-up)."""

    name: str
    """The file name, without ``.png``."""
    title: str
    """What docs/pages.md calls the page."""
    path: str
    user: str | None = "admin"
    """Who is signed in (None: nobody)."""
    viewport: tuple[int, int] = DESKTOP
    status: int = 200
    press: str | None = None
    """A button to press on the page (a regular expression of its accessible name, which must
    match one button): the page it answers with is the picture."""


PAGES: tuple[Shot, ...] = (
    Shot("sign-in", "Sign in", "/login", user=None),
    Shot("overview", "Overview", "/c/{company}/"),
    Shot("entries", "Job Queue Entries", "/c/{company}/entries"),
    Shot("entries-viewer", "Job Queue Entries as a viewer", "/c/{company}/entries", "viewer"),
    Shot("card-running", "Entry card, in process", "/c/{company}/entries/{running}"),
    Shot("card-error", "Entry card, in error", "/c/{company}/entries/{error}"),
    Shot("card-on-hold", "Entry card, on hold (the Edit form)", "/c/{company}/entries/{held}"),
    Shot(
        "confirm-delete",
        "Delete asks first",
        "/c/{company}/entries/{cancelled}",
        press=r"^Delete\b",
    ),
    Shot("new", "New operation", "/c/{company}/entries/new?task=demo.render_report"),
    Shot("log-entries", "Log Entries", "/c/{company}/log-entries"),
    Shot("notifications", "Notifications", "/c/{company}/notifications"),
    Shot(
        "notification-preferences",
        "Notification preferences",
        "/c/{company}/notification-preferences",
    ),
    Shot("notification-setup", "Notification Setup", "/c/{company}/notification-setup"),
    Shot("categories", "Categories", "/c/{company}/categories"),
    Shot("sessions", "Sessions", "/c/{company}/sessions", "super"),
    Shot("maintenance", "Maintenance mode", "/c/{company}/maintenance", "super"),
    Shot("account", "Your sign-ins", "/c/{company}/account"),
    Shot("not-found", "An error page (unknown path)", "/c/{company}/no-such-page", status=404),
    Shot("phone-overview", "Overview at 390 px", "/c/{company}/", viewport=PHONE),
    Shot("phone-entries", "Job Queue Entries at 390 px", "/c/{company}/entries", viewport=PHONE),
    Shot(
        "phone-card-running",
        "Entry card, in process, at 390 px",
        "/c/{company}/entries/{running}",
        viewport=PHONE,
    ),
)
"""Every page docs/pages.md shows, in the order it shows them."""


@dataclass
class Demo:
    """A running ``longops demo``: its URL, database and the sign-ins it printed."""

    base_url: str
    database_url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def sign_ins(self) -> dict[str, str]:
        found = {m.group(1): m.group(2) for line in self.lines if (m := SIGN_IN.match(line))}
        return found if {"admin", "viewer", "super"} <= set(found) else {}

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"longops demo exited with {self.process.returncode}:\n"
                               + self.output()[-4000:])  # fmt: skip

    def up(self) -> bool:
        self.alive()
        return answers(self.base_url, "/readyz") is None


@contextmanager
def demo(seconds: float) -> Iterator[Demo]:
    """``longops demo`` on a free port and a fresh SQLite file, stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="longops-shots-"))
    port = free_port()
    url = f"sqlite:///{folder / 'demo.db'}"
    env = dict(os.environ)
    env.pop("LONGOPS_DATABASE_URL", None)
    cmd = [
        sys.executable, "-m", "longops.cli.main", "demo", "--for", str(seconds),
        "--port", str(port), "--database-url", url,
    ]  # fmt: skip
    process = start(cmd, env, subprocess.PIPE, text=True, cwd=folder)
    running = Demo(f"http://127.0.0.1:{port}", url, process)
    reader = threading.Thread(target=running.read, daemon=True)
    reader.start()
    try:
        yield running
    finally:
        stop(process)
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(folder, ignore_errors=True)


def demo_operations(lib: Longops) -> dict[str, Operation] | None:
    """The operations the pages show, once CRONUS has every state and the admin has a
    notification (None until then)."""
    ops = lib.service.list_operations(OperationFilter(company=COMPANY, limit=100))
    if not {op.status for op in ops} >= EVERY_STATE:
        return None
    if not lib.as_user("admin").inbox.notifications(COMPANY):
        return None

    def first(status: Status, task: str) -> Operation | None:
        return next((op for op in ops if op.status is status and op.task == task), None)

    found = {
        "running": first(Status.IN_PROCESS, "demo.render_report"),
        "error": first(Status.ERROR, "demo.sync_catalogue"),
        "held": first(Status.ON_HOLD, "demo.render_report"),
        "cancelled": first(Status.CANCELLED, "demo.clean_up"),
    }
    if any(op is None for op in found.values()):
        return None
    return {key: op for key, op in found.items() if op is not None}


@dataclass
class Browse:
    """Signed-in browser contexts, one per user, and what went wrong in any of them."""

    browser: Browser
    base_url: str
    passwords: dict[str, str]
    problems: list[str] = field(default_factory=list)
    expected: set[str] = field(default_factory=set)
    """URLs whose HTTP error status a shot asked for."""
    contexts: dict[str | None, tuple[BrowserContext, Page]] = field(default_factory=dict)

    def page(self, user: str | None) -> Page:
        if user in self.contexts:
            return self.contexts[user][1]
        context = self.browser.new_context(
            viewport={"width": DESKTOP[0], "height": DESKTOP[1]}, device_scale_factor=1
        )
        context.set_default_timeout(30_000)
        page = context.new_page()
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self.on_request_failed)
        page.on("response", self.on_response)
        self.contexts[user] = (context, page)
        if user is not None:
            page.goto(self.base_url + "/login")
            page.get_by_label("User name").fill(user)
            page.get_by_label("Password").fill(self.passwords[user])
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(re.compile(r"/c/[^/]+/"))
        return page

    def close(self) -> None:
        for context, page in self.contexts.values():
            with suppress(Exception):
                page.goto("about:blank")  # end the live stream before the demo goes
            context.close()

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        # Chromium repeats an HTTP error response as a console error: one asked for is fine.
        if "the server responded with a status of" in msg.text and any(
            url in str(msg.location.get("url", "")) for url in self.expected
        ):
            return
        self.problems.append(f"console error: {msg.text} ({msg.location.get('url')})")

    def on_request_failed(self, request: Request) -> None:
        failure = request.failure or ""
        # Leaving a page aborts its live stream (EventSource): the browser's normal way.
        if "ERR_ABORTED" in failure and STREAM.search(request.url):
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {failure}")

    def on_response(self, response: Response) -> None:
        if response.status >= 400 and response.url not in self.expected:
            self.problems.append(f"HTTP {response.status}: {response.url}")


def take(browse: Browse, shot: Shot, url: str, out: Path) -> Path:
    """Open ``url`` as ``shot.user`` at the shot's viewport, check it, save the PNG."""
    page = browse.page(shot.user)
    page.set_viewport_size({"width": shot.viewport[0], "height": shot.viewport[1]})
    if shot.status >= 400:
        browse.expected.add(url)
    response = page.goto(url, wait_until="load")
    if shot.press is not None:
        button = page.get_by_role("button", name=re.compile(shot.press))
        if button.count() != 1:
            browse.problems.append(f"{shot.title}: {url} has {button.count()} {shot.press} buttons")
            button = button.first
        with page.expect_navigation(wait_until="load") as navigation:
            button.click()
        response = navigation.value
        url = page.url
    status = response.status if response is not None else 0
    if status != shot.status:
        browse.problems.append(f"{shot.title}: {url} answered {status}, not {shot.status}")
    # The header of whoever is signed in (every page but the sign-in form has it).
    if shot.user is None:
        landmark = page.get_by_role("button", name="Sign in")
    else:
        landmark = page.get_by_role("navigation", name="Main")
    if landmark.count() != 1 or not landmark.is_visible():
        browse.problems.append(f"{shot.title}: {url} has no header (or sign-in form)")
    if page.locator("h1").count() == 0:
        browse.problems.append(f"{shot.title}: {url} has no heading")
    path = out / f"{shot.name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    return path


def shrink(path: Path) -> None:
    """Reduce a screenshot to 256 colours (with Pillow, when installed)."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def run(out: Path, *, timeout: float = 120, pages: tuple[Shot, ...] = PAGES) -> list[Path]:
    """Take ``pages`` from a fresh demo into ``out``; raises RuntimeError naming every problem."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing (apt-get install chromium)")
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    with demo(seconds=timeout + 600) as d:
        wait_for(d.up, timeout=timeout, what="the demo's pages")
        passwords = wait_for(d.sign_ins, timeout=timeout, what="the demo's printed sign-ins")
        lib = Longops(database_url=d.database_url)
        try:
            ops = wait_for(
                lambda: demo_operations(lib),
                timeout=timeout,
                what="operations running, finished, in error, on hold and cancelled",
            )
        finally:
            lib.close()
        fill = {"company": COMPANY, **{key: str(op.id) for key, op in ops.items()}}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            browse = Browse(browser, d.base_url, passwords)
            try:
                for shot in pages:
                    saved.append(take(browse, shot, d.base_url + shot.path.format(**fill), out))
            finally:
                browse.close()
                browser.close()
        d.alive()
    if browse.problems:
        raise RuntimeError("the pages reported problems:\n" + "\n".join(browse.problems))
    for path in saved:
        shrink(path)
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT,
        help=f"where the PNGs go (default: {OUT.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds to wait for the demo (default 120)"
    )
    args = parser.parse_args(argv)
    try:
        saved = run(args.out, timeout=args.timeout)
    except (RuntimeError, TimeoutError) as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 1
    total = sum(p.stat().st_size for p in saved)
    print(f"{len(saved)} screenshots in {args.out} ({total / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
