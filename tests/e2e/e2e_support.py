"""End-to-end set-up: ``longops serve`` as a real subprocess on a fresh PostgreSQL database,
with a company, users and API tokens made through core before it starts.

The task app is tests/apps/tracking_app.py (``track.paced`` moves one item per go-ahead file
the test writes, so a test decides when each event happens).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from longops import Longops
from longops.domain.security import PermissionSet
from procs import APPS, wait_for

COMPANY = "CRONUS"
OTHER = "FABRIKAM"
READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), env.get("PYTHONPATH", "")])
    # The tests hold transactions open on purpose; on a loaded machine that may outlast the
    # default 5 s, after which the hub would rightly stop waiting for them.
    env["LONGOPS_STREAM_GAP_TIMEOUT"] = "60"
    return env


@dataclass
class Server:
    """One ``longops serve`` process; ``restart()`` starts a new one on the same port."""

    db_url: str
    port: int
    log_dir: Path
    workers: int = 0
    app: str = "tracking_app:app"
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = self.log_dir / f"serve-{self.starts}.log"
        self.logs.append(log)
        cmd = [
            sys.executable, "-m", "longops.cli.main", "--app", self.app,
            "--database-url", self.db_url, "serve", "--port", str(self.port),
            "--workers", str(self.workers), "--log-level", "warning",
        ]  # fmt: skip
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, env=app_env(), stdout=out, stderr=subprocess.STDOUT)
        wait_for(self._ready, timeout=READY_TIMEOUT, interval=0.1, what=f"{self.url}/readyz")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"longops serve exited {self.proc.returncode}: {self.log()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL: connections drop without a goodbye, as when a server crashes."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in self.logs if p.exists())


@dataclass
class Deployment:
    """A served database: its URL, the server, and tokens of a user of each kind."""

    db_url: str
    server: Server
    user_token: str
    """alice: JOBQUEUE-USER in CRONUS."""
    admin_token: str
    """bob: JOBQUEUE-ADMIN in CRONUS."""
    other_token: str
    """carol: JOBQUEUE-USER in FABRIKAM only."""
    folder: Path

    @property
    def url(self) -> str:
        return self.server.url


def set_up(db_url: str) -> tuple[str, str, str]:
    """Companies CRONUS and FABRIKAM, users alice, bob and carol, and a token each."""
    app = Longops(db_url)
    try:
        app.companies.add_company(COMPANY)
        app.companies.add_company(OTHER)
        sec = app.security
        sec.add_user("alice", grants=[(COMPANY, PermissionSet.USER)])
        sec.add_user("bob", grants=[(COMPANY, PermissionSet.ADMIN)])
        sec.add_user("carol", grants=[(OTHER, PermissionSet.USER)])
        return tuple(sec.create_token(name)[1] for name in ("alice", "bob", "carol"))  # type: ignore[return-value]
    finally:
        app.close()


def deploy(pg_url: str, tmp_path: Path, workers: int) -> Iterator[Deployment]:
    user, admin, other = set_up(pg_url)
    server = Server(pg_url, free_port(), tmp_path, workers=workers)
    server.start()
    try:
        yield Deployment(pg_url, server, user, admin, other, tmp_path)
    finally:
        code = server.stop()
        # A server that crashed on its own (not killed by the test) fails the test.
        assert code in (None, 0, -signal.SIGKILL), f"serve exited {code}: {server.log()}"
