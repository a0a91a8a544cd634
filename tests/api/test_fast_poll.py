"""The common poll (``GET .../operations/{id}`` with a token verified lately) is answered
without routing (``api/fastpath.py``) and must answer exactly what the route answers: the
same bytes and headers; anything else goes to the route."""

from __future__ import annotations

from typing import Any

import pytest
from live import OWN, Live
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from longops import telemetry
from longops.api import fastpath
from longops.api.models import OperationModel
from longops.api.presenting import operation_json
from longops.domain.security import PermissionSet
from procs import wait_for

SUPER = PermissionSet.SUPER.value
VARYING = ("date", "server")


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operation ids the fast path answered (the server runs in this process)."""
    taken: list[str] = []
    real = fastpath.found_and_shown

    def counted(view: Any, company: str, operation_id: str) -> Any:
        taken.append(operation_id)
        return real(view, company, operation_id)

    monkeypatch.setattr(fastpath, "found_and_shown", counted)
    return taken


@pytest.fixture
def fast_pages(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The page sizes of the lists the fast path answered."""
    taken: list[int] = []
    real = fastpath.listed_and_shown

    def counted(view: Any, query: Any, page_size: int) -> Any:
        taken.append(page_size)
        return real(view, query, page_size)

    monkeypatch.setattr(fastpath, "listed_and_shown", counted)
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


@pytest.fixture
def stack(live: Live, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that went through the API's middleware stack (error
    layer, trace context, body limit, token ending, then routing)."""
    assert live.http(SUPER).get("/healthz").status_code == 200  # the stack is built
    inner = live.api.middleware_stack
    assert inner is not None
    seen: list[str] = []

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await inner(scope, receive, send)

    monkeypatch.setattr(live.api, "middleware_stack", counted)
    return seen


def test_the_common_polls_are_answered_before_the_middleware_stack(
    live: Live, fast: list[str], fast_pages: list[int], stack: list[str]
) -> None:
    """With telemetry recording nothing, the plain poll and the first page are answered
    before the middleware stack (``Polls.lean``), once each; a GET that declares a body
    goes the whole way (the body limit reads it), as does one the fast path cannot answer."""
    op = live.op()
    url = f"/v1/companies/{OWN}/operations/{op.id}"
    listed = f"/v1/companies/{OWN}/operations"
    http = live.http(SUPER)
    assert http.get(listed).status_code == 200  # the token is kept
    stack.clear()
    fast.clear()
    fast_pages.clear()
    assert http.get(url).status_code == 200
    assert http.get(f"{listed}?pageSize=2").status_code == 200
    assert stack == [], "answered before the stack"
    assert fast == [str(op.id)]
    assert fast_pages == [2]
    with_body = http.request("GET", url, content=b"x" * 10)
    assert with_body.status_code == 200
    assert stack == [url], "a declared body goes through the stack"
    assert http.get(f"/v1/companies/{OWN}/operations/123456789").status_code == 404
    assert stack == [url, f"/v1/companies/{OWN}/operations/123456789"]
    assert fast == [str(op.id), "123456789"], "tried once, then the route answered"


def test_with_telemetry_recording_the_poll_goes_through_the_trace_context(
    live: Live, fast: list[str], stack: list[str]
) -> None:
    """A recording tracer: the poll is answered inside the stack (innermost), in the
    SERVER span the trace context starts, named by the route."""
    op = live.op()
    url = f"/v1/companies/{OWN}/operations/{op.id}"
    http = live.http(SUPER)
    assert http.get(url).status_code == 200  # the token is kept
    stack.clear()
    fast.clear()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry.use(tracer_provider=provider)
    try:
        assert http.get(url).status_code == 200
        # The server's span ends after the client has its answer: wait for it before the
        # provider is shut down (a span ended after that is dropped).
        wait_for(
            lambda: any(s.kind is SpanKind.SERVER for s in spans.get_finished_spans()),
            timeout=10,
            what="the poll's SERVER span",
        )
    finally:
        telemetry.use()
        provider.shutdown()
    assert stack == [url]
    assert fast == [str(op.id)], "answered by the fast path inside the stack"
    [span] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert span.name == "GET /v1/companies/{company}/operations/{operation_id:lro_id}"


@pytest.mark.parametrize(
    "value",
    [
        0.1, 1e-7, 1e20, 123456.789, 2.5e-300, 50, 100, 0, True, -0.0,
        "plain", "\u00e9t\u00e9 \u6f22\u5b57 \U0001f600", "\x00\x01\x1f\x7f\"\\/\n\r\t\b\f",
        "\u2028\u2029", "</script>", [1, "a", None, {"k": [2.0]}], {"nested": {"x": 1e16}},
        2**63 - 1, -(2**63), float("nan"), float("inf"),
    ],
)  # fmt: skip
def test_the_json_written_without_the_model_is_the_models(value: Any) -> None:
    """``operation_json`` writes the bytes FastAPI writes for ``OperationModel`` (the
    route's response model, ``exclude_unset``), for every kind of value a result,
    progress or label may hold; what orjson refuses goes through the model."""
    body = _body()
    body["result"] = body["response"] = {"v": value, "list": [value]}
    body["metadata"]["labels"] = {"v": value}
    if isinstance(value, int | float) and not isinstance(value, bool):
        body["percentComplete"] = value
    model = OperationModel.model_validate(body)
    expected = model.__pydantic_serializer__.to_json(model, exclude_unset=True, by_alias=True)
    assert operation_json(body) == expected


def test_what_orjson_refuses_goes_through_the_model() -> None:
    body = _body()
    body["result"] = body["response"] = {"big": 2**70, 3: "int key"}
    model = OperationModel.model_validate(body)
    expected = model.__pydantic_serializer__.to_json(model, exclude_unset=True, by_alias=True)
    assert operation_json(body) == expected
    assert b"1180591620717411303424" in expected


def _body() -> dict[str, Any]:
    """A finished operation's representation, as ``represent`` makes it (its keys in
    ``OperationModel``'s order)."""
    return {
        "name": "companies/C/operations/0193a3c0-0000-7000-8000-000000000001",
        "id": "0193a3c0-0000-7000-8000-000000000001",
        "status": "Succeeded",
        "done": True,
        "percentComplete": 100.0,
        "metadata": {"@type": "t", "entryNo": 1, "labels": {}, "timeoutSeconds": 30.0},
        "result": None,
        "response": None,
    }
