"""``longops serve`` and ``longops demo`` say where they serve only once they accept
connections: a supervisor (or a test, or a user's curl) that reads the line can connect at
once, with no retry loop. ``--processes 2`` used to announce itself some 10 s before its
server processes had started (connections were refused meanwhile); now it announces once
every one of them listens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_serve import APP, KEY, free_port
from test_serve_processes import established_per_process

from longops.cli import serve

pytestmark = pytest.mark.timeout(180)


def get_at_once(port: int, count: int) -> list[socket.socket]:
    """``count`` new connections made now (no retry: a refusal fails the test), each with
    one request answered 200; kept open, to see which processes accepted them."""
    made = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            made.append(sock)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for sock in made:
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    except BaseException:
        for sock in made:
            sock.close()
        raise
    return made


def announced(cmd: list[str], line: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """``cmd`` started, once it has printed ``line`` (on stderr or stdout)."""
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    seen = ""
    for text in proc.stdout:  # until it announces itself (or ends: EOF)
        seen += text
        if line in text:
            return proc
    proc.wait(timeout=60)
    raise AssertionError(f"no {line!r} (exit code {proc.returncode}): {seen}")


def stopped(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    return proc.returncode


@pytest.mark.parametrize("processes", [1, 2])
def test_serve_accepts_connections_as_soon_as_it_announces_itself(
    db_url: str, processes: int
) -> None:
    if processes > 1 and not serve.spreads_connections():
        pytest.skip("SO_REUSEPORT spreads connections on Linux only")
    env = dict(os.environ, LONGOPS_SECRET_KEY=KEY)
    port = free_port()
    cmd = [sys.executable, "-m", "longops.cli.main", "--app", APP, "--database-url", db_url,
           "serve", "--port", str(port), "--workers", "4", "--processes", str(processes),
           "--log-level", "warning"]  # fmt: skip
    proc = announced(cmd, "longops on http://", env)
    try:
        made = get_at_once(port, 16)
        try:
            # 16 connections hashed over the processes' sockets: each process took some.
            assert len(established_per_process(port)) == processes
        finally:
            for sock in made:
                sock.close()
    finally:
        assert stopped(proc) == 0


def test_the_demo_accepts_connections_as_soon_as_it_prints_its_sign_ins(tmp_path: Path) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop("LONGOPS_DATABASE_URL", None)
    port = free_port()
    cmd = [sys.executable, "-m", "longops.cli.main", "demo", "--port", str(port), "--for", "120"]
    proc = announced(cmd, "Open http://", env)
    try:
        for sock in get_at_once(port, 4):
            sock.close()
    finally:
        assert stopped(proc) == 0
