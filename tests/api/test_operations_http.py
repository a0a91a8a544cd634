"""Operations over HTTP: idempotent enqueue with ``Operation-Id``, ``validateOnly``, ETags
and ``If-None-Match``, ``Retry-After`` while not done, and one error envelope with stable
codes (conventions §7.6) for every refusal, naming the field of bad input."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from live import OTHER, OWN, TASK, Live

from longops.domain.errors import ValidationError
from longops.store.base import OperationQuery

ENQUEUE = f"/v1/companies/{OWN}/tasks/{TASK}:enqueue"


def count(live: Live) -> int:
    return len(live.app.service.list_operations(OperationQuery(company=OWN, limit=1000)))


def envelope_of(r: httpx.Response) -> dict[str, Any]:
    """The error envelope, checked for its shape (conventions §7.6)."""
    body = r.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {
        "code", "message", "target", "details", "innererror", "status", "httpCode"
    }  # fmt: skip
    assert error["httpCode"] == r.status_code
    assert r.headers["Error-Code"] == error["code"]
    assert re.fullmatch(r"[A-Z][A-Za-z]+", error["code"])
    assert re.fullmatch(r"[A-Z_]+", error["status"])
    [info] = error["details"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["domain"] == "longops.dev"
    assert info["reason"] == re.sub(r"(?<!^)(?=[A-Z])", "_", error["code"]).upper()
    if error["target"] is not None:
        assert info["metadata"] == {"field": error["target"]}
    assert error["message"]
    return dict(error)


# -- idempotent enqueue -------------------------------------------------------------------------


def test_the_same_operation_id_twice_is_one_operation(live: Live) -> None:
    key = str(uuid.uuid4())
    body = {"kwargs": {"n": 3}, "onHold": True, "labels": {"run": "nightly"}}
    before = count(live)
    with live.client("JOBQUEUE-USER") as http:
        first = http.post(ENQUEUE, json=body, headers={"Operation-Id": key})
        again = http.post(ENQUEUE, json=body, headers={"Operation-Id": key})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] == key
    assert first.headers["Operation-Id"] == again.headers["Operation-Id"] == key
    assert first.headers["Operation-Location"] == again.headers["Operation-Location"]
    assert first.headers["Operation-Location"].endswith(f"/v1/companies/{OWN}/operations/{key}")
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.headers["Repeatability-Result"] == again.headers["Repeatability-Result"]
    assert count(live) == before + 1
    assert live.app.service.get(key).kwargs == {"n": 3}


@pytest.mark.parametrize(
    "spelling",
    ["Operation-Id", "Repeatability-Request-ID", "requestId"],
)
def test_every_spelling_of_the_key_is_the_same_key(live: Live, spelling: str) -> None:
    key = str(uuid.uuid4())
    body: dict[str, Any] = {"onHold": True}
    headers = {}
    if spelling == "requestId":
        body["requestId"] = key
    else:
        headers[spelling] = key
    with live.client("JOBQUEUE-USER") as http:
        first = http.post(ENQUEUE, json=body, headers=headers)
        again = http.post(ENQUEUE, json={"onHold": True}, headers={"Operation-Id": key})
    assert first.status_code == again.status_code == 202, again.text
    assert first.json()["id"] == again.json()["id"] == key


def test_the_same_operation_id_with_another_body_is_a_conflict(live: Live) -> None:
    key = str(uuid.uuid4())
    with live.client("JOBQUEUE-USER") as http:
        first = http.post(ENQUEUE, json={"kwargs": {"n": 1}, "onHold": True}, headers={
            "Operation-Id": key
        })  # fmt: skip
        other = http.post(ENQUEUE, json={"kwargs": {"n": 2}, "onHold": True}, headers={
            "Operation-Id": key
        })  # fmt: skip
        elsewhere = http.post(
            f"/v1/companies/{OWN}/tasks/steps:enqueue",
            json={"kwargs": {"n": 1}, "onHold": True},
            headers={"Operation-Id": key},
        )
    assert first.status_code == 202
    for refused in (other, elsewhere):
        assert refused.status_code == 400
        error = envelope_of(refused)
        assert error["code"] == "OperationIdConflict"
    assert live.app.service.get(key).kwargs == {"n": 1}  # the first one, untouched


def test_an_operation_id_must_be_a_printable_key(live: Live) -> None:
    with live.client("JOBQUEUE-USER") as http:
        r = http.post(ENQUEUE, json={}, headers={"Operation-Id": "not a key"})
    assert r.status_code == 400
    assert envelope_of(r)["target"] == "Operation-Id"


def test_validate_only_creates_nothing(live: Live) -> None:
    key = str(uuid.uuid4())
    before = count(live)
    with live.client("JOBQUEUE-USER") as http:
        ok = http.post(
            f"{ENQUEUE}?validateOnly=true", json={"kwargs": {"n": 1}}, headers={"Operation-Id": key}
        )
        bad = http.post(f"{ENQUEUE}?validateOnly=true", json={"kwargs": {"nope": 1}})
        missing = http.post(f"/v1/companies/{OWN}/tasks/nothing:enqueue?validateOnly=true", json={})
    assert ok.status_code == 200, ok.text
    assert ok.json()["metadata"]["validateOnly"] is True
    assert "Operation-Location" not in ok.headers
    assert bad.status_code == 400
    assert envelope_of(bad)["target"] == "kwargs"
    assert missing.status_code == 404
    assert envelope_of(missing)["code"] == "TaskNotFound"
    assert count(live) == before
    with pytest.raises(Exception, match="not found"):
        live.app.service.get(key)
    with live.client("JOBQUEUE-USER") as http:  # the key was not used up by the dry run
        real = http.post(ENQUEUE, json={"kwargs": {"n": 2}}, headers={"Operation-Id": key})
    assert real.status_code == 202


def test_validate_only_still_asks_for_the_permission(live: Live) -> None:
    with live.client("JOBQUEUE-VIEW") as http:
        r = http.post(f"{ENQUEUE}?validateOnly=true", json={})
    assert r.status_code == 403
    assert envelope_of(r)["code"] == "PermissionDenied"


# -- polling: ETag, If-None-Match, Retry-After ---------------------------------------------------


def test_etag_and_if_none_match(live: Live) -> None:
    op = live.op(OWN, "u-admin")
    url = f"/v1/companies/{OWN}/operations/{op.id}"
    with live.client("JOBQUEUE-ADMIN") as http:
        first = http.get(url)
        tag = first.headers["ETag"]
        same = http.get(url, headers={"If-None-Match": tag})
        assert same.status_code == 304
        assert same.content == b""
        assert same.headers["ETag"] == tag
        assert http.post(f"{url}:ready").status_code == 200
        changed = http.get(url, headers={"If-None-Match": tag})
        other = http.get(url, headers={"If-None-Match": '"something-else"'})
    assert first.status_code == 200
    assert changed.status_code == 200
    assert changed.headers["ETag"] != tag
    assert changed.json()["metadata"]["state"] == "QUEUED"
    assert other.status_code == 200


def test_retry_after_while_not_done_only(live: Live) -> None:
    waiting = live.op(OWN, "u-admin", on_hold=False)
    held = live.op(OWN, "u-admin")
    done = live.done_op(OWN, "u-admin")
    with live.client("JOBQUEUE-ADMIN") as http:
        answers = {
            name: http.get(f"/v1/companies/{OWN}/operations/{op.id}")
            for name, op in [("waiting", waiting), ("held", held), ("done", done)]
        }
    for name in ("waiting", "held"):
        assert int(answers[name].headers["Retry-After"]) >= 1, name
        assert answers[name].json()["done"] is False
    assert "Retry-After" not in answers["done"].headers
    assert answers["done"].json()["done"] is True
    assert answers["done"].json()["status"] == "Canceled"


def test_enqueue_answers_202_with_where_to_poll(live: Live) -> None:
    with live.client("JOBQUEUE-USER") as http:
        r = http.post(ENQUEUE, json={"kwargs": {"n": 1}})
        assert r.status_code == 202
        assert int(r.headers["Retry-After"]) >= 1
        polled = http.get(r.headers["Operation-Location"])
    assert polled.status_code == 200
    assert polled.json()["id"] == r.headers["Operation-Id"] == r.json()["id"]
    body = r.json()
    assert body["name"] == f"companies/{OWN}/operations/{body['id']}"
    assert r.headers["Operation-Location"].endswith(f"/v1/{body['name']}")
    assert (body["status"], body["done"]) == ("NotStarted", False)


# -- the error envelope ----------------------------------------------------------------------------


def _raw(http: httpx.Client, method: str, url: str, text: str) -> httpx.Response:
    return http.request(method, url, content=text, headers={"Content-Type": "application/json"})


BAD_INPUT = [
    # (what, method, url, raw JSON body or None, field the answer must name)
    ("a number as text", "POST", ENQUEUE, '{"maxAttempts": "3"}', "maxAttempts"),
    ("true as a number", "POST", ENQUEUE, '{"maxAttempts": true}', "maxAttempts"),
    ("0 as false", "POST", ENQUEUE, '{"onHold": 0}', "onHold"),
    ("a huge integer", "POST", ENQUEUE, '{"maxAttempts": 100000000000000000000000}', "maxAttempts"),
    ("an unknown field", "POST", ENQUEUE, '{"nope": 1}', "nope"),
    ("NUL in text", "POST", ENQUEUE, '{"description": "a\\u0000b"}', "description"),
    ("NUL in an argument", "POST", ENQUEUE, '{"kwargs": {"label": "\\u0000"}}', "kwargs"),
    ("a lone surrogate", "POST", ENQUEUE, '{"args": ["\\ud800"]}', "args"),
    ("a lone surrogate in text", "POST", ENQUEUE, '{"description": "\\udfff"}', "description"),
    ("an argument the task lacks", "POST", ENQUEUE, '{"kwargs": {"x": 1}}', "kwargs"),
    ("a time without offset", "POST", ENQUEUE, '{"scheduleTime": "2030-01-01T00:00"}',
     "scheduleTime"),
    ("a Unix time", "POST", ENQUEUE, '{"scheduleTime": 1700000000}', "scheduleTime"),
    ("an expiry before the start", "POST", ENQUEUE, '{"expireTime": "2000-01-01T00:00:00Z"}',
     "expireTime"),
    ("delay and a start time", "POST", ENQUEUE,
     '{"delay": 5, "scheduleTime": "2030-01-01T00:00:00Z"}', "delay"),
    ("a token expiring in the past", "POST", "/v1/users/u-view/tokens",
     '{"expiresInDays": 1e-300}', "expiresInDays"),
    ("malformed JSON", "POST", ENQUEUE, '{"args": [', "body"),
    ("NUL in a company", "GET", "/v1/companies/A%00/operations", None, "company"),
    ("a bad operation id", "GET", f"/v1/companies/{OWN}/operations/x-y", None, "operation_id"),
    ("a huge entry number", "GET", f"/v1/companies/{OWN}/operations/{'9' * 30}", None,
     "operation_id"),
    ("a superscript digit as entry number", "GET", f"/v1/companies/{OWN}/operations/%C2%B2",
     None, "operation_id"),
    ("a superscript digit in a batch", "POST", f"/v1/companies/{OWN}/operations:batchCancel",
     '{"ids": ["\u00b2"]}', "ids[0]"),
    ("NUL in a filter", "GET", f"/v1/companies/{OWN}/operations?q=%00", None, "q"),
    ("a bad status", "GET", f"/v1/companies/{OWN}/operations?status=done", None, "status[0]"),
    ("a bad time", "GET", f"/v1/companies/{OWN}/operations?createdAfter=0.5", None,
     "createdAfter"),
    ("a page too big", "GET", f"/v1/companies/{OWN}/operations?pageSize=1001", None, "pageSize"),
    ("a foreign page token", "GET", f"/v1/companies/{OWN}/operations?pageToken=abc", None,
     "pageToken"),
    ("a huge audit id", "GET", f"/v1/audit?before={10**30}", None, "before"),
    ("both ids and filter", "POST", f"/v1/companies/{OWN}/operations:batchCancel",
     '{"ids": [], "filter": {}}', "body"),
    ("an unknown filter field", "POST", f"/v1/companies/{OWN}/operations:batchCancel",
     '{"filter": {"colour": "red"}}', "filter.colour"),
    ("a short password", "POST", "/v1/users", '{"name": "pw", "password": "short"}', "password"),
    ("SUPER as a grant", "POST", "/v1/users", '{"name": "g", "grants": [["A", "SUPER"]]}',
     "grants[0][1]"),
    ("a wait too long", "POST", f"/v1/companies/{OWN}/operations/1:wait", '{"timeout": 61}',
     "timeout"),
    ("a bad Last-Event-ID", "GET", f"/v1/companies/{OWN}/operations:stream", None,
     "Last-Event-ID"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "method", "url", "text", "field"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT]
)
def test_bad_input_is_400_naming_the_field(
    live: Live, what: str, method: str, url: str, text: str | None, field: str | None
) -> None:
    headers = {"Last-Event-ID": "x"} if what == "a bad Last-Event-ID" else {}
    with live.client("SUPER", headers=headers) as http:
        r = _raw(http, method, url, text) if text is not None else http.request(method, url)
    assert r.status_code == 400, r.text
    error = envelope_of(r)
    assert error["code"] == "InvalidArgument"
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["target"] == field
    if field is not None:
        assert error["message"].startswith(f"{field}: ")


def test_refusals_have_stable_codes(live: Live) -> None:
    running_key = str(uuid.uuid4())
    not_done = live.op(OWN, "u-admin")
    with live.client("SUPER") as http:
        http.post(ENQUEUE, json={"kwargs": {"n": 1}}, headers={"Operation-Id": running_key})
        answers = {
            "OperationIdConflict": http.post(
                ENQUEUE, json={"kwargs": {"n": 9}}, headers={"Operation-Id": running_key}
            ),
            "OperationNotFound": http.get(f"/v1/companies/{OWN}/operations/{uuid.uuid4()}"),
            "TaskNotFound": http.post(f"/v1/companies/{OWN}/tasks/none:enqueue", json={}),
            "CompanyNotFound": http.get("/v1/companies/NOWHERE/operations"),
            "CategoryNotFound": http.patch(f"/v1/companies/{OWN}/categories/NONE", json={}),
            "UserNotFound": http.get("/v1/users/nobody/tokens"),
            "FailedPrecondition": http.delete(f"/v1/companies/{OWN}/operations/{not_done.id}"),
            "AlreadyExists": http.post("/v1/users", json={"name": "u-view"}),
            "MethodNotAllowed": http.put(f"/v1/companies/{OWN}/operations/{not_done.id}"),
            "NotFound": http.get("/v1/nothing/here"),
        }
    with live.client("JOBQUEUE-VIEW") as http:
        answers["PermissionDenied"] = http.post(f"/v1/companies/{OWN}/categories", json={
            "code": "X"
        })  # fmt: skip
    with live.client() as http:
        answers["Unauthenticated"] = http.get(f"/v1/companies/{OWN}/operations")
    statuses = {
        "OperationIdConflict": (400, "INVALID_ARGUMENT"),
        "FailedPrecondition": (400, "FAILED_PRECONDITION"),
        "Unauthenticated": (401, "UNAUTHENTICATED"),
        "PermissionDenied": (403, "PERMISSION_DENIED"),
        "AlreadyExists": (409, "ALREADY_EXISTS"),
        "MethodNotAllowed": (405, "UNIMPLEMENTED"),
    }
    for code, r in answers.items():
        error = envelope_of(r)
        assert error["code"] == code, (code, r.text)
        assert (r.status_code, error["status"]) == statuses.get(code, (404, "NOT_FOUND")), code
    assert answers["MethodNotAllowed"].headers["Allow"] == "DELETE, GET"
    assert live.app.service.get(not_done.id).status.value == "on_hold"  # still there


def test_a_custom_methods_path_is_405_for_other_methods(live: Live) -> None:
    op = live.op(OWN, "u-admin")
    with live.client("SUPER") as http:
        r = http.get(f"/v1/companies/{OWN}/operations/{op.id}:cancel")
        patch = http.patch(f"/v1/companies/{OWN}/categories/CAT:pause", json={})
        delete = http.delete("/v1/users/u-view:disable")
    for answer, allow in [(r, "POST"), (patch, "POST"), (delete, "POST")]:
        assert answer.status_code == 405
        assert envelope_of(answer)["code"] == "MethodNotAllowed"
        assert answer.headers["Allow"] == allow
    assert live.app.service.get(op.id).status.value == "on_hold"


def test_another_companys_names_do_not_leak_through_errors(live: Live) -> None:
    """A user of A asking about B gets the same sentence as for a company that is not."""
    with live.client("JOBQUEUE-ADMIN") as http:
        theirs = http.get(f"/v1/companies/{OTHER}/categories")
        nobody = http.get("/v1/companies/NOWHERE/categories")
    assert theirs.status_code == nobody.status_code == 404
    a, b = envelope_of(theirs), envelope_of(nobody)
    assert json.dumps(a).replace(OTHER, "X") == json.dumps(b).replace("NOWHERE", "X")


def test_core_reads_only_ascii_digits_as_an_entry_number(live: Live) -> None:
    """'²' passes str.isdigit() but is no number int() reads: core used to crash on it."""
    with pytest.raises(ValidationError) as refused:
        live.app.service.get("\u00b2")
    assert refused.value.field == "id"
