"""``longops demo``: the pages on a fresh SQLite file, signed in with the printed credentials,
show operations in every state; Ctrl-C ends it after a summary (exit 130, as a shell reports
SIGINT). ``--for`` is tested in tests/web/test_demo_exit.py: waiting for it here would only
cost a minute."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser_support import UI, free_port, low_contrast_text, sign_in, wait_until
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(240)

SIGN_IN = re.compile(r"^\s+(\w+) / (\S+)\s+\((.*)\)$")
EVERY_STATE = {"in_process", "ready", "on_hold", "finished", "error", "cancelled"}
RUN_FOR = 600
"""Only a bound: the test ends the demo with Ctrl-C once it has seen what it came for."""


class Demo:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.lines: list[str] = []
        env = dict(os.environ)
        env.pop("LONGOPS_DATABASE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "longops.cli.main", "demo", "--for", str(RUN_FOR),
             "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def sign_ins(self) -> dict[str, str]:
        found = {}
        for line in self.lines:
            if m := SIGN_IN.match(line):
                found[m.group(1)] = m.group(2)
        return found


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    d = Demo(tmp_path)
    yield d
    if d.process.poll() is None:
        d.process.terminate()
        d.process.wait(timeout=30)
    d.reader.join(timeout=10)
    if d.process.stdout is not None:
        d.process.stdout.close()


def test_demo_shows_every_state_to_the_printed_sign_in_and_stops_on_ctrl_c(
    demo: Demo, ui: UI
) -> None:
    base = f"http://127.0.0.1:{demo.port}"

    def up() -> bool:
        assert demo.process.poll() is None, demo.output
        try:
            return httpx.get(base + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=60, what="the demo's pages")
    assert f"http://127.0.0.1:{demo.port}/" in demo.output
    users = wait_until(demo.sign_ins, timeout=10, what="printed sign-ins")
    assert {"admin", "viewer"} <= set(users), demo.output

    sign_in(ui, base, "admin", users["admin"])
    page = ui.page

    def states() -> set[str]:
        ui.goto(base + "/c/CRONUS/entries", "entries")
        found = page.locator("tr[data-status]").evaluate_all("rs => rs.map(r => r.dataset.status)")
        return set(found)

    seen: set[str] = set()

    def every_state() -> bool:
        seen.update(states())
        return seen >= EVERY_STATE

    wait_until(every_state, timeout=60, interval=1, what=f"every state (seen {seen})")
    ui.shot("every-state")
    # Every status word, badge and button is readable (contrast at least 4.5:1).
    assert low_contrast_text(page) == []
    body = page.locator("main")
    expect(body).to_contain_text("Year-end report")
    expect(body).to_contain_text("Clean up old export files (every minute)")
    # Invoice batches wait behind the one-at-a-time POSTING category.
    batches = page.locator("tr[data-operation-id]").filter(has_text="queued behind POSTING")
    expect(batches).to_have_count(4)
    # The admin has two companies: the header's switcher changes to the other one.
    with page.expect_navigation(url=re.compile(r"/c/FABRIKAM/$")):
        page.get_by_label("Company").select_option("FABRIKAM")
    ui.shot("fabrikam-overview")
    ui.goto(base + "/c/FABRIKAM/entries", "fabrikam-entries")
    expect(page.locator("main")).to_contain_text("Fabrikam month-end report")

    # Ctrl-C stops the demo with a summary, exit code 130 (leave the page first: its live
    # stream would see the server go away).
    ui.page.goto("about:blank")
    demo.process.send_signal(signal.SIGINT)
    code = demo.process.wait(timeout=60)
    demo.reader.join(timeout=10)
    assert code == 130, demo.output
    assert "Demo stopped:" in demo.output
    assert "Demo stopped:" in demo.output
