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
from dataclasses import dataclass

import psycopg

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/root"


def reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ThrowawayCluster:
    folder: str
    bindir: str
    url: str
    as_user: list[str]

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
