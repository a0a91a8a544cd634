"""Clients that know only the Azure long-running-operation conventions drive an operation
to completion against ``longops serve`` on PostgreSQL: a hand-written poller that reads the
``Operation-Location`` and ``Retry-After`` headers and the status monitor's ``status``, and
azure-core's own ``LROPoller`` with ``LROBasePolling`` (what the Azure SDKs use). Also
``Prefer: wait=N``: the enqueue, or a GET, answers with the finished operation.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from azure.core import PipelineClient
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import HeadersPolicy, RequestIdPolicy, RetryPolicy
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LROBasePolling
from azure.core.rest import HttpRequest
from e2e_support import COMPANY, Deployment

pytestmark = pytest.mark.postgres

ENQUEUE = f"/v1/companies/{COMPANY}/tasks/track.count:enqueue"
TERMINAL = {"Succeeded", "Failed", "Canceled"}
POLL_DEADLINE = 120.0


def test_a_poller_using_only_the_headers_drives_the_operation(served: Deployment) -> None:
    auth = {"Authorization": f"Bearer {served.user_token}"}
    with httpx.Client(base_url=served.url, headers=auth) as client:
        r = client.post(ENQUEUE, json={"kwargs": {"n": 30}})
        assert r.status_code == 202
        location = r.headers["Operation-Location"]
        assert r.headers["Retry-After"].isdigit()
        assert r.headers["Operation-Id"] == r.json()["id"]
        # From here on the poller knows nothing of longops: it follows the header.
        polls = 0
        deadline = time.monotonic() + POLL_DEADLINE
        while True:
            # Honouring Retry-After is the protocol under test, not a way to order events.
            time.sleep(int(r.headers["Retry-After"]))
            r = client.get(location)
            polls += 1
            assert r.status_code == 200
            status = r.json()["status"]
            if status in TERMINAL:
                break
            assert "Retry-After" in r.headers, "a running operation tells when to ask again"
            assert time.monotonic() < deadline, "the operation did not finish"
        assert status == "Succeeded"
        assert "Retry-After" not in r.headers  # done: nothing to wait for
        assert r.json()["result"] == 30
        assert polls >= 1


def _azure_client(dep: Deployment) -> PipelineClient[HttpRequest, Any]:
    return PipelineClient(
        base_url=dep.url,
        policies=[
            RequestIdPolicy(),  # the poller repeats the first request's id on each poll
            HeadersPolicy({"Authorization": f"Bearer {dep.user_token}"}),
            RetryPolicy(retry_total=0),
        ],
    )


def test_azure_core_lro_poller_drives_the_operation(served: Deployment) -> None:
    client = _azure_client(served)
    with client:
        request = HttpRequest("POST", f"{served.url}{ENQUEUE}", json={"kwargs": {"n": 25}})
        initial: PipelineResponse[Any, Any] = client._pipeline.run(request)
        assert initial.http_response.status_code == 202

        def deserialize(response: PipelineResponse[Any, Any]) -> dict[str, Any]:
            body: dict[str, Any] = response.http_response.json()
            return body

        poller = LROPoller(client, initial, deserialize, LROBasePolling(timeout=1))
        final = poller.result(timeout=POLL_DEADLINE)
        assert poller.status().lower() == "succeeded"
        assert final["status"] == "Succeeded"
        assert final["result"] == 25
        assert final["done"] is True


def test_azure_core_lro_poller_sees_a_cancelled_operation_fail(served: Deployment) -> None:
    client = _azure_client(served)
    folder = served.folder
    with client:
        body = {"kwargs": {"folder": str(folder)}}
        path = f"/v1/companies/{COMPANY}/tasks/track.until_cancelled:enqueue"
        initial: PipelineResponse[Any, Any] = client._pipeline.run(
            HttpRequest("POST", f"{served.url}{path}", json=body)
        )
        op_id = initial.http_response.json()["id"]
        poller = LROPoller(client, initial, lambda r: r, LROBasePolling(timeout=1))
        cancel = HttpRequest(
            "POST",
            f"{served.url}/v1/companies/{COMPANY}/operations/{op_id}:cancel",
            json={"reason": "not wanted"},
        )
        assert client.send_request(cancel).status_code in (200, 202)
        with pytest.raises(HttpResponseError):
            poller.result(timeout=POLL_DEADLINE)
        assert poller.status().lower() == "canceled"


def test_prefer_wait_returns_the_finished_operation(served: Deployment) -> None:
    auth = {"Authorization": f"Bearer {served.user_token}"}
    with httpx.Client(base_url=served.url, headers=auth, timeout=90) as client:
        r = client.post(ENQUEUE, json={"kwargs": {"n": 5}}, headers={"Prefer": "wait=60"})
        assert r.status_code == 200, r.text
        assert r.headers["Preference-Applied"] == "wait=60"
        body = r.json()
        assert body["done"] is True
        assert body["status"] == "Succeeded"
        assert body["result"] == 5
        assert "Retry-After" not in r.headers
        assert r.headers["Operation-Location"].endswith(f"/operations/{body['id']}")


def test_prefer_wait_on_get_waits_for_a_change(served: Deployment) -> None:
    folder = served.folder
    auth = {"Authorization": f"Bearer {served.user_token}"}
    with httpx.Client(base_url=served.url, headers=auth, timeout=90) as client:
        r = client.post(
            f"/v1/companies/{COMPANY}/tasks/track.paced:enqueue",
            json={"kwargs": {"folder": str(folder), "steps": 1, "items": 1}},
        )
        location = r.headers["Operation-Location"]
        (folder / "go-1-1").write_text("")
        # Each long poll returns on a change (or after N s); the last one is the end.
        deadline = time.monotonic() + POLL_DEADLINE
        body = r.json()
        while not body["done"]:
            assert time.monotonic() < deadline
            r = client.get(location, headers={"Prefer": "wait=30"})
            assert r.status_code == 200
            body = r.json()
        assert body["status"] == "Succeeded"
        assert body["result"] == "paced"
