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
from longops.store.base import OperationQuery, Store, open_store
from longops.store.migrate import MigrationState, load_migrations

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


def _states(store: Store, state: str) -> list[MigrationState]:
    return [MigrationState(m.version, m.name, state) for m in load_migrations(store.dialect)]


def _names(store: Store) -> list[str]:
    return [f"{m.version:04d}_{m.name}" for m in load_migrations(store.dialect)]


def test_migrate_fresh_database(store: Store, fresh: Store) -> None:
    assert fresh.dialect == store.dialect
    assert len(_names(fresh)) >= 2
    assert fresh.migration_status() == _states(fresh, "pending")
    assert fresh.schema_is_current() is False
    assert fresh.migrate() == _names(fresh)
    assert fresh.migrate() == []
    assert fresh.migration_status() == _states(fresh, "applied")
    assert fresh.schema_is_current() is True
    assert fresh.list_companies() == [Company("default", "Default", "UTC", True, None)]
    assert fresh.get_company("default") == Company("default", "Default", "UTC", True, None)
    assert fresh.get_company("nope") is None


def test_the_store_fixture_is_current(store: Store) -> None:
    assert store.migrate() == []
    assert store.schema_is_current() is True
    assert {s.state for s in store.migration_status()} == {"applied"}


def test_tampered_checksum_is_refused(store: Store, fresh: Store) -> None:
    assert fresh.migrate() == _names(fresh)
    with fresh._tx() as cur:  # type: ignore[attr-defined]
        cur.execute("UPDATE longops_migrations SET checksum = 'x' WHERE version = 1")
    tampered = _states(fresh, "applied")
    tampered[0] = MigrationState(1, "initial", "checksum mismatch")
    assert fresh.migration_status() == tampered
    assert fresh.schema_is_current() is False
    with pytest.raises(ConfigurationError, match="0001_initial \\(checksum mismatch\\)"):
        fresh.migrate()
    assert fresh.migration_status() == tampered


def test_unknown_recorded_migration_is_refused(store: Store, fresh: Store) -> None:
    assert fresh.migrate() == _names(fresh)
    with fresh._tx() as cur:  # type: ignore[attr-defined]
        cur.execute(
            "INSERT INTO longops_migrations (version, name, checksum) VALUES (99, 'future', 'c')"
        )
    assert fresh.migration_status() == [
        *_states(fresh, "applied"),
        MigrationState(99, "future", "unknown"),
    ]
    assert fresh.schema_is_current() is False
    with pytest.raises(ConfigurationError, match="0099_future \\(unknown\\)"):
        fresh.migrate()


def test_upgrade_keeps_operations_made_under_the_first_schema(store: Store, fresh: Store) -> None:
    """A database created by 0001 alone, with work in it, upgrades to the latest schema."""
    [first, *later] = load_migrations(fresh.dialect)
    with fresh._tx() as cur:  # type: ignore[attr-defined]
        cur.execute(fresh.q["create_migrations_table"])  # type: ignore[attr-defined]
        fresh._apply_migration_script(cur, first.sql)  # type: ignore[attr-defined]
        cur.execute(
            fresh.q["record_migration"],  # type: ignore[attr-defined]
            {"version": first.version, "name": first.name, "checksum": first.checksum},
        )
    old = fresh.migration_status()
    assert [s.state for s in old] == ["applied"] + ["pending"] * len(later)
    clock = FrozenClock()
    with fresh._tx() as cur:  # type: ignore[attr-defined]
        # An operation as 0001 knew it: only the columns that schema had.
        cur.execute(
            "INSERT INTO longops_operations (id, company, task, args, queue, status, "
            "earliest_start_at, created_at, updated_at) VALUES "
            + (
                "('00000000000070008000000000000001', 'default', 'old', "
                "'{\"args\":[1],\"kwargs\":{}}', 'default', 'ready', "
                "'2026-01-05 09:00:00.000000', '2026-01-05 09:00:00.000000', "
                "'2026-01-05 09:00:00.000000')"
                if fresh.dialect == "sqlite"
                else "('00000000-0000-7000-8000-000000000001', 'default', 'old', "
                "'{\"args\":[1],\"kwargs\":{}}', 'default', 'ready', %(t)s, %(t)s, %(t)s)"
            ),
            {"t": clock.now()} if fresh.dialect == "postgres" else {},
        )
    assert fresh.migrate() == [f"{m.version:04d}_{m.name}" for m in later]
    [op] = fresh.list_operations(OperationQuery())
    assert (op.task, op.args, op.progress, op.stalled_at, op.checkpoint) == (
        "old",
        (1,),
        None,
        None,
        None,
    )
    assert op.stall_after.total_seconds() == 600


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
