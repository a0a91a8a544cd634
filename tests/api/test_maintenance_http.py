"""Maintenance mode over HTTP: read by anyone with a token, started and stopped by SUPER,
bad input named, and the wait reason of a ready operation while it is on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from live import OWN, TASK, Live

from longops.domain.security import PermissionSet

SUPER = PermissionSet.SUPER.value
ADMIN = PermissionSet.ADMIN.value
VIEW = PermissionSet.VIEW.value


@pytest.fixture
def off(live: Live) -> Iterator[Live]:
    live.app.maintenance.stop()
    yield live
    live.app.maintenance.stop()


def test_start_status_and_stop(off: Live) -> None:
    http = off.http(SUPER)
    assert off.http(VIEW).get("/v1/maintenance").json()["active"] is False
    started = http.post(
        "/v1/maintenance:start", json={"reason": "upgrade to 2.0", "drainTimeout": 30}
    )
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["active"] is True
    assert body["reason"] == "upgrade to 2.0"
    assert body["drainTimeout"] == 30
    assert body["drainDeadline"] is not None
    # Anyone with a token sees it, with its reason.
    seen = off.http(VIEW).get("/v1/maintenance").json()
    assert (seen["active"], seen["reason"]) == (True, "upgrade to 2.0")
    again = http.post("/v1/maintenance:start", json={})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "MaintenanceActive"
    # Enqueueing goes on; the operation waits with the reason.
    made = off.http(ADMIN).post(f"/v1/companies/{OWN}/tasks/{TASK}:enqueue", json={})
    assert made.status_code == 202, made.text
    op = off.http(ADMIN).get(made.headers["Operation-Location"]).json()
    wait = op["metadata"]["waitReason"]
    assert wait["code"] == "maintenance"
    assert "upgrade to 2.0" in wait["message"]
    stopped = http.post("/v1/maintenance:stop")
    assert stopped.status_code == 200
    assert stopped.json()["active"] is False
    audit = off.app.security.list_audit()
    assert {"start_maintenance", "stop_maintenance"} <= {a.action for a in audit}


def test_only_super_starts_or_stops_it(off: Live) -> None:
    for who in (VIEW, ADMIN):
        refused = off.http(who).post("/v1/maintenance:start", json={"reason": "x"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "PermissionDenied"
        assert off.http(who).post("/v1/maintenance:stop").status_code == 403
    assert off.app.maintenance.status().active is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"drainTimeout": -1}, "drainTimeout"),
        ({"drainTimeout": "60"}, "drainTimeout"),
        ({"reason": "x" * 501}, "reason"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_input_names_the_field(off: Live, body: dict[str, object], field: str) -> None:
    answer = off.http(SUPER).post("/v1/maintenance:start", json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "InvalidArgument"
    assert field in (error["target"] or ""), error
    assert field in error["message"]
    assert off.app.maintenance.status().active is False


def test_the_document_describes_it(off: Live) -> None:
    doc = off.http(VIEW).get("/v1/openapi.json").json()
    start = doc["paths"]["/v1/maintenance:start"]["post"]
    assert start["x-longops-actions"] == ["set_maintenance"]
    ref = start["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    model = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"active", "reason", "drainTimeout", "drainDeadline"} <= set(model["properties"])
    body = doc["components"]["schemas"]["MaintenanceStart"]["properties"]["drainTimeout"]
    assert body["minimum"] == 0
