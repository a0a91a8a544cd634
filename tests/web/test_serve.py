"""``longops serve`` as a real process: the pages and the API on one port, a sign-in that
outlives a restart when LONGOPS_SECRET_KEY is set, an operation enqueued from a page and
run by the embedded worker, and a clean exit on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx

from longops import Longops
from longops.domain.operation import SessionState
from longops.domain.security import PermissionSet
from procs import wait_for

APP = "longops.demo.app:app"
KEY = "a key for the session cookies, long enough"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a test password
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(
    db_url: str,
    port: int,
    key: str | None = KEY,
    extra: Sequence[str] = (),
    said: list[str] | None = None,
) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if k != "LONGOPS_SECRET_KEY"}
    if key is not None:
        env["LONGOPS_SECRET_KEY"] = key
    cmd = [sys.executable, "-m", "longops.cli.main", "--app", APP, "--database-url", db_url,
           "serve", "--port", str(port), "--workers", "1", "--log-level", "warning",
           *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1])
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, timeout=60, interval=0.1, what="longops serve to answer")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        if said is not None:
            said.append(out + err)


def test_serve_runs_the_pages_with_the_api_and_a_worker(db_url: str) -> None:
    setup = Longops(db_url)
    setup.add_company("CRONUS")
    setup.security.add_user("alice", password=PASSWORD, grants=[("CRONUS", PermissionSet.USER)])
    setup.close()
    port = free_port()
    with serving(db_url, port) as base, httpx.Client(base_url=base) as http:
        token = CSRF.search(http.get("/login").text)
        assert token is not None
        signed = http.post(
            "/login",
            data={"csrf_token": token.group(1), "username": "alice", "password": PASSWORD},
        )
        assert signed.status_code == 303
        form = http.get("/c/CRONUS/entries/new").text
        assert "demo.clean_up" in form, "the served app's tasks are offered"
        token = CSRF.search(form)
        assert token is not None
        made = http.post(
            "/c/CRONUS/entries/new",
            data={"csrf_token": token.group(1), "task": "demo.clean_up", "description": "Tidy"},
        )
        assert made.status_code == 303
        card = made.headers["location"]

        def finished() -> bool:
            return 'data-status="finished"' in http.get(card).text

        wait_for(finished, timeout=60, interval=0.2, what="the embedded worker to run it")
        assert http.get("/v1/companies/CRONUS/operations").status_code == 401, "API: a token"
        cookies = dict(http.cookies)
    with serving(db_url, port) as base, httpx.Client(base_url=base, cookies=cookies) as http:
        assert http.get("/c/CRONUS/entries").status_code == 200, "still signed in"
    with (
        serving(db_url, port, key=None) as base,
        httpx.Client(base_url=base, cookies=cookies) as http,
    ):
        moved = http.get("/c/CRONUS/entries")
        assert moved.status_code == 303, "a random key: sign-ins end with the process"


def test_serve_refuses_a_short_secret_key(db_url: str) -> None:
    env = dict(os.environ, LONGOPS_SECRET_KEY="short")  # noqa: S106 - a test key
    result = subprocess.run(
        [sys.executable, "-m", "longops.cli.main", "--database-url", db_url, "serve",
         "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "LONGOPS_SECRET_KEY" in result.stderr


def test_the_access_log_is_written_only_when_asked(db_url: str) -> None:
    """A line per request costs more than a request at a thousand a second: off by default,
    ``--access-log`` turns it on (uvicorn writes it at INFO, to stdout)."""
    logs: dict[bool, list[str]] = {}
    for asked in (False, True):
        extra = ["--log-level", "info", *(["--access-log"] if asked else [])]
        logs[asked] = []
        with serving(db_url, free_port(), extra=extra, said=logs[asked]) as base:
            assert httpx.get(f"{base}/v1/companies/A/operations", timeout=10).status_code == 401
    line = '"GET /v1/companies/A/operations HTTP/1.1" 401'
    assert line not in logs[False][0]
    assert "longops on http://" in logs[False][0]  # it did log, at INFO, but no requests
    assert line in logs[True][0]


def test_a_term_sent_the_moment_serve_announces_itself_stops_it_cleanly(db_url: str) -> None:
    # "longops on http://..." comes before uvicorn takes the signals over; a TERM sent on
    # that line used to meet Python's default handler (-15, the embedded worker's session
    # left active for the rescuer). Now the server stops as soon as it has started, and
    # the worker is drained.
    env = {k: v for k, v in os.environ.items() if k != "LONGOPS_SECRET_KEY"}
    env["LONGOPS_SECRET_KEY"] = KEY
    for attempt in range(3):
        cmd = [sys.executable, "-m", "longops.cli.main", "--app", APP, "--database-url", db_url,
               "serve", "--port", str(free_port()), "--workers", "1"]  # fmt: skip
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert proc.stderr is not None
        seen = ""
        try:
            for line in proc.stderr:  # until it announces itself (or ends: EOF)
                seen += line
                if "longops on http://" in line:
                    proc.send_signal(signal.SIGTERM)  # at once, as a supervisor may
                    break
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert "longops on http://" in seen, seen
        assert proc.returncode == 0, (attempt, proc.returncode, seen + err)
    app = Longops(db_url)
    try:
        states = [s.state for s in app.store.list_sessions()]
    finally:
        app.close()
    assert states, "the embedded worker started each time"
    assert set(states) == {SessionState.STOPPED}, states
