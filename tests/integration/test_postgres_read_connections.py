"""PostgreSQL reads run in autocommit on a pooled connection that stays in autocommit
in the pool (``PostgresStore._autocommit``, one cursor per connection for them): a
transaction that gets such a connection is a transaction all the same, and a broken one
is replaced as before."""

from __future__ import annotations

import contextlib

import psycopg
import pytest

from longops.domain.errors import LongopsError
from longops.store.base import StoreOptions
from longops.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres
INSERT = "INSERT INTO longops_companies (name, display_name) VALUES (%s, %s)"


def names(store: PostgresStore) -> list[str]:
    return sorted(c.name for c in store.list_companies() if c.name != "default")


def test_a_transaction_after_reads_on_the_same_connection_still_rolls_back(pg_url: str) -> None:
    store = PostgresStore(pg_url, options=StoreOptions(pool_size=1))  # one connection
    try:
        assert names(store) == []  # a read: the connection is left in autocommit

        def failing() -> None:
            with store._tx() as cur:
                cur.execute(INSERT, ("LOST", "Lost"))
                raise RuntimeError("the transaction fails after its write")

        with pytest.raises(RuntimeError):
            failing()
        assert names(store) == [], "rolled back, not autocommitted"
        with store._tx() as cur:
            cur.execute(INSERT, ("KEPT", "Kept"))
        assert names(store) == ["KEPT"]
        assert names(store) == ["KEPT"], "the kept cursor reads anew"
    finally:
        store.close()


def test_a_read_on_a_terminated_backend_fails_once_then_the_pool_has_fresh_ones(
    pg_url: str,
) -> None:
    store = PostgresStore(pg_url, options=StoreOptions(pool_size=2))
    try:
        assert names(store) == []
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        # The dead connection's read may fail; the pool drops the others with it.
        with contextlib.suppress(psycopg.OperationalError, LongopsError):
            names(store)
        assert names(store) == []
        assert names(store) == []
    finally:
        store.close()
