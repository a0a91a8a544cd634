"""``longops demo`` as a new user runs it: the SUPER sign-in it prints sees the worker
sessions, and its temporary SQLite folder is gone after it ends (``--for``, Ctrl-C, and the
terminal demo); a database the user names is kept."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from web_support import Browser

from procs import wait_for

pytestmark = pytest.mark.timeout(180)

SIGN_IN = re.compile(r"^\s+(\w+) / (\S+)\s+\((.*)\)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    """``longops demo ARGS`` in its own process, with TMPDIR pointed at ``tmp``."""

    def __init__(
        self, tmp: Path, *args: str, term_on: str | None = None, sig: int = signal.SIGTERM
    ) -> None:
        self.tmp = tmp
        self.term_on = term_on
        """Signal the demo (``sig``) the moment it prints a line with this text."""
        self.sig = sig
        self.port = free_port()
        self.lines: list[str] = []
        env = dict(os.environ, TMPDIR=str(tmp))
        env.pop("LONGOPS_DATABASE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "longops.cli.main", "demo", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp,
            env=env,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if self.term_on is not None and self.term_on in line:
                self.process.send_signal(self.sig)
                self.term_on = None
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def folders(self) -> list[Path]:
        return sorted(self.tmp.glob("longops-demo-*"))

    def up(self) -> bool:
        assert self.process.poll() is None, self.output
        try:
            url = f"http://127.0.0.1:{self.port}/readyz"
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def sign_ins(self) -> dict[str, tuple[str, str]]:
        return {m[1]: (m[2], m[3]) for line in self.lines if (m := SIGN_IN.match(line))}

    def end(self) -> int:
        code = self.process.wait(timeout=90)
        self.reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def test_the_super_sign_in_sees_sessions_and_ctrl_c_removes_the_database(tmp: Path) -> None:
    demo = Demo(tmp)
    try:
        wait_for(demo.up, timeout=60, what="the demo's pages")
        assert len(demo.folders()) == 1, "the demo's database lives in a temporary folder"
        users = demo.sign_ins()
        assert {"admin", "viewer", "super"} <= set(users), demo.output
        password, summary = users["super"]
        assert "SUPER" in summary
        with httpx.Client(base_url=f"http://127.0.0.1:{demo.port}", timeout=30) as client:
            b = Browser(client)
            b.get("/login")
            assert b.post("/login", {"username": "super", "password": password}).status_code == 303
            page = b.get("/c/CRONUS/sessions")
            assert page.status_code == 200
            assert "<tr data-session-id=" in page.text, "the demo's worker session is listed"
            assert ">Drain</button>" in page.text
    finally:
        demo.process.send_signal(signal.SIGINT)
        demo.end()
    assert demo.folders() == [], demo.output


def test_for_ends_the_demo_and_removes_its_database(tmp: Path) -> None:
    demo = Demo(tmp, "--for", "3")
    assert demo.end() == 0, demo.output
    assert "Demo stopped:" in demo.output
    assert demo.folders() == [], demo.output


def test_the_terminal_demo_removes_its_database_too(tmp: Path) -> None:
    demo = Demo(tmp, "--terminal", "--for", "2")
    assert demo.end() == 0, demo.output
    assert "longops demo" in demo.output
    assert demo.folders() == [], demo.output


def test_a_database_the_user_names_is_kept(tmp: Path) -> None:
    db = tmp / "mine.db"
    demo = Demo(tmp, "--for", "2", "--database-url", f"sqlite:///{db}")
    assert demo.end() == 0, demo.output
    assert db.exists()


@pytest.mark.parametrize(
    ("when", "sig", "code"),
    [
        ("announced", signal.SIGTERM, 0),
        ("up", signal.SIGTERM, 0),
        ("announced", signal.SIGINT, 130),
    ],
)
def test_a_signal_stops_the_demo_cleanly(tmp: Path, when: str, sig: int, code: int) -> None:
    # uvicorn's own server raised a SIGTERM again once it had shut down: the demo ended
    # with -15, its worker not stopped and its folder left; and a TERM sent as soon as the
    # sign-ins are printed met Python's default handler. Ctrl-C stays exit code 130.
    for _ in range(3 if when == "announced" else 1):
        if when == "announced":
            demo = Demo(tmp, term_on="stops the demo", sig=sig)
        else:
            demo = Demo(tmp)
            wait_for(demo.up, timeout=60, what="the demo's pages")
            demo.process.send_signal(sig)
        assert demo.end() == code, demo.output
        assert "Demo stopped:" in demo.output
        assert demo.folders() == [], demo.output
