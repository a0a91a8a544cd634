"""The REST API's responses, byte for byte, for a fixed script of requests: run it with two
trees' interpreters and compare the files to show a refactoring left the wire unchanged.

The database is SQLite in a temporary folder and the clock is frozen, so two runs differ
only in random ids and secrets, which are replaced by their order of first appearance.

Example::

    /work/main/.venv/bin/python benchmarks/wire_diff.py /tmp/old.txt
    .venv/bin/python benchmarks/wire_diff.py /tmp/new.txt
    diff /tmp/old.txt /tmp/new.txt && echo same bytes
"""

from __future__ import annotations

import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from longops import EnqueueRequest, FrozenClock, Longops
from longops.api import create_api
from longops.domain.security import PermissionSet
from longops.notify.secrets import SecretBox
from longops.store.base import open_store

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SECRET = re.compile(r"lo_[A-Za-z0-9_\-]{20,}")
KEPT_HEADERS = (
    "content-type",
    "etag",
    "retry-after",
    "operation-location",
    "operation-id",
    "idempotent-replayed",
    "repeatability-result",
    "preference-applied",
    "cache-control",
    "location",
)


class Normal:
    """Random ids and secrets replaced by their order of first appearance."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        def sub(kind: str) -> Any:
            def one(m: re.Match[str]) -> str:
                key = m.group(0)
                return self.seen.setdefault(key, f"<{kind}{len(self.seen)}>")

            return one

        return SECRET.sub(sub("secret"), UUID.sub(sub("id"), text))


def main(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'wire.db'}"
    store = open_store(url)
    store.migrate()
    store.close()
    app = Longops(url, clock=FrozenClock(NOW), secret_key=SecretBox.generate_key())

    @app.task(name="t")
    def t(n: int = 0, label: str = "x") -> int:
        return n

    app.add_company("A")
    app.set_category("CAT", company="A")
    sec = app.security
    sec.add_user("boss", is_super=True)
    sec.add_user("admin", grants=[("A", PermissionSet.ADMIN)])
    boss = sec.create_token("boss", name="k", expires=None)[1]
    done = app.service.enqueue(EnqueueRequest(task="t", company="A", on_hold=True, user="boss"))
    app.service.cancel(done.id, reason="seeded")
    norm = Normal()
    lines: list[str] = []
    c = "/v1/companies/A"
    with TestClient(create_api(app), headers={"Authorization": f"Bearer {boss}"}) as http:

        def send(method: str, path: str, **kw: Any) -> Any:
            r = http.request(method, path, **kw)
            heads = {k: r.headers[k] for k in KEPT_HEADERS if k in r.headers}
            body = r.content if "metrics" not in path else b"<metrics>"
            lines.append(norm(f"{method} {path} -> {r.status_code} {heads}"))
            lines.append(norm(body.decode("utf-8", "replace")))
            return r.json() if r.headers.get("content-type") == "application/json" else None

        op = send("POST", f"{c}/tasks/t:enqueue", json={"kwargs": {"n": 3}, "onHold": True})
        oid = op["id"]
        send(
            "POST",
            f"{c}/tasks/t:enqueue",
            json={"kwargs": {"n": 1}},
            headers={"Operation-Id": "k1"},
        )
        send(
            "POST",
            f"{c}/tasks/t:enqueue",
            json={"kwargs": {"n": 1}},
            headers={"Operation-Id": "k1"},
        )
        send("POST", f"{c}/tasks/t:enqueue?validateOnly=true", json={"labels": {"a": "é"}})
        send("POST", f"{c}/tasks/nope:enqueue", json={})
        send("POST", f"{c}/tasks/t:enqueue", json={"delay": 30, "description": "später ✓"})
        send("POST", f"{c}/tasks/t:enqueue", json={}, headers={"Prefer": "wait=0.1"})
        r = send("GET", f"{c}/operations/{oid}")
        send("GET", f"{c}/operations/{oid}", headers={"If-None-Match": r["name"]})
        send("GET", f"{c}/operations/{op['metadata']['entryNo']}")
        send("GET", f"{c}/operations/{oid}", headers={"Prefer": "wait=0.1"})
        send("GET", f"{c}/operations/{done.id}")
        send("GET", f"{c}/operations?pageSize=2")
        first = send("GET", f"{c}/operations?pageSize=2&status=NotStarted")
        send(
            "GET", f"{c}/operations?pageSize=2&status=NotStarted&pageToken={first['nextPageToken']}"
        )
        send("GET", f"{c}/operations?orderBy=entryNo&q=x")
        send("GET", f"{c}/operations?createdAfter=nonsense")
        send("GET", f"{c}/operations/{oid}/attempts")
        send("GET", f"{c}/operations/{oid}/events")
        send("GET", f"{c}/operations/{oid}/events?pageSize=1")
        send("POST", f"{c}/operations/{oid}:ready")
        send("POST", f"{c}/operations/{oid}:hold")
        send("POST", f"{c}/operations/{oid}:runNow")
        send("POST", f"{c}/operations/{oid}:wait?timeout=0")
        send("POST", f"{c}/operations/{oid}:cancel", json={"reason": "enough"})
        send("POST", f"{c}/operations/{oid}:cancel")
        send("POST", f"{c}/operations/{oid}:restart")
        send("POST", f"{c}/operations/{oid}:cancel")
        send("DELETE", f"{c}/operations/{oid}")
        send("DELETE", f"{c}/operations/{oid}")
        send("POST", f"{c}/operations:batchCancel", json={"ids": [str(done.id), "1", "999"]})
        send("POST", f"{c}/operations:batchRestart", json={"filter": {"status": "Canceled"}})
        send("POST", f"{c}/operations:batchCancel", json={"filter": {"task": "t"}})
        send("POST", f"{c}/operations:batchDelete", json={"filter": {"status": ["Canceled"]}})
        send("GET", f"{c}/categories")
        send("POST", f"{c}/categories", json={"code": "C2", "maxConcurrent": 2})
        send("PATCH", f"{c}/categories/C2", json={"description": "two"})
        send("POST", f"{c}/categories/C2:pause")
        send("POST", f"{c}/categories/C2:resume")
        send("PATCH", f"{c}/categories/NOPE", json={})
        send("GET", f"{c}/tasks")
        send("GET", "/v1/queues")
        send("POST", "/v1/queues/q1:pause")
        send("POST", "/v1/queues/q1:resume")
        send("GET", "/v1/sessions")
        send("POST", f"/v1/sessions/{done.id}:drain")
        send("GET", "/v1/users")
        send("POST", "/v1/users", json={"name": "eve", "grants": [["A", "JOBQUEUE-VIEW"]]})
        send("POST", "/v1/users/eve:disable")
        send("POST", "/v1/users/eve:enable")
        send("GET", "/v1/users/eve/contact")
        send("PUT", "/v1/users/eve/contact", json={"email": "eve@example.com", "notify": "email"})
        send("GET", "/v1/users/eve/tokens")
        send("POST", "/v1/users/eve/tokens", json={"name": "t1"})
        send("GET", "/v1/users/eve/tokens")
        send("DELETE", "/v1/users/eve/tokens/t1")
        send("DELETE", "/v1/users/eve")
        send("GET", f"{c}/audit")
        send("GET", "/v1/audit?pageSize=5")
        send("GET", "/healthz")
        send("GET", "/readyz")
        send("GET", "/metrics")
        send("GET", f"{c}/notification-rules")
        rule = {"name": "r1", "on": "milestone", "to": ["owner"], "threshold": 50}
        send("POST", f"{c}/notification-rules", json=rule)
        send("POST", f"{c}/notification-rules/r1:mute")
        send("POST", f"{c}/notification-rules/r1:unmute")
        send("GET", f"{c}/notification-rules")
        send("DELETE", f"{c}/notification-rules/r1")
        send("GET", f"{c}/notification-admins")
        send("POST", f"{c}/notification-admins", json={"user": "admin"})
        send("GET", f"{c}/notification-admins")
        send("DELETE", f"{c}/notification-admins/admin")
        chan = {"name": "ch", "url": "json://127.0.0.1:9/hook"}
        send("POST", f"{c}/notification-channels", json=chan)
        mail = {"name": "m", "url": "mailtos://u:p@127.0.0.1:9?to=a@example.com"}
        send("POST", f"{c}/notification-channels", json=mail)
        send("POST", f"{c}/notification-channels/m:personalEmail")
        send("GET", f"{c}/notification-channels")
        send("DELETE", f"{c}/notification-channels/ch")
        send("GET", f"{c}/notification-deliveries")
        send("POST", f"{c}/notification-deliveries/1:retry")
        send("GET", f"{c}/nothing")
        send("GET", "/v1/openapi.json")
    app.close()
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
