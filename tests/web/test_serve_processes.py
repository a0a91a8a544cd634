"""``longops serve --processes N`` gives each server process a listening socket of its own
(``SO_REUSEPORT``), so the kernel spreads the connections of many clients that connect at
once over the processes (with one shared socket, whichever process was accepting took
them: 48 of 50 were seen on one). A process that dies is replaced on its socket: the
connections hashed to it are served again, none refused. The port stays exclusive: a
second server on it is refused."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest
from test_serve import free_port, serving
from test_serve_limits import server_pids

from longops.cli import serve
from procs import wait_for

pytestmark = pytest.mark.skipif(
    not serve.spreads_connections(), reason="SO_REUSEPORT spreads connections on Linux only"
)


def test_the_sockets_share_one_port_and_the_port_stays_exclusive() -> None:
    sockets = serve.listening_sockets("127.0.0.1", 0, 3)
    try:
        ports = {s.getsockname()[1] for s in sockets}
        assert len(ports) == 1, "port 0: one free port for all of them"
        for sock in sockets:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        sockets[0].listen()
        # Another server on the port (even one that asks for SO_REUSEPORT) is refused.
        with pytest.raises(SystemExit) as refused:
            serve.listening_sockets("127.0.0.1", ports.pop(), 2)
        assert refused.value.code == 3
    finally:
        for sock in sockets:
            sock.close()


def established_per_process(port: int) -> Counter[str]:
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Counter(re.findall(r"pid=(\d+)", out))


def connected(port: int, count: int) -> list[socket.socket]:
    """``count`` connections opened at once, each answered once (so each was accepted)."""
    made = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]
    for sock in made:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    for sock in made:
        assert sock.recv(4096).startswith(b"HTTP/1.1 200"), "every connection is served"
    return made


def both_accepting(port: int) -> bool:
    """True once each server process has accepted one of a burst of connections: under
    load a process exists (and holds its socket) a while before its loop accepts, and
    connections hashed to it wait in its queue meanwhile."""
    made = connected(port, 16)
    try:
        return len(established_per_process(port)) == 2
    finally:
        for sock in made:
            sock.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_connections_that_arrive_together_are_spread_and_a_dead_process_is_replaced(
    db_url: str,
) -> None:
    port = free_port()
    with serving(db_url, port, key=None, extra=["--processes", "2"]):
        # A supervisor and two server processes, each listening (the first may answer
        # before the second has started).
        wait_for(lambda: len(server_pids(port)) == 3, timeout=60, what="both processes")
        wait_for(lambda: both_accepting(port), timeout=60, what="both processes accepting")
        made = connected(port, 40)
        try:
            split = established_per_process(port)
            assert len(split) == 2, split
            # By the kernel's hash, 40 connections split 20/20 give or take a few; with
            # one shared socket, one process took nearly all (48/2 of 50).
            assert min(split.values()) >= 8, split
        finally:
            for sock in made:
                sock.close()
        victim = int(next(iter(split)))
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: victim not in server_pids(port) and len(server_pids(port)) == 3,
            timeout=60,
            interval=0.2,
            what="a replacement on the dead process's socket",
        )
        wait_for(lambda: both_accepting(port), timeout=60, what="the replacement accepting")
        # Connections hashed to the replacement's socket are served too (none refused).
        began = time.monotonic()
        made = connected(port, 40)
        try:
            split = established_per_process(port)
            assert len(split) == 2, split
            assert min(split.values()) >= 8, split
            assert str(victim) not in split
        finally:
            for sock in made:
                sock.close()
        assert time.monotonic() - began < 30


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_second_server_on_the_port_is_refused(db_url: str) -> None:
    port = free_port()
    with serving(db_url, port, key=None, extra=["--processes", "2"]) as base:
        second = subprocess.run(
            [sys.executable, "-m", "longops.cli.main", "--database-url", db_url, "serve",
             "--port", str(port), "--processes", "2", "--log-level", "warning"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert second.returncode == 3, second.stderr
        assert "Address already in use" in second.stderr
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
