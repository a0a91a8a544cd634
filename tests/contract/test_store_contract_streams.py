"""Store contract, live streams: what the event hub asks of a store to tell a missing id
that may still commit from one that never will (``writers_snapshot`` / ``writers_done``).

Every test takes the ``store`` fixture and so runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import psycopg
import pytest

from longops.store.base import Store
from procs import wait_for


def test_writers_done_once_the_writers_of_the_snapshot_have_ended(
    store: Store, db_url: str
) -> None:
    if store.dialect == "sqlite":
        # One writer at a time: an id below a visible one never commits later.
        assert store.writers_snapshot() is None
        return
    with psycopg.connect(db_url) as writer:
        writer.execute("SELECT pg_current_xact_id()")  # a transaction id, held open
        token = store.writers_snapshot()
        assert token is not None
        assert store.writers_done(token) is False
        writer.rollback()
    # Transaction ids are cluster-wide: other work on the server may still be running.
    wait_for(lambda: store.writers_done(token), timeout=60, what="the snapshot's writers end")


def test_a_writer_in_another_database_is_not_waited_for(
    store: Store, request: pytest.FixtureRequest
) -> None:
    if store.dialect == "sqlite":
        assert store.writers_done("anything") is True
        return
    with psycopg.connect(request.getfixturevalue("pg_admin_url")) as elsewhere:
        elsewhere.execute("SELECT pg_current_xact_id()")
        token = store.writers_snapshot()
        assert token is not None
        wait_for(lambda: store.writers_done(token), timeout=60, what="this database's writers")
