"""PostgreSQL row-level security, the second wall behind core's checks.

Superusers and roles with BYPASSRLS skip policies, so the test makes an ordinary
application role (NOSUPERUSER NOBYPASSRLS) that owns its database and tables (as a real
deployment's role usually does; FORCE ROW LEVEL SECURITY makes the policies hold for the
owner), migrates through it with row-level security on, and then reads by raw SQL through
that role.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from longops import EnqueueRequest, Longops
from longops.domain.security import PermissionSet
from longops.store.base import OperationQuery
from longops.store.migrate import load_migrations
from longops.testing import Runner

pytestmark = pytest.mark.postgres

COMPANY_TABLES = {
    "longops_companies": "name",
    "longops_categories": "company",
    "longops_operations": "company",
    "longops_attempts": "company",
    "longops_operation_events": "company",
    "longops_memberships": "company",
    "longops_audit_log": "company",
    "longops_notifications": "company",
}


@dataclass
class Deployment:
    url: str
    """The application role's URL (not a superuser)."""
    app: Longops


@pytest.fixture
def deployment(pg_admin_url: str) -> Iterator[Deployment]:
    suffix = uuid.uuid4().hex[:10]
    role, db = f"longops_app_{suffix}", f"longops_rls_{suffix}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS')
        conn.execute(f'CREATE DATABASE "{db}" OWNER "{role}"')
    base = pg_admin_url.rpartition("/")[0].replace("root@", f"{role}@")
    url = f"{base}/{db}"
    app = Longops(url, row_level_security=True)
    app.task(name="ok")(lambda: None)
    try:
        assert app.migrate() == [f"{m.version:04d}_{m.name}" for m in load_migrations("postgres")]
        for company in ("A", "B"):
            app.add_company(company)
            app.set_category("CAT", company=company)
            # One of them has a user, whose notification gives the table rows in each company.
            app.enqueue_many(
                [EnqueueRequest(task="ok", company=company, user=f"owner-{company}")]
                + [EnqueueRequest(task="ok", company=company)] * 2
            )
        Runner(app).run_until_idle()  # workers run unscoped: both companies' work is done
        app.security.add_user("alice", grants=[("A", PermissionSet.ADMIN)])
        app.security.add_user("bea", grants=[("B", PermissionSet.USER)])
        yield Deployment(url, app)
    finally:
        app.close()
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def _rows(url: str, scope: str | None, table: str, where: str = "") -> list[tuple[object, ...]]:
    column = COMPANY_TABLES[table]
    with psycopg.connect(url) as conn:
        if scope is not None:
            conn.execute("SELECT set_config('longops.companies', %s, true)", [scope])
        return conn.execute(f"SELECT {column} FROM {table} {where}").fetchall()


def test_the_application_role_is_an_ordinary_owner(deployment: Deployment) -> None:
    with psycopg.connect(deployment.url) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False)
        owners = conn.execute(
            "SELECT DISTINCT tableowner = current_user FROM pg_tables WHERE tablename = ANY(%s)",
            [list(COMPANY_TABLES)],
        ).fetchall()
        assert owners == [(True,)]
        forced = conn.execute(
            "SELECT bool_and(relrowsecurity AND relforcerowsecurity) FROM pg_class "
            "WHERE relname = ANY(%s)",
            [list(COMPANY_TABLES)],
        ).fetchone()
        assert forced == (True,)


@pytest.mark.parametrize("table", sorted(COMPANY_TABLES))
def test_a_scoped_connection_reads_no_row_of_another_company(
    deployment: Deployment, table: str
) -> None:
    column = COMPANY_TABLES[table]
    everything = _rows(deployment.url, "*", table)
    assert {r[0] for r in everything} >= {"A", "B"}, "both companies have rows"
    assert _rows(deployment.url, "A", table, f"WHERE {column} = 'B'") == []
    assert {r[0] for r in _rows(deployment.url, "A", table)} == {"A"}
    assert {r[0] for r in _rows(deployment.url, "B,A", table)} >= {"A", "B"}
    # No scope at all sees nothing (fail closed), as does an empty one.
    assert _rows(deployment.url, None, table) == []
    assert _rows(deployment.url, "", table) == []


def test_a_scoped_connection_cannot_write_another_companys_rows(deployment: Deployment) -> None:
    with psycopg.connect(deployment.url) as conn:
        conn.execute("SELECT set_config('longops.companies', 'A', true)")
        changed = conn.execute(
            "UPDATE longops_operations SET description = 'x' WHERE company = 'B'"
        ).rowcount
        assert changed == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute("INSERT INTO longops_categories (company, code) VALUES ('B', 'SNEAKY')")


def test_the_store_itself_is_walled_in_by_its_scope(deployment: Deployment) -> None:
    store = deployment.app.store
    # A query without any company filter still returns only the scope's rows.
    with store.scope(frozenset({"B"})):
        listed = store.list_operations(OperationQuery(limit=100))
        counts = store.count_operations()
        companies = store.list_companies()
    assert {op.company for op in listed} == {"B"}
    assert sum(counts.values()) == 3
    assert [c.name for c in companies] == ["B"]
    assert {op.company for op in store.list_operations(OperationQuery(limit=100))} == {"A", "B"}


def test_users_act_within_their_companies(deployment: Deployment) -> None:
    alice = deployment.app.as_user("alice")
    bea = deployment.app.as_user("bea")
    assert {op.company for op in alice.service.list_operations(OperationQuery())} == {"A"}
    assert {op.company for op in bea.service.list_operations(OperationQuery())} == {"B"}
    made = bea.enqueue("ok", company="B")
    assert made.operation.user == "bea"
    assert {e.company for e in alice.security.list_audit()} == {"A"}
    Runner(deployment.app).run_until_idle()
    assert made.refresh().status.value == "finished"


def test_a_scoped_users_cancel_writes_the_notification_within_the_wall(
    deployment: Deployment,
) -> None:
    # The trigger's insert runs in alice's scoped transaction: the policy lets it through
    # for her company, and she reads it back through core.
    app = deployment.app
    op = app.service.enqueue(EnqueueRequest(task="ok", company="A", user="alice", on_hold=True))
    alice = app.as_user("alice")
    alice.service.cancel(op.id)
    assert [n.operation_id for n in alice.inbox.notifications("A")] == [op.id]
    assert _rows(deployment.url, "B", "longops_notifications", "WHERE company = 'A'") == []
