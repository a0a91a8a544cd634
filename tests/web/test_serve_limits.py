"""``longops serve`` as a real process under abuse, its memory read from /proc: a 100 MB
body is refused with 413 while it streams in (the server's peak RSS stays far below it),
and 40 concurrent wrong sign-ins are answered (400 or 429, never 5xx) without Argon2
taking the memory (64 MiB a hash, two at once by default). And ``--processes 2``: two
server processes on one port, a sign-in valid in both."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx
import pytest
from test_serve import CSRF, PASSWORD, free_port, serving

from longops import Longops
from longops.domain.security import PermissionSet

MIB = 1024 * 1024


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def server_pids(port: int) -> list[int]:
    """The pids holding the socket listening on ``port``, from /proc/net/tcp and fds."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if fd.readlink().name.removeprefix("socket:[").rstrip("]") in inodes:
                    found.add(int(proc.name))
        except OSError:
            continue
    assert found, f"nobody listens on {port}"
    return sorted(found)


def server_pid(port: int) -> int:
    """The one process serving ``port``."""
    [pid] = server_pids(port)
    return pid


def seed_alice(db_url: str) -> None:
    setup = Longops(db_url)
    setup.add_company("CRONUS")
    setup.security.add_user("alice", password=PASSWORD, grants=[("CRONUS", PermissionSet.USER)])
    setup.close()


def post_chunked(port: int, path: str, total: int) -> tuple[int, int]:
    """POST ``total`` bytes chunked over a raw socket, as fast as the server takes them;
    returns the status the server answered and how many bytes it took first."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    sock.sendall(head.encode())
    chunk = b"%x\r\n" % MIB + b" " * MIB + b"\r\n"
    sent = 0
    try:
        while sent < total:
            sock.sendall(chunk)
            sent += MIB
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server stopped reading after its answer
    answer = b""
    try:
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    return int(answer.split()[1]), sent


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_100_mb_body_is_refused_while_streaming_and_memory_stays_flat(db_url: str) -> None:
    port = free_port()
    with serving(db_url, port):
        pid = server_pid(port)
        before = peak_rss(pid)
        status, sent = post_chunked(port, "/v1/companies/CRONUS/tasks/demo.clean_up:enqueue",
                                    100 * 1000 * 1000)  # fmt: skip
        after = peak_rss(pid)
    assert status == 413
    assert sent < 100 * 1000 * 1000, "the server stopped taking the body"
    assert after < 300 * MIB, f"peak RSS {after / MIB:.0f} MiB"
    assert after - before < 30 * MIB, f"RSS grew {(after - before) / MIB:.0f} MiB"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_40_concurrent_wrong_sign_ins_keep_memory_bounded(db_url: str) -> None:
    seed_alice(db_url)
    port = free_port()
    codes: list[int] = []
    with serving(db_url, port) as base:
        pid = server_pid(port)

        def guess(i: int) -> None:
            with httpx.Client(base_url=base, timeout=120) as http:
                token = CSRF.search(http.get("/login").text)
                assert token is not None
                form = {"csrf_token": token.group(1), "username": f"user{i}", "password": "x"}
                answer = http.post("/login", data=form)
                codes.append(answer.status_code)

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        peak = peak_rss(pid)
    assert len(codes) == 40
    assert set(codes) <= {400, 429}, codes
    assert 400 in codes, "some were checked"
    assert peak < 300 * MIB, f"peak RSS {peak / MIB:.0f} MiB"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_two_server_processes_share_one_port_and_the_sign_ins(db_url: str) -> None:
    seed_alice(db_url)
    port = free_port()
    with serving(db_url, port, key=None, extra=["--processes", "2"]) as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            token = CSRF.search(http.get("/login").text)
            assert token is not None
            form = {"csrf_token": token.group(1), "username": "alice", "password": PASSWORD}
            assert http.post("/login", data=form).status_code == 303
            # New connections are spread over both processes; each knows the sign-in.
            for _ in range(20):
                with httpx.Client(base_url=base, cookies=dict(http.cookies)) as fresh:
                    assert fresh.get("/c/CRONUS/").status_code == 200
        assert len(server_pids(port)) == 3, "a supervisor and two server processes"
