from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent))

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


def _fresh_pg(admin: str, template: str | None) -> Iterator[str]:
    name = f"longops_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        tpl = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{tpl}')
    yield _with_db(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    yield from _fresh_pg(pg_admin_url, pg_template)


@pytest.fixture
def empty_pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database with no schema."""
    yield from _fresh_pg(pg_admin_url, None)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of each dialect."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'longops.db'}"
        store = open_store(url)
        store.migrate()
        store.close()
        yield url
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
