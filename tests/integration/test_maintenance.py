"""Maintenance mode through core, the claim, ``longops db upgrade`` and the command line,
on both databases (the Must-show with real worker processes is in tests/stress)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from cli_inprocess import run_longops
from longops import Longops
from longops.domain.errors import ConfigurationError, Conflict, PermissionDenied, ValidationError
from longops.domain.security import PermissionSet
from longops.domain.status import Status
from longops.domain.waiting import WaitCode
from longops.store._sql import admin as sql_admin
from longops.store.migrate import Migration, load_migrations
from longops.testing import Runner


@pytest.fixture
def app(db_url: str) -> Iterator[Longops]:
    application = Longops(db_url)
    application.task(name="t")(lambda: None)
    yield application
    application.close()


def _sql_exec(db_url: str, sql: str) -> None:
    if db_url.startswith("postgresql"):
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql)
    else:
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            conn.execute(sql)
        finally:
            conn.close()


def test_start_stop_audited_and_refused_twice(app: Longops) -> None:
    assert app.maintenance.status().active is False
    mode = app.maintenance.start(reason="  upgrade to 2.0 ", drain_timeout=5)
    assert mode.active
    assert mode.reason == "upgrade to 2.0"
    assert mode.drain_timeout.total_seconds() == 5
    assert mode.drain_deadline == mode.started_at + mode.drain_timeout  # type: ignore[operator]
    with pytest.raises(Conflict, match="already on") as refused:
        app.maintenance.start(reason="again")
    assert refused.value.code == "MaintenanceActive"
    assert app.maintenance.status().reason == "upgrade to 2.0"
    stopped = app.maintenance.stop()
    assert stopped.active is False
    assert stopped.stopped_at is not None
    assert app.maintenance.stop().active is False  # stopping it again changes nothing
    actions = [a.action for a in app.security.list_audit()]
    assert actions.count("start_maintenance") == 1
    assert actions.count("stop_maintenance") == 1


def test_only_super_sets_it_and_anyone_reads_it(app: Longops) -> None:
    app.add_company("A")
    app.security.add_user("admin", grants=[("A", PermissionSet.ADMIN)])
    app.security.add_user("viewer", grants=[("A", PermissionSet.VIEW)])
    for name in ("admin", "viewer"):
        view = app.as_user(name)
        with pytest.raises(PermissionDenied):
            view.maintenance.start(reason="no")
        with pytest.raises(PermissionDenied):
            view.maintenance.stop()
        assert view.maintenance.status().active is False
    app.maintenance.start(reason="yes")
    assert app.as_user("viewer").maintenance.status().reason == "yes"


@pytest.mark.parametrize(
    ("given", "field"),
    [({"drain_timeout": -1}, "drain_timeout"), ({"reason": "x" * 501}, "reason")],
)
def test_bad_input_names_the_field(app: Longops, given: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        app.maintenance.start(**given)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert app.maintenance.status().active is False


def test_the_claim_refuses_and_new_operations_wait_for_it(app: Longops) -> None:
    waiting = app.enqueue("t")
    app.maintenance.start(reason="contract 0014", drain_timeout=0)
    made = app.enqueue("t")  # enqueueing goes on
    runner = Runner(app)
    try:
        # The claim itself takes nothing (a worker that has not read the mode yet).
        assert runner.run_once(limit=10) == 0
        ops = [app.service.get(waiting.id), app.service.get(made.id)]
        assert all(op.status is Status.READY for op in ops)
        reasons = app.service.wait_reasons(ops)
        for op in ops:
            assert reasons[op.id].code is WaitCode.MAINTENANCE
            assert "contract 0014" in reasons[op.id].message
        app.maintenance.stop()
        assert runner.run_once(limit=10) == 2
    finally:
        runner.close()
    assert app.service.get(made.id).status is Status.FINISHED


# -- longops db upgrade -------------------------------------------------------------------------


def test_existing_migrations_keep_their_checksums_and_0013_is_online() -> None:
    for dialect in ("sqlite", "postgres"):
        found = {m.version: m for m in load_migrations(dialect)}
        assert found[13].online
        assert not found[11].online


def test_upgrade_refuses_an_offline_migration_outside_maintenance(
    app: Longops, db_url: str
) -> None:
    app.migrate()
    # 0011 (not marked online) pending again, on a database that has maintenance mode.
    _sql_exec(db_url, "DELETE FROM longops_migrations WHERE version = 11")
    with pytest.raises(ConfigurationError) as refused:
        app.schema.migrate()
    message = str(refused.value)
    assert "0011_status_reason" in message
    assert "longops maintenance start" in message
    assert "longops db upgrade" in message


def test_upgrade_applies_an_offline_migration_in_maintenance(
    app: Longops, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = load_migrations

    def with_contract(dialect: str) -> list[Migration]:
        extra = Migration(
            len(real(dialect)) + 1, "contract_test", "CREATE TABLE contract_t (x integer);"
        )
        return [*real(dialect), extra]

    monkeypatch.setattr(sql_admin, "load_migrations", with_contract)
    with pytest.raises(ConfigurationError, match="contract_test"):
        app.schema.migrate()
    app.maintenance.start(reason="contract")
    assert app.schema.migrate() == [
        f"{len(load_migrations(app.store.dialect)) + 1:04d}_contract_test"
    ]  # type: ignore[attr-defined]


def test_a_fresh_database_upgrades_outside_maintenance(tmp_path: object) -> None:
    fresh = Longops(f"sqlite:///{tmp_path}/fresh.db")
    try:
        applied = fresh.migrate()
    finally:
        fresh.close()
    newest = load_migrations("sqlite")[-1]  # every migration, the newest last
    assert applied[-1] == f"{newest.version:04d}_{newest.name}"
    assert len(applied) == len(load_migrations("sqlite"))


# -- the command line -------------------------------------------------------------------------


def longops(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    """The command in this process: these tests are about what it prints and its exit code."""
    return run_longops(["--database-url", db, *args])


def test_cli_start_status_stop(app: Longops, db_url: str) -> None:
    app.add_company("A")
    app.security.add_user("admin", grants=[("A", PermissionSet.ADMIN)])
    started = longops(
        "maintenance", "start", "--reason", "upgrade", "--drain-timeout", "30", db=db_url
    )
    assert started.returncode == 0, started.stderr
    assert "maintenance mode: on" in started.stdout
    assert "(upgrade)" in started.stdout
    status = json.loads(longops("maintenance", "status", "--json", db=db_url).stdout)
    assert status["active"] is True
    assert status["reason"] == "upgrade"
    assert status["drain_timeout"] == 30
    viewer = longops("--as", "admin", "maintenance", "status", db=db_url)
    assert viewer.returncode == 0
    assert "on" in viewer.stdout
    twice = longops("maintenance", "start", db=db_url)
    assert twice.returncode == 1
    assert "already on" in twice.stderr
    refused = longops("--as", "admin", "maintenance", "stop", db=db_url)
    assert refused.returncode == 1
    assert "may not" in refused.stderr
    assert app.maintenance.status().active
    stopped = longops("maintenance", "stop", db=db_url)
    assert stopped.returncode == 0
    assert "maintenance mode: off" in stopped.stdout


def test_cli_bad_drain_timeout_names_the_field(db_url: str) -> None:
    bad = longops("maintenance", "start", "--drain-timeout", "-5", db=db_url)
    assert bad.returncode == 2
    assert "drain_timeout" in bad.stderr
    assert "must be 0 or more seconds" in bad.stderr
    not_a_number = longops("maintenance", "start", "--drain-timeout", "soon", db=db_url)
    assert not_a_number.returncode == 2
    assert "--drain-timeout" in not_a_number.stderr


def test_cli_upgrade_refusal_names_the_migration_and_the_command(app: Longops, db_url: str) -> None:
    app.migrate()
    _sql_exec(db_url, "DELETE FROM longops_migrations WHERE version = 11")
    refused = longops("db", "upgrade", db=db_url)
    assert refused.returncode == 1
    assert "0011_status_reason" in refused.stderr
    assert "longops maintenance start" in refused.stderr
