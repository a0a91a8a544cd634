"""The common poll (``GET .../operations/{id}`` with a token verified lately) is answered
without routing (``api/fastpath.py``) and must answer exactly what the route answers: the
same bytes and headers; anything else goes to the route."""

from __future__ import annotations

from typing import Any

import pytest
from live import OWN, Live

from longops.api import fastpath
from longops.domain.security import PermissionSet

SUPER = PermissionSet.SUPER.value
VARYING = ("date", "server")


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operation ids the fast path answered (the server runs in this process)."""
    taken: list[str] = []
    real = fastpath.found_and_presented

    def counted(view: Any, company: str, operation_id: str) -> Any:
        taken.append(operation_id)
        return real(view, company, operation_id)

    monkeypatch.setattr(fastpath, "found_and_presented", counted)
    return taken


@pytest.fixture
def fast_pages(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The page sizes of the lists the fast path answered."""
    taken: list[int] = []
    real = fastpath.list_operations

    async def counted(**kwargs: Any) -> Any:
        taken.append(kwargs["page_size"])
        return await real(**kwargs)

    monkeypatch.setattr(fastpath, "list_operations", counted)
    return taken


def kept(headers: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k not in VARYING]


def test_the_fast_poll_answers_what_the_route_answers(live: Live, fast: list[str]) -> None:
    op = live.op()
    url = f"/v1/companies/{OWN}/operations/{op.id}"
    http = live.http(SUPER)
    assert http.get(f"/v1/companies/{OWN}/operations").status_code == 200  # the token is kept
    quick = http.get(url)
    routed = http.get(url, headers={"Prefer": "wait=0"})  # Prefer: always the route
    assert fast == [str(op.id)], "the plain poll went through the fast path, once"
    assert quick.status_code == routed.status_code == 200
    assert quick.content == routed.content
    assert kept(quick.headers) == kept(routed.headers)
    assert quick.headers["etag"]
    assert quick.headers["operation-location"].endswith(str(op.id))


def test_by_entry_number_the_location_names_the_id(live: Live, fast: list[str]) -> None:
    op = live.op()
    http = live.http(SUPER)
    http.get(f"/v1/companies/{OWN}/operations")
    quick = http.get(f"/v1/companies/{OWN}/operations/{op.entry_no}")
    routed = http.get(f"/v1/companies/{OWN}/operations/{op.entry_no}", headers={"Prefer": "x"})
    assert fast == [str(op.entry_no)]
    assert quick.content == routed.content
    assert kept(quick.headers) == kept(routed.headers)


def test_what_the_fast_path_cannot_answer_goes_to_the_route(live: Live, fast: list[str]) -> None:
    http = live.http(SUPER)
    http.get(f"/v1/companies/{OWN}/operations")
    missing = http.get(f"/v1/companies/{OWN}/operations/123456789")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "OperationNotFound"
    with live.client(None) as anonymous:
        op = live.op()
        assert anonymous.get(f"/v1/companies/{OWN}/operations/{op.id}").status_code == 401
    assert http.get(f"/v1/companies/NOPE/operations/{op.id}").status_code == 404
    not_modified = http.get(
        f"/v1/companies/{OWN}/operations/{op.id}",
        headers={
            "If-None-Match": http.get(f"/v1/companies/{OWN}/operations/{op.id}").headers["etag"]
        },
    )
    assert not_modified.status_code == 304
    assert fast == ["123456789", str(op.id)], "tried for the missing one, then answered once"


def test_the_first_page_answers_what_the_route_answers(live: Live, fast_pages: list[int]) -> None:
    for _ in range(3):
        live.op()
    http = live.http(SUPER)
    http.get(f"/v1/companies/{OWN}/operations/1")  # the token is kept
    for query in ("", "?pageSize=2"):
        quick = http.get(f"/v1/companies/{OWN}/operations{query}")
        routed = http.get(f"/v1/companies/{OWN}/operations{query}", headers={"Prefer": "x"})
        assert quick.status_code == routed.status_code == 200
        assert quick.content == routed.content
        assert kept(quick.headers) == kept(routed.headers)
    assert quick.json()["nextLink"].endswith(
        "pageSize=2&pageToken=" + quick.json()["nextPageToken"]
    )
    assert fast_pages == [50, 2]
    assert http.get(f"/v1/companies/{OWN}/operations?pageSize=0").status_code == 400
    assert fast_pages == [50, 2]


def test_the_location_follows_the_host_asked_for(live: Live, fast: list[str]) -> None:
    """The absolute URL's start is worked out once per scheme, server, Host and root path
    (``fastpath._base``): each Host gets its own, as the route's ``url_for`` makes it."""
    op = live.op()
    url = f"/v1/companies/{OWN}/operations/{op.id}"
    http = live.http(SUPER)
    http.get(f"/v1/companies/{OWN}/operations")
    for host in ("ops.example.test", "ops.example.test:8443", "[::1]:9000", None):
        headers = {} if host is None else {"Host": host}
        quick = http.get(url, headers=headers)
        routed = http.get(url, headers={**headers, "Prefer": "x"})
        assert quick.headers["operation-location"] == routed.headers["operation-location"]
        if host is not None:
            assert quick.headers["operation-location"] == f"http://{host}{url}"
    assert len(fast) == 4
