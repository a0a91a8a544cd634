"""Getting a PostgreSQL server for the tests.

Order of preference: ``LONGOPS_TEST_PG_URL``; the server on 127.0.0.1:5432; a throwaway
cluster made with ``initdb`` in a temporary folder (when PostgreSQL is installed but not
running). With ``CI=true`` a test that needs PostgreSQL fails rather than skips when none
can be had.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/root"


def reachable(url: str, timeout: int = 3) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=timeout):
            return True
    except psycopg.Error:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RestartTimes:
    asked: float
    down: float
    back: float


@dataclass
class ThrowawayCluster:
    """A PostgreSQL cluster of our own (``initdb`` in a temporary folder, its own port): the
    only kind a test may restart or break."""

    folder: str
    bindir: str
    url: str
    as_user: list[str]

    @property
    def data(self) -> str:
        return f"{self.folder}/data"

    def url_for(self, database: str) -> str:
        """The URL of one database on this cluster."""
        return f"{self.url.rpartition('/')[0]}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def restart(self, mode: str = "fast", timeout: float = 60) -> RestartTimes:
        """``pg_ctl restart -m MODE``; returns once the server accepts connections again.

        The times are wall-clock (``time.time()``), comparable with the timestamps the
        workers write: when the restart was asked for, when a connection was first refused,
        and when one was first accepted again (polled every 10 ms while ``pg_ctl`` runs, so
        "back" is when clients could connect, not when ``pg_ctl`` returned).
        """
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"mode must be smart, fast or immediate, not {mode!r}")
        asked = time.time()
        ctl = subprocess.Popen(
            [*self.as_user, f"{self.bindir}/pg_ctl", "-D", self.data, "-m", mode, "-w",
             "-t", str(int(timeout)), "-l", f"{self.folder}/log", "restart"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        down: float | None = None
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                finished = ctl.poll()
                if finished not in (None, 0):
                    raise RuntimeError(f"pg_ctl restart failed (exit {finished}); see the log")
                if reachable(self.url, timeout=1):
                    # (A restart too quick to catch a refusal counts as down from the ask.)
                    if down is not None or finished == 0:
                        return RestartTimes(asked, down or asked, time.time())
                elif down is None:
                    down = time.time()
                time.sleep(0.01)
            raise RuntimeError(f"the cluster was not back within {timeout} s")
        finally:
            ctl.wait(timeout=timeout)

    def terminate_backends(self, database: str) -> int:
        """``pg_terminate_backend`` every other connection to ``database``; how many."""
        with psycopg.connect(self.url_for(database), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        return int(row[0]) if row else 0

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, f"{self.bindir}/pg_ctl", "-D", f"{self.folder}/data", "-m", "immediate",
             "stop"],
            capture_output=True,
            check=False,
        )  # fmt: skip
        shutil.rmtree(self.folder, ignore_errors=True)


def start_throwaway() -> ThrowawayCluster | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or (
        [shutil.which("initdb")] if shutil.which("initdb") else []
    )
    if not found or not found[-1]:
        return None
    bindir = os.path.dirname(found[-1])
    folder = tempfile.mkdtemp(prefix="longops-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the cluster as the postgres system user.
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data = f"{folder}/data"
    subprocess.run(
        [*as_user, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "root", "--no-sync"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*as_user, f"{bindir}/pg_ctl", "-D", data, "-w", "-l", f"{folder}/log", "-o",
         f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    url = f"postgresql://root@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while not reachable(url):
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)
    return ThrowawayCluster(folder, bindir, url, as_user)


@contextmanager
def throwaway_cluster() -> Iterator[ThrowawayCluster]:
    """A throwaway cluster for the block (skips the test when PostgreSQL is not installed,
    fails instead with ``CI=true``); stopped and removed afterwards."""
    cluster = start_throwaway()
    if cluster is None:
        message = "PostgreSQL is not installed here (no initdb): no throwaway cluster"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield cluster
    finally:
        cluster.stop()
