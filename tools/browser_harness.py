"""What the browser tests (``tests/browser/browser_support.py``) and the screenshot tool
(``tools/screenshots.py``) share, written once: Debian's Chromium and its flags, a free port,
a longops process (``serve`` or ``demo``) started on it and waited for, and stopped.

Example::

    port = free_port()
    process = start(["longops", "serve", "--port", str(port)], env, out)
    wait_for(lambda: answers(f"http://127.0.0.1:{port}", "/healthz"), timeout=60, what="serve")
    ...
    stop(process)
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import IO, Any, TypeVar

import httpx

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium (``apt-get install chromium``); Playwright's own download is never used."""
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.25
) -> T:
    """``check()``'s first truthy answer, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def start(
    cmd: list[str], env: Mapping[str, str], out: IO[Any] | int, **popen: Any
) -> subprocess.Popen[Any]:
    """A longops process (``cmd``) with its output to ``out``."""
    return subprocess.Popen(cmd, env=dict(env), stdout=out, stderr=subprocess.STDOUT, **popen)


def answers(base_url: str, *paths: str) -> str | None:
    """None when every path answers 200, else what did not (for a deadline's message)."""
    try:
        for path in paths:
            status = httpx.get(base_url + path, timeout=2).status_code
            if status != 200:
                return f"{path} answered {status}"
    except httpx.HTTPError as exc:
        return repr(exc)
    return None


def stop(process: subprocess.Popen[Any]) -> None:
    """Terminate the process (kill it after 30 s) and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
