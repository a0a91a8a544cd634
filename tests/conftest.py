from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from argon2 import PasswordHasher

sys.path.insert(0, str(Path(__file__).parent))

import longops.core.security
from longops import Longops
from longops.domain.clock import FrozenClock
from longops.store.base import Store, open_store
from longops.worker.session import Worker
from pg import DEFAULT_URL, reachable, start_throwaway


def _with_db(url: str, db: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    url = os.environ.get("LONGOPS_TEST_PG_URL", DEFAULT_URL)
    if reachable(url):
        yield url
        return
    cluster = start_throwaway()
    if cluster is not None:
        yield cluster.url
        cluster.stop()
        return
    message = f"no PostgreSQL at {url} and none could be started with initdb"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """A migrated database that each test's database is copied from (fast)."""
    name = f"longops_tpl_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    store = open_store(_with_db(pg_admin_url, name))
    store.migrate()
    store.close()
    yield name
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class FreshDatabases:
    """New PostgreSQL databases (copies of ``template``, or empty), made ahead of the tests
    that take them and dropped after them, by threads of this process.

    A test still gets a database no other test has touched, but waits neither for its
    ``CREATE DATABASE`` (the whole copy, 9 MB, written to the WAL and flushed: 0.2 s quiet)
    nor for its ``DROP DATABASE``, which waits for a checkpoint of the whole server (0.3 s
    quiet, seconds when the server is busy); ~650 tests of ``./dev test`` take one. Drops
    run several at a time, so that one checkpoint serves them all. ``close()`` drops what
    is left."""

    DROPS_AT_ONCE = 4

    def __init__(
        self, admin: str, template: str | None, *, ahead: int = 2, prefix: str = "longops_t"
    ) -> None:
        self.admin = admin
        self.template = template
        self.ahead = ahead
        self.prefix = prefix
        self._ready: deque[str] = deque()
        self._to_drop: deque[str] = deque()
        self._waiting = 0  # tests waiting in take()
        self._failed: list[str] = []
        self._error: BaseException | None = None
        self._closing = False
        self._made_all = False  # closing, and the maker has stopped
        self._changed = threading.Condition()
        self._maker = threading.Thread(target=self._make, name="make-databases", daemon=True)
        self._dropper = threading.Thread(target=self._drop, name="drop-databases", daemon=True)
        self._maker.start()
        self._dropper.start()

    def url(self, name: str) -> str:
        return _with_db(self.admin, name)

    def take(self, timeout: float = 300) -> str:
        """The name of a fresh database (waits for one if none is ready)."""
        with self._changed:
            self._waiting += 1
            self._changed.notify_all()
            try:
                ok = self._changed.wait_for(lambda: self._ready or self._error, timeout)
                if self._error is not None:
                    error, self._error = self._error, None
                    self._changed.notify_all()
                    raise error
                assert ok, f"no fresh database within {timeout} s"
                return self._ready.popleft()
            finally:
                self._waiting -= 1

    def release(self, name: str) -> None:
        """Drop ``name`` (in the background; its connections are ended)."""
        with self._changed:
            self._to_drop.append(name)
            self._changed.notify_all()

    def close(self) -> None:
        """Drop every database made and not yet dropped; fail if a drop failed."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._maker.join()
        with self._changed:
            self._to_drop.extend(self._ready)
            self._ready.clear()
            self._made_all = True
            self._changed.notify_all()
        self._dropper.join()
        assert not self._failed, "databases not dropped:\n" + "\n".join(self._failed)

    def _make(self) -> None:
        with contextlib.ExitStack() as stack:
            conn: psycopg.Connection[Any] | None = None
            while True:
                with self._changed:
                    # (After a failed make, the next only when a test has seen the failure.)
                    self._changed.wait_for(
                        lambda: (
                            self._closing
                            or (
                                self._error is None
                                and len(self._ready) < self.ahead + self._waiting
                            )
                        )
                    )
                    if self._closing:
                        return
                name = f"{self.prefix}_{uuid.uuid4().hex[:12]}"
                tpl = f' TEMPLATE "{self.template}"' if self.template else ""
                try:
                    if conn is None or conn.closed:
                        conn = stack.enter_context(psycopg.connect(self.admin, autocommit=True))
                    conn.execute(f'CREATE DATABASE "{name}"{tpl}')
                except Exception as exc:  # the waiting test raises it
                    with self._changed:
                        self._error = exc
                        self._changed.notify_all()
                    continue
                with self._changed:
                    self._ready.append(name)
                    self._changed.notify_all()

    def _drop(self) -> None:
        def drop(name: str) -> None:
            try:
                with psycopg.connect(self.admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # reported by close()
                with self._changed:
                    self._failed.append(f"{name}: {exc}")

        with ThreadPoolExecutor(self.DROPS_AT_ONCE, thread_name_prefix="drop") as pool:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._to_drop or self._made_all)
                    if not self._to_drop:
                        return
                    batch = [self._to_drop.popleft() for _ in range(len(self._to_drop))]
                list(pool.map(drop, batch))


@pytest.fixture(scope="session")
def pg_databases(pg_admin_url: str, pg_template: str) -> Iterator[FreshDatabases]:
    """Fresh copies of the migrated template (``take()``, ``release(name)``), for fixtures of
    any scope."""
    made = FreshDatabases(pg_admin_url, pg_template)
    yield made
    made.close()


@pytest.fixture(scope="session")
def _empty_pg_databases(pg_admin_url: str) -> Iterator[FreshDatabases]:
    made = FreshDatabases(pg_admin_url, None, ahead=1)
    yield made
    made.close()


def _fresh_pg(databases: FreshDatabases) -> Iterator[str]:
    name = databases.take()
    try:
        yield databases.url(name)
    finally:
        databases.release(name)


@pytest.fixture
def pg_url(pg_databases: FreshDatabases) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    yield from _fresh_pg(pg_databases)


@pytest.fixture
def empty_pg_url(_empty_pg_databases: FreshDatabases) -> Iterator[str]:
    """A fresh PostgreSQL database with no schema."""
    yield from _fresh_pg(_empty_pg_databases)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test's database is copied from (a copy takes a
    millisecond, migrating a tenth of a second)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    store = open_store(f"sqlite:///{path}")
    store.migrate()
    store.close()
    assert not path.with_name("template.db-wal").exists(), "close() leaves no WAL to copy"
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of each dialect."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "longops.db")
        yield f"sqlite:///{tmp_path / 'longops.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


class QuickHasher(PasswordHasher):
    """Argon2id at its lowest cost. A hash or a check with the shipped parameters (64 MiB,
    3 passes, 4 lanes) costs 0.2 s of CPU, and the suite signs users up and in thousands of
    times: the tests' own processes hash with this one (what a hash is and how sign-in uses
    it do not change; the shipped parameters are tested in tests/unit/test_password_hashing.py).
    Processes the tests start (the CLI, ``longops serve``) hash as shipped."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**{"time_cost": 1, "memory_cost": 1024, "parallelism": 1, **params})


@pytest.fixture(scope="session", autouse=True)
def _quick_password_hashing() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(longops.core.security, "PasswordHasher", QuickHasher)
        yield


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_app(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails the test that closes an app while a worker on its store still runs: the
    worker's threads would go on using a closed store (once a segfault inside sqlite3).
    The worker is stopped first, so the failure is this test's, not a later one's."""
    started: list[Worker] = []
    real_start, real_close = Worker.start, Longops.close

    def start(worker: Worker) -> None:
        started.append(worker)
        real_start(worker)

    def close(app: Longops) -> None:
        store = app._store
        running = [w for w in started if not w.stopped and store is not None and _on(w, store)]
        for worker in running:
            worker.stop(grace=1)
        real_close(app)
        if running:
            pytest.fail(
                f"{request.node.nodeid}: the app was closed while {len(running)} worker(s) on "
                "its store still ran; stop each worker (worker.stop()) before app.close()"
            )

    monkeypatch.setattr(Worker, "start", start)
    monkeypatch.setattr(Longops, "close", close)


def _on(worker: Worker, store: Store) -> bool:
    """Whether ``worker`` uses ``store``, directly or through a wrapper (``_inner``)."""
    used: object = worker.store
    while used is not None:
        if used is store:
            return True
        used = getattr(used, "_inner", None)
    return False


# -- scheduling across xdist processes (./dev test: -n 4 --dist loadscope) --------------------
# loadscope sends a module's tests to one process, so module fixtures are made once. Changes
# to it, for a shorter wall time with the same tests:
# - a module whose tests name a dialect is two units, one per dialect: its module fixtures
#   are per dialect anyway, and the two halves of a large module (the HTTP authorization
#   matrix, schemathesis) can run at the same time;
# - each document of the README/docs snippet test is a unit of its own (no module fixture;
#   run one after the other they were the longest unit of the suite);
# - the browser modules are one unit, so one process starts Chromium and the pages' servers;
# - the heaviest unit goes first, so no long one starts last and runs alone. A unit weighs its
#   number of tests times a rough per-test cost in seconds: its module's if listed (measured
#   with benchmarks/suite_work.py, benchmarks/results/suite-speed.md), else its folder's.
FOLDER_COST = {
    # In-process calls, a few milliseconds each (412 cases in 4 s; 616 HTTP cases in 25 s).
    "tests/integration/test_authorization_matrix.py": 0.01,
    "tests/api/test_http_authorization.py": 0.05,
    # One document's snippets: CLI processes, a server, a worker (15-30 s).
    "tests/integration/test_doc_snippets.py::": 20.0,
    "tests/integration/test_doc_snippets.py": 0.1,
    # Real processes started and stopped (longops serve, the CLI, demo, child processes).
    "tests/web/test_serve": 12.0,
    "tests/e2e/test_client_e2e.py": 12.0,
    "tests/integration/test_status_machine.py": 10.0,
    "tests/integration/test_bench_scale.py": 10.0,
    "tests/web/test_demo_exit.py": 9.0,
    "tests/integration/test_apps_uninstall.py": 7.0,
    "tests/integration/test_cli_tracking.py": 6.0,
    "tests/web/test_setup_pages.py": 4.0,
    "tests/web/test_card_and_inbox.py": 4.0,
    "tests/web/test_hardening.py": 4.0,
    "tests/web/test_live.py": 4.0,
    "tests/integration/test_maintenance.py": 3.0,
    # Many quick in-process cases.
    "tests/integration/test_pages_core.py": 0.3,
    "tests/integration/test_company_isolation.py": 0.3,
    "tests/integration/test_engine.py": 0.3,
    "tests/integration/test_users_and_tokens.py": 0.3,
    "tests/stress": 20.0,
    # Mostly waiting out injected outages: 2-5 s a case (tests/fault/test_faults.py, LEASE).
    "tests/fault": 2.5,
    "tests/browser": 3.0,
    "tests/e2e": 3.0,
    "tests/telemetry": 2.0,
    "tests/web": 1.0,
    "tests/integration": 1.0,
    "tests/api": 0.3,
    "tests/contract": 0.3,
    "tests/unit": 0.02,
}
_DIALECT = re.compile(r"\[(?:.*\b)?(sqlite|postgres)\b")
_ONE_UNIT_EACH = ("tests/integration/test_doc_snippets.py",)
"""Modules whose parametrized tests are units of their own."""


def _scope_of(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    if module.startswith("tests/browser/"):
        return "tests/browser"
    if module in _ONE_UNIT_EACH and "[" in nodeid:
        return nodeid
    dialect = _DIALECT.search(nodeid)
    return f"{module}[{dialect.group(1)}]" if dialect else module


def _weight(scope: str, nodeids: dict[str, bool]) -> float:
    cost = next((c for prefix, c in FOLDER_COST.items() if scope.startswith(prefix)), 1.0)
    return len(nodeids) * cost


class _HeaviestFirst(OrderedDict[str, dict[str, bool]]):
    """The work queue of loadscope, handing out its heaviest unit first."""

    def popitem(self, last: bool = True) -> tuple[str, dict[str, bool]]:
        scope = max(self, key=lambda s: _weight(s, self[s]))
        return scope, self.pop(scope)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByModuleAndDialect(LoadScopeScheduling):  # type: ignore[misc]
        def __init__(self, config: pytest.Config, log: Any = None) -> None:
            super().__init__(config, log)
            self.workqueue = _HeaviestFirst()

        def _split_scope(self, nodeid: str) -> str:
            return _scope_of(nodeid)

    return ByModuleAndDialect(config, log)
