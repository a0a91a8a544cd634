"""Store contract, part 4: migrations, and the CHECK constraints the database itself enforces.

Every test takes the ``store`` fixture and so runs on SQLite and on PostgreSQL; the migration
tests open a second, empty database of the same dialect.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from contract_support import insert

from longops.domain.clock import FrozenClock
from longops.domain.errors import ConfigurationError
from longops.domain.operation import Company
from longops.domain.status import Status
from longops.store.base import Store, open_store
from longops.store.migrate import MigrationState

# -- migrations ------------------------------------------------------------------------------


@pytest.fixture
def fresh(store: Store, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store of the same dialect as ``store`` on a database without any schema."""
    if store.dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        url = request.getfixturevalue("empty_pg_url")
    s = open_store(url)
    yield s
    s.close()


def test_migrate_fresh_database(store: Store, fresh: Store) -> None:
    assert fresh.dialect == store.dialect
    assert fresh.migration_status() == [
        MigrationState(1, "initial", "pending"),
        MigrationState(2, "security", "pending"),
    ]
    assert fresh.schema_is_current() is False
    assert fresh.migrate() == ["0001_initial", "0002_security"]
    assert fresh.migrate() == []
    assert fresh.migration_status() == [
        MigrationState(1, "initial", "applied"),
        MigrationState(2, "security", "applied"),
    ]
    assert fresh.schema_is_current() is True
    assert fresh.list_companies() == [Company("default", "Default", "UTC", True, None)]
    assert fresh.get_company("default") == Company("default", "Default", "UTC", True, None)
    assert fresh.get_company("nope") is None


def test_the_store_fixture_is_current(store: Store) -> None:
    assert store.migrate() == []
    assert store.schema_is_current() is True
    assert [s.state for s in store.migration_status()] == ["applied", "applied"]


def test_tampered_checksum_is_refused(store: Store, fresh: Store) -> None:
    assert fresh.migrate() == ["0001_initial", "0002_security"]
    with fresh._tx() as cur:  # type: ignore[attr-defined]
        cur.execute("UPDATE longops_migrations SET checksum = 'x' WHERE version = 1")
    tampered = [
        MigrationState(1, "initial", "checksum mismatch"),
        MigrationState(2, "security", "applied"),
    ]
    assert fresh.migration_status() == tampered
    assert fresh.schema_is_current() is False
    with pytest.raises(ConfigurationError, match="0001_initial \\(checksum mismatch\\)"):
        fresh.migrate()
    assert fresh.migration_status() == tampered


def test_unknown_recorded_migration_is_refused(store: Store, fresh: Store) -> None:
    assert fresh.migrate() == ["0001_initial", "0002_security"]
    with fresh._tx() as cur:  # type: ignore[attr-defined]
        cur.execute(
            "INSERT INTO longops_migrations (version, name, checksum) VALUES (99, 'future', 'c')"
        )
    assert fresh.migration_status() == [
        MigrationState(1, "initial", "applied"),
        MigrationState(2, "security", "applied"),
        MigrationState(99, "future", "unknown"),
    ]
    assert fresh.schema_is_current() is False
    with pytest.raises(ConfigurationError, match="0099_future \\(unknown\\)"):
        fresh.migrate()


def test_migration_sql(store: Store) -> None:
    sql = store.migration_sql()
    assert "CREATE TABLE longops_operations" in sql
    assert "CREATE TABLE IF NOT EXISTS longops_migrations" in sql
    assert "INSERT INTO longops_migrations (version, name, checksum) VALUES (1, 'initial', '" in sql


# -- CHECK constraints -----------------------------------------------------------------------


def _violation(store: Store) -> type[Exception]:
    return sqlite3.IntegrityError if store.dialect == "sqlite" else psycopg.errors.CheckViolation


@pytest.mark.parametrize(
    ("assignment", "constraint"),
    [
        ("status = 'bogus'", "operation_status"),
        ("status = 'in_process'", "operation_lease"),
        (
            "lease_token = '00000000-0000-0000-0000-000000000001', "
            "session_id = '00000000-0000-0000-0000-000000000002'",
            "operation_lease",
        ),
        ("status = 'finished'", "operation_ended"),
        ("priority = 5", "operation_priority"),
        ("max_attempts = 0", "operation_max_attempts"),
        ("attempt_count = -1", "operation_attempt_count"),
        ("rerun_delay = 3601", "operation_rerun_delay"),
    ],
)
def test_operation_checks_hold_in_the_database(
    store: Store, clock: FrozenClock, assignment: str, constraint: str
) -> None:
    op = insert(store, clock)
    with (
        pytest.raises(_violation(store), match=constraint),
        store._tx() as cur,  # type: ignore[attr-defined]
    ):
        cur.execute(f"UPDATE longops_operations SET {assignment} WHERE entry_no = {op.entry_no}")
    after = store.get_operation(op.id)
    assert after == op
    assert after is not None
    assert after.status is Status.READY


def test_session_and_category_checks_hold_in_the_database(store: Store) -> None:
    with (
        pytest.raises(_violation(store), match="category_max_concurrent"),
        store._tx() as cur,  # type: ignore[attr-defined]
    ):
        cur.execute(
            "INSERT INTO longops_categories (company, code, max_concurrent) "
            "VALUES ('default', 'X', 0)"
        )
    assert store.get_category("default", "X") is None
    with (
        pytest.raises(_violation(store), match="session_state"),
        store._tx() as cur,  # type: ignore[attr-defined]
    ):
        cur.execute(
            "INSERT INTO longops_sessions (id, host, pid, queues, concurrency, state, "
            "started_at, last_heartbeat_at) VALUES ('00000000-0000-0000-0000-000000000003', "
            "'h', 1, '{}', 1, 'zombie', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
    assert store.list_sessions() == []
