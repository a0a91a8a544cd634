"""What a new user's trial of the REST API found: opaque idempotency keys (the README's
``Operation-Id: nov-invoices``), ``:wait?timeout=``, batches answering once per id,
argument types checked against the published schema, readable validation messages."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from live import OWN, TASK, Live

from longops.store.base import OperationQuery

ENQUEUE = f"/v1/companies/{OWN}/tasks/{TASK}:enqueue"
OPS = f"/v1/companies/{OWN}/operations"


def count(live: Live) -> int:
    return len(live.app.service.list_operations(OperationQuery(company=OWN, limit=1000)))


def error_of(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    return dict(r.json()["error"])


# -- 1. any client key ------------------------------------------------------------------------


def test_an_opaque_operation_id_is_an_idempotency_key(live: Live) -> None:
    key = f"nov-invoices-{uuid.uuid4().hex[:8]}"
    body = {"kwargs": {"n": 3}, "onHold": True}
    before = count(live)
    with live.client("JOBQUEUE-USER") as http:
        first = http.post(ENQUEUE, json=body, headers={"Operation-Id": key})
        again = http.post(ENQUEUE, json=body, headers={"Repeatability-Request-ID": key})
        in_body = http.post(ENQUEUE, json={**body, "requestId": key})
        other = http.post(
            ENQUEUE, json={"kwargs": {"n": 4}, "onHold": True}, headers={"Operation-Id": key}
        )
    assert first.status_code == again.status_code == in_body.status_code == 202, first.text
    assert first.json()["id"] == again.json()["id"] == in_body.json()["id"]
    assert uuid.UUID(first.json()["id"])  # the operation's id stays a UUID
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(live) == before + 1
    assert error_of(other)["code"] == "OperationIdConflict"


def test_the_same_opaque_key_in_two_companies_is_two_operations(live: Live) -> None:
    key = f"k-{uuid.uuid4().hex}"
    with live.client("other") as http:
        a = http.post(ENQUEUE, json={"onHold": True}, headers={"Operation-Id": key})
        b = http.post(
            f"/v1/companies/B/tasks/{TASK}:enqueue",
            json={"onHold": True},
            headers={"Operation-Id": key},
        )
    assert a.status_code == b.status_code == 202, b.text
    assert a.json()["id"] != b.json()["id"]


def test_a_key_must_be_printable_ascii_of_bounded_length(live: Live) -> None:
    with live.client("JOBQUEUE-USER") as http:
        for bad in ("x" * 129, "two words"):
            r = http.post(ENQUEUE, json={"onHold": True}, headers={"Operation-Id": bad})
            error = error_of(r)
            assert error["target"] == "Operation-Id"
            assert "printable ASCII" in error["message"], error["message"]
            assert "pattern" not in error["message"]
        r = http.post(ENQUEUE, json={"onHold": True, "requestId": "é"})
        assert error_of(r)["target"] == "requestId"


# -- 6. :wait?timeout= ------------------------------------------------------------------------


def test_wait_reads_its_timeout_from_the_query_too(live: Live) -> None:
    op = live.op(owner="u-user")
    url = f"{OPS}/{op.id}:wait"
    with live.client("JOBQUEUE-USER") as http:
        quick = http.post(url, params={"timeout": 0})  # on hold: answers now, not in 30 s
        too_long = http.post(url, params={"timeout": 100})
        both = http.post(url, params={"timeout": 60}, json={"timeout": 0})  # the shorter
        too_long_body = http.post(url, params={"timeout": 0}, json={"timeout": 61})
    assert quick.status_code == both.status_code == 200
    assert quick.json()["id"] == both.json()["id"] == str(op.id)
    assert error_of(too_long)["target"] == "timeout"
    assert error_of(too_long_body)["target"] == "timeout"


# -- 7. validation messages read like core's --------------------------------------------------


def test_validation_messages_are_worded_like_cores(live: Live) -> None:
    with live.client("JOBQUEUE-USER") as http:
        delay = http.post(ENQUEUE, json={"rerunDelay": 4000})
        page = http.get(OPS, params={"pageSize": 0})
        status = http.get(OPS, params={"status": "done"})
        unknown = http.post(ENQUEUE, json={"colour": "red"})
        kind = http.post(ENQUEUE, json={"maxAttempts": "3"})
    assert error_of(delay)["message"] == "rerunDelay: must be between 0 and 3600 (got 4000)"
    assert error_of(page)["message"] == "pageSize: must be between 1 and 1000 (got '0')"
    message = error_of(status)["message"]
    assert message.startswith("status[0]: must be one of "), message
    assert message.endswith("(got 'done')")
    assert error_of(unknown)["message"] == "colour: is not a field of this request"
    assert error_of(kind)["message"] == "maxAttempts: must be an integer (got '3')"
    for r in (delay, status, unknown, kind):
        assert "Input should" not in r.text
        assert "String should" not in r.text


# -- 4. a batch answers once per requested id -------------------------------------------------


def batch(live: Live, verb: str, ids: list[str]) -> dict[str, Any]:
    with live.client("JOBQUEUE-ADMIN") as http:
        r = http.post(f"{OPS}:{verb}", json={"ids": ids})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_batch_by_uuid_and_entry_number_counts_each_operation_once(live: Live) -> None:
    a, b = live.op(), live.op()
    answer = batch(live, "batchCancel", [str(a.id), str(b.entry_no)])
    assert (answer["matched"], answer["processed"], answer["failed"]) == (2, 2, 0)
    assert [(r["id"], r["operationId"], r["ok"]) for r in answer["results"]] == [
        (str(a.id), str(a.id), True),
        (str(b.entry_no), str(b.id), True),
    ]


def test_one_operation_named_twice_is_acted_on_once(live: Live) -> None:
    a = live.op()
    answer = batch(live, "batchCancel", [str(a.id), str(a.entry_no), str(a.id)])
    assert (answer["matched"], answer["processed"], answer["failed"]) == (1, 1, 0)
    assert [r["id"] for r in answer["results"]] == [str(a.id), str(a.entry_no)]
    assert all(r["ok"] and r["operationId"] == str(a.id) for r in answer["results"])


def test_a_batch_of_one_entry_number_is_one_result(live: Live) -> None:
    a = live.op()
    answer = batch(live, "batchCancel", [str(a.entry_no)])
    assert (answer["matched"], answer["processed"], answer["failed"]) == (1, 1, 0)
    [result] = answer["results"]
    assert result == {"id": str(a.entry_no), "operationId": str(a.id), "ok": True}


def test_missing_and_refused_ids_fail_once_each(live: Live) -> None:
    ready = live.op()
    missing = str(uuid.uuid4())
    answer = batch(live, "batchDelete", [missing, str(ready.id)])
    assert (answer["matched"], answer["processed"], answer["failed"]) == (1, 0, 2)
    gone, refused = answer["results"]
    assert (gone["id"], gone["code"]) == (missing, "OperationNotFound")
    assert (refused["id"], refused["ok"], refused["code"]) == (
        str(ready.id),
        False,
        "InvalidArgument",
    )


# -- 3. arguments fit the published schema ----------------------------------------------------


def test_an_argument_of_the_wrong_type_is_400_naming_it(live: Live) -> None:
    before = count(live)
    with live.client("JOBQUEUE-USER") as http:
        schema = http.get(f"/v1/companies/{OWN}/tasks").json()
        [task] = [t for t in schema["tasks"] if t["name"] == TASK]
        assert task["argumentsSchema"]["properties"]["n"]["type"] == "integer"
        by_name = http.post(ENQUEUE, json={"kwargs": {"n": "lots"}, "onHold": True})
        by_position = http.post(ENQUEUE, json={"args": [1, 2], "onHold": True})
        checked = http.post(ENQUEUE, params={"validateOnly": "true"}, json={"kwargs": {"n": True}})
        fine = http.post(ENQUEUE, params={"validateOnly": "true"}, json={"kwargs": {"n": 3}})
    error = error_of(by_name)
    assert (error["target"], error["message"]) == (
        "kwargs.n",
        "kwargs.n: must be an integer (got 'lots')",
    )
    assert error_of(by_position)["message"] == "args[1]: must be a string (got 2)"
    assert error_of(checked)["target"] == "kwargs.n"
    assert fine.status_code == 200
    assert count(live) == before


# -- 2. the docs need no CDN ------------------------------------------------------------------


def test_the_docs_load_swagger_ui_from_this_server(live: Live) -> None:
    with live.client() as http:
        page = http.get("/docs")
        bundle = http.get("/docs/static/swagger-ui-bundle.js")
        css = http.get("/docs/static/swagger-ui.css")
    assert page.status_code == bundle.status_code == css.status_code == 200
    assert "cdn.jsdelivr.net" not in page.text
    assert "https://" not in page.text
    assert "http://" not in page.text
    assert '"/docs/static/swagger-ui-bundle.js"' in page.text
    assert "SwaggerUIBundle" in bundle.text
