"""``/healthz``, ``/readyz`` (database reachable and its schema current) and the docs."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
from live import Live


@contextlib.contextmanager
def database(live: Live) -> Iterator[Any]:
    """A plain connection to the served database, committing on the way out."""
    url = live.app.database_url
    if live.dialect == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            yield conn
            conn.commit()
        finally:
            conn.close()
    else:
        with psycopg.connect(url) as pg:
            yield pg


@contextlib.contextmanager
def last_migration_missing(live: Live) -> Iterator[None]:
    """As if the newest migration had not been applied; put back afterwards."""
    with database(live) as conn:
        row = conn.execute(
            "SELECT version, name, checksum, applied_at FROM longops_migrations "
            "ORDER BY version DESC LIMIT 1"
        ).fetchone()
        conn.execute(f"DELETE FROM longops_migrations WHERE version = {int(row[0])}")
    try:
        yield
    finally:
        mark = "?" if live.dialect == "sqlite" else "%s"
        with database(live) as conn:
            conn.execute(
                "INSERT INTO longops_migrations (version, name, checksum, applied_at) "
                f"VALUES ({mark}, {mark}, {mark}, {mark})",
                tuple(row),
            )


def test_healthz_needs_no_token(live: Live) -> None:
    with live.client() as http:
        r = http.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_readyz_says_when_the_schema_is_not_current(live: Live) -> None:
    with live.client() as http:
        ready = http.get("/readyz")
        with last_migration_missing(live):
            behind = http.get("/readyz")
        again = http.get("/readyz")
    assert ready.status_code == again.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "schema": "current"}}
    assert behind.status_code == 503
    error = behind.json()["error"]
    assert (error["code"], error["status"]) == ("Unavailable", "UNAVAILABLE")
    assert "needs version" in error["message"]
    assert "longops db upgrade" in error["message"]
    assert behind.headers["Error-Code"] == "Unavailable"


def test_readyz_follows_the_schema_guard_on_a_newer_schema(live: Live) -> None:
    """A server asks on every probe: a newer migration declared compatible (expand) keeps
    it ready; the same migration not declared compatible (contract) makes it unready."""
    mark = "?" if live.dialect == "sqlite" else "%s"
    with database(live) as conn:
        (newest,) = conn.execute("SELECT max(version) FROM longops_migrations").fetchone()
        future = int(newest) + 1
        conn.execute(
            "INSERT INTO longops_migrations (version, name, checksum, flags) "
            f"VALUES ({mark}, 'future_expand', 'x', 'compatible,online')",
            (future,),
        )
    try:
        with live.client() as http:
            expand = http.get("/readyz")
            with database(live) as conn:
                conn.execute(f"UPDATE longops_migrations SET flags = NULL WHERE version = {future}")
            contract = http.get("/readyz")
    finally:
        with database(live) as conn:
            conn.execute(f"DELETE FROM longops_migrations WHERE version = {future}")
    assert expand.status_code == 200
    assert expand.json()["checks"]["schema"] == "newer_compatible"
    assert contract.status_code == 503
    assert "not declared compatible" in contract.json()["error"]["message"]


def test_docs_and_the_openapi_document_are_served(live: Live) -> None:
    with live.client() as http:
        docs = http.get("/docs")
        document = http.get("/v1/openapi.json")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in docs.text
    assert "/v1/openapi.json" in docs.text
    assert document.status_code == 200
    spec = document.json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/companies/{company}/tasks/{task}:enqueue" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    # Bad input is 400 with the envelope here: FastAPI's 422 is not promised anywhere.
    codes = {
        code for path in spec["paths"].values() for op in path.values() for code in op["responses"]
    }
    assert "422" not in codes
    assert {"200", "202", "400", "401", "403", "404"} <= codes
