"""Operations over HTTP, under ``/v1/companies/{company}/``: enqueue (202 +
``Operation-Location``), get (ETag, ``Retry-After``), list (filters, keyset pages), the
actions (``:cancel``, ``:wait``, ``:hold``, ``:ready``, ``:restart``, ``:runNow``,
``DELETE``), batches, attempts and the timeline (JSON, or a live SSE stream)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import uuid
from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from longops.api import sse
from longops.api.deps import (
    NAME_PATTERN,
    Caller,
    NamePath,
    OperationIdPath,
    acts,
    call,
    company_of,
    decode_token,
    encode_token,
    services,
)
from longops.api.errors import ApiError, from_longops
from longops.api.models import (
    CLIENT_KEY_PATTERN,
    SSE_EVENTS,
    TEXT_PATTERN,
    AttemptList,
    BatchBody,
    BatchResult,
    CancelBody,
    EnqueueBody,
    ErrorResponse,
    EventList,
    OperationList,
    OperationModel,
    OrderBy,
    StatusName,
    WaitBody,
)
from longops.api.representation import AZURE_STATUSES, attempt_json, event_json, represent
from longops.api.responses import JSONResponse
from longops.app import ActorView
from longops.core.enqueue import EnqueueRequest
from longops.domain.errors import LongopsError, ValidationError
from longops.domain.filters import OperationFilter
from longops.domain.operation import Operation
from longops.domain.status import Status

T = TypeVar("T")

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad input, a conflict or a refused transition"},
    401: {"model": ErrorResponse, "description": "No valid API token"},
    403: {"model": ErrorResponse, "description": "The token's user may not do this"},
    404: {"model": ErrorResponse, "description": "Not found (or in another company)"},
}

ENQUEUE_HEADERS: dict[str, Any] = {
    "Operation-Location": {
        "description": "Where to poll the operation.",
        "schema": {"type": "string"},
    },
    "Operation-Id": {"description": "The operation's id.", "schema": {"type": "string"}},
    "Retry-After": {
        "description": "Seconds to wait before polling.",
        "schema": {"type": "integer"},
    },
    "Idempotent-Replayed": {
        "description": "true when the operation already existed (the same Operation-Id and "
        "body again, or a dedup key still held): nothing new was created.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}

router = APIRouter(prefix="/v1/companies/{company}", tags=["operations"])

MAX_WAIT = 60.0
DEFAULT_WAIT = 30.0
PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d+(?:\.\d+)?)")


def TimeQuery(alias: str) -> Any:  # noqa: N802 - reads as the Query it is
    """A time in the query: RFC 3339 text with an offset (parsed by ``_parse_time``, which
    names the parameter when it is not one)."""
    return Query(alias=alias, json_schema_extra={"format": "date-time"})


AZURE_TO_STATUSES = {
    "NotStarted": (Status.ON_HOLD, Status.READY),
    "Running": (Status.IN_PROCESS,),
    "Succeeded": (Status.FINISHED,),
    "Failed": (Status.ERROR,),
    "Canceled": (Status.CANCELLED,),
}


# -- presenting ---------------------------------------------------------------------------------
def present(view: ActorView, ops: list[Operation]) -> list[dict[str, Any]]:
    """Operations as the API shows them (wait reasons and ETAs derived now)."""
    svc = view.service
    waits = svc.wait_reasons(ops)
    progress = svc.estimated(ops)
    now = view.app.clock.now()
    return [
        represent(op, progress=progress.get(op.id), wait=waits.get(op.id), now=now) for op in ops
    ]


def etag(op: Operation) -> str:
    return f'"{op.entry_no}-{int(op.updated_at.timestamp() * 1_000_000)}-{op.status.value}"'


def retry_after(op: Operation, body: dict[str, Any], now: datetime) -> int | None:
    """How long a poller should wait before asking again: sooner near the end."""
    if op.done:
        return None
    if op.status is Status.READY and op.earliest_start_at > now:
        return int(min(max((op.earliest_start_at - now).total_seconds(), 1), 60))
    if op.status is Status.ON_HOLD:
        return 30
    progress = body["metadata"].get("progress") or {}
    eta = progress.get("etaTime")
    if eta:
        left = (datetime.fromisoformat(eta) - now).total_seconds()
        return int(min(max(left / 4, 1), 30))
    return 1


def operation_headers(
    request: Request, company: str, op: Operation, body: dict[str, Any], now: datetime
) -> dict[str, str]:
    headers = {
        "ETag": etag(op),
        "Cache-Control": "no-store",
        "Operation-Id": str(op.id),
        "Operation-Location": str(
            request.url_for("get_operation", company=company, operation_id=str(op.id))
        ),
    }
    wait = retry_after(op, body, now)
    if wait is not None:
        headers["Retry-After"] = str(wait)
    return headers


def _found_and_presented(
    view: ActorView, company: str, operation_id: str
) -> tuple[Operation, dict[str, Any]]:
    op = _in_company(view.service.get(operation_id), company, operation_id)
    [body] = present(view, [op])
    return op, body


def _listed_and_presented(
    view: ActorView, query: OperationFilter, page_size: int
) -> tuple[list[Operation], list[dict[str, Any]]]:
    """A page's read and its representation in one trip to a thread."""
    ops = view.service.list_operations(query)
    return ops, present(view, ops[:page_size])


def _in_company(op: Operation, company: str, operation_id: str) -> Operation:
    if op.company != company:
        raise ApiError(404, "OperationNotFound", f"operation {operation_id} not found")
    return op


async def find(view: ActorView, company: str, operation_id: str) -> Operation:
    """The operation, if it is in this company and the caller may read it."""
    return _in_company(await call(view.service.get, operation_id), company, operation_id)


async def reply(
    request: Request,
    view: ActorView,
    company: str,
    op: Operation,
    *,
    status: int = 200,
    extra: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> JSONResponse:
    if body is None:
        [body] = await call(present, view, [op])
    now = view.app.clock.now()
    headers = operation_headers(request, company, op, body, now)
    headers.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers)


async def wait_done(view: ActorView, op: Operation, seconds: float) -> Operation:
    """Wait (at most ``seconds``) for the operation to be done; the latest state."""
    deadline = time.monotonic() + min(seconds, MAX_WAIT)
    delay = 0.05
    while not op.done and time.monotonic() < deadline:
        await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0)))
        delay = min(delay * 1.5, 0.5)
        op = await call(view.service.get, op.id)
    return op


def prefer_wait(prefer: str | None) -> float | None:
    if not prefer:
        return None
    match = PREFER_WAIT.search(prefer)
    return None if match is None else min(float(match.group(1)), MAX_WAIT)


# -- enqueue ------------------------------------------------------------------------------------
KEY_NAMESPACE = uuid.UUID("5d0a8f3e-2c1b-4e7a-9f6d-8b3c2a1e0f47")
"""Where the ids of opaque client keys come from (UUIDv5): fixed, so a key names the same
operation on every server."""


def _client_id(
    operation_id: str | None, repeatability: str | None, body: EnqueueBody
) -> str | None:
    return operation_id or repeatability or body.requestId


def _key_to_id(company: str, key: str) -> uuid.UUID:
    """The operation id a client's key names: a UUID key is the id itself (Azure's
    Operation-Id); any other key (``nov-invoices``) maps to a UUIDv5 of the company and the
    key, so the same key again finds the same operation (and a different request under it
    is a conflict), and two companies' keys never meet.

    Example::

        _key_to_id("CRONUS", "nov-invoices") == _key_to_id("CRONUS", "nov-invoices")  # True
    """
    try:
        return uuid.UUID(key)
    except ValueError:
        return uuid.uuid5(KEY_NAMESPACE, f"{company}/{key}")


def _request_hash(company: str, task: str, body: EnqueueBody) -> str:
    data = body.model_dump(mode="json", exclude={"requestId"})
    text = json.dumps({"company": company, "task": task, "body": data}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _enqueue_request(
    company: str, task: str, body: EnqueueBody, client_id: uuid.UUID | None, digest: str | None
) -> EnqueueRequest:
    return EnqueueRequest(
        task=task,
        args=tuple(body.args),
        kwargs=dict(body.kwargs),
        company=company,
        description=body.description,
        queue=body.queue,
        category=body.category,
        priority=body.priority,
        earliest_start_at=body.scheduleTime,
        delay=body.delay,
        expires_at=body.expireTime,
        max_attempts=body.maxAttempts,
        rerun_delay=body.rerunDelay,
        timeout=body.timeout,
        recurrence=body.recurrence,
        dedup_key=body.dedupKey,
        labels=body.labels,
        on_hold=body.onHold,
        operation_id=client_id,
        request_hash=digest,
    )


async def _unknown_task_is_not_found(work: Awaitable[T]) -> T:
    """The task is a resource in the path: one this server does not know is 404."""
    try:
        return await work
    except ValidationError as exc:
        if exc.field == "task" and "registered" in exc.rule:
            raise ApiError(404, "TaskNotFound", f"task {exc.value} not found") from None
        raise


@router.post(
    "/tasks/{task}:enqueue",
    openapi_extra=acts("enqueue"),
    status_code=202,
    response_model=None,
    responses={
        202: {
            "model": OperationModel,
            "description": "Accepted: the operation",
            "headers": ENQUEUE_HEADERS,
        },
        200: {"model": OperationModel, "description": "Done within Prefer: wait, or validated"},
        **ERRORS,
    },
    summary="Enqueue an operation of a task",
)
async def enqueue(
    company: NamePath,
    task: NamePath,
    body: EnqueueBody,
    request: Request,
    view: Caller,
    validate_only: Annotated[bool, Query(alias="validateOnly")] = False,
    operation_id: Annotated[
        str | None, Header(alias="Operation-Id", pattern=CLIENT_KEY_PATTERN)
    ] = None,
    repeatability: Annotated[
        str | None, Header(alias="Repeatability-Request-ID", pattern=CLIENT_KEY_PATTERN)
    ] = None,
    prefer: Annotated[str | None, Header(alias="Prefer")] = None,
) -> Response:
    """Create an operation (202 with ``Operation-Location``, ``Operation-Id`` and
    ``Retry-After``). With a client ``Operation-Id`` (a UUID, or any key of 1 to 128
    printable ASCII characters) the same request again returns the same operation; another
    request under it is 400 ``OperationIdConflict``."""
    await company_of(view, company)
    given = _client_id(operation_id, repeatability, body)
    client_id = None if given is None else _key_to_id(company, given)
    digest = _request_hash(company, task, body) if client_id is not None else None
    req = _enqueue_request(company, task, body, client_id, digest)
    if validate_only:
        await _unknown_task_is_not_found(call(view.service.build, req))
        now = view.app.clock.now()
        return JSONResponse(
            {
                "name": f"companies/{company}/operations/-",
                "id": "-",
                "status": "NotStarted",
                "done": False,
                "percentComplete": None,
                "metadata": {
                    "validateOnly": True,
                    "task": task,
                    "company": company,
                    "createTime": now.isoformat(),
                },
            },
            status_code=200,
            headers={"Cache-Control": "no-store"},
        )
    op, created = await _unknown_task_is_not_found(call(view.service.enqueue_checked, req))
    services(request).hub.poke()
    extra: dict[str, str] = {}
    if client_id is not None:
        extra["Repeatability-Result"] = "accepted"
    if not created:
        # The same request again (or a held dedup key): the operation that already was.
        extra["Idempotent-Replayed"] = "true"
    wait = prefer_wait(prefer)
    if wait is not None:
        op = await wait_done(view, op, wait)
        extra["Preference-Applied"] = f"wait={wait:g}"
        return await reply(request, view, company, op, status=200 if op.done else 202, extra=extra)
    return await reply(request, view, company, op, status=202, extra=extra)


# -- reads --------------------------------------------------------------------------------------
@router.get(
    "/operations/{operation_id:lro_id}",
    openapi_extra=acts("get_operation"),
    name="get_operation",
    response_model=None,
    responses={200: {"model": OperationModel}, 304: {"description": "Not modified"}, **ERRORS},
    summary="Get an operation",
)
async def get_operation(
    company: NamePath,
    operation_id: OperationIdPath,
    request: Request,
    view: Caller,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    prefer: Annotated[str | None, Header(alias="Prefer")] = None,
) -> Response:
    """The operation; ``Retry-After`` while it is not done (shorter near its ETA), an
    ``ETag`` (``If-None-Match`` gives 304), and ``Prefer: wait=N`` waits up to N seconds for
    a change."""
    await company_of(view, company)
    wait = prefer_wait(prefer)
    if wait is None and if_none_match is None:
        # The common poll: the read and its representation in one trip to a thread.
        op, body = await call(_found_and_presented, view, company, operation_id)
        return await reply(request, view, company, op, body=body)
    op = await find(view, company, operation_id)
    if wait is not None and not op.done:
        seen = if_none_match or etag(op)
        deadline = time.monotonic() + wait
        while etag(op) == seen and not op.done and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            op = await find(view, company, operation_id)
    if if_none_match is not None and if_none_match == etag(op):
        return Response(status_code=304, headers={"ETag": etag(op), "Cache-Control": "no-store"})
    return await reply(request, view, company, op)


def _parse_time(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "InvalidArgument", f"{name}: must be an ISO 8601 time", target=name
        ) from None
    if parsed.tzinfo is None:
        raise ApiError(400, "InvalidArgument", f"{name}: must carry a time zone", target=name)
    return parsed


def _statuses(values: list[str]) -> tuple[Status, ...]:
    out: list[Status] = []
    for value in values:
        if value in AZURE_TO_STATUSES:
            out.extend(AZURE_TO_STATUSES[value])
            continue
        try:
            out.append(Status(value))
        except ValueError:
            known = ", ".join([s.value for s in Status] + list(AZURE_STATUSES))
            raise ApiError(
                400, "InvalidArgument", f"status: must be one of {known}", target="status"
            ) from None
    return tuple(dict.fromkeys(out))


def build_query(company: str, params: dict[str, Any]) -> OperationFilter:
    """The list's filter from its query parameters (also the body of a batch by filter)."""
    order = (params.get("orderBy") or "createTime desc").strip()
    if order not in ("createTime desc", "createTime", "createTime asc", "entryNo", "entryNo desc"):
        raise ApiError(
            400,
            "InvalidArgument",
            "orderBy: must be 'createTime desc' (default), 'createTime', 'entryNo' or "
            "'entryNo desc'",
            target="orderBy",
        )
    raw_status = params.get("status") or []
    if isinstance(raw_status, str):
        raw_status = [raw_status]
    try:
        return OperationFilter(
            company=company,
            statuses=_statuses(list(raw_status)),
            task=params.get("task"),
            category=params.get("category"),
            queue=params.get("queue"),
            user=params.get("user"),
            created_after=_parse_time("createdAfter", params.get("createdAfter")),
            created_before=_parse_time("createdBefore", params.get("createdBefore")),
            started_after=_parse_time("startedAfter", params.get("startedAfter")),
            started_before=_parse_time("startedBefore", params.get("startedBefore")),
            text=params.get("q") or None,
            descending=order.endswith("desc"),
        )
    except TypeError:
        raise ApiError(400, "InvalidArgument", "filter: unknown or malformed field") from None


@router.get(
    "/operations",
    openapi_extra=acts("list_operations"),
    response_model=None,
    responses={200: {"model": OperationList}, **ERRORS},
    summary="List operations",
)
async def list_operations(
    company: NamePath,
    request: Request,
    view: Caller,
    status: Annotated[
        list[StatusName] | None, Query(description="Statuses (ours or Azure's).")
    ] = None,
    task: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    category: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    queue: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    user: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    created_after: Annotated[str | None, TimeQuery(alias="createdAfter")] = None,
    created_before: Annotated[str | None, TimeQuery(alias="createdBefore")] = None,
    started_after: Annotated[str | None, TimeQuery(alias="startedAfter")] = None,
    started_before: Annotated[str | None, TimeQuery(alias="startedBefore")] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=TEXT_PATTERN, description="Text in task or description."),
    ] = None,
    order_by: Annotated[OrderBy | None, Query(alias="orderBy")] = None,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=1000)] = 50,
    page_token: Annotated[str | None, Query(alias="pageToken")] = None,
) -> Response:
    """Operations of the company, newest first by default; ``nextPageToken`` continues."""
    await company_of(view, company)
    params: dict[str, Any] = {
        "status": status, "task": task, "category": category, "queue": queue, "user": user,
        "createdAfter": created_after, "createdBefore": created_before,
        "startedAfter": started_after, "startedBefore": started_before, "q": q,
        "orderBy": order_by,
    }  # fmt: skip
    query = build_query(company, params)
    fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    after: int | None = None
    if page_token:
        token = decode_token(page_token)
        if token.get("f") != fingerprint or not isinstance(token.get("e"), int):
            raise ApiError(
                400,
                "InvalidArgument",
                "pageToken: belongs to another list (the filter changed)",
                target="pageToken",
            )
        after = token["e"]
    from dataclasses import replace

    # One more than a page tells whether another follows; core reads 1000 at most, so a
    # full page of 1000 always offers a next token (which may lead to an empty page).
    limit = min(page_size + 1, 1000)
    query = replace(
        query,
        limit=limit,
        after_entry_no=None if query.descending else after,
        before_entry_no=after if query.descending else None,
    )
    ops, presented = await call(_listed_and_presented, view, query, page_size)
    more = len(ops) > page_size or len(ops) == limit == page_size
    ops = ops[:page_size]
    body: dict[str, Any] = {"operations": presented}
    if more:
        next_token = encode_token({"e": ops[-1].entry_no, "f": fingerprint})
        body["nextPageToken"] = next_token
        body["nextLink"] = str(request.url.include_query_params(pageToken=next_token))
    else:
        body["nextPageToken"] = None
        body["nextLink"] = None
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get(
    "/operations/{operation_id}/attempts",
    openapi_extra=acts("list_attempts"),
    response_model=None,
    responses={200: {"model": AttemptList}, **ERRORS},
    summary="An operation's attempts (log entries)",
)
async def attempts(company: NamePath, operation_id: OperationIdPath, view: Caller) -> Response:
    await company_of(view, company)
    op = await find(view, company, operation_id)
    found = await call(view.service.attempts, op.id)
    return JSONResponse({"attempts": [attempt_json(a) for a in found]})


@router.get(
    "/operations/{operation_id}/events",
    openapi_extra=acts("list_events"),
    response_model=None,
    responses={
        200: {
            "model": EventList,
            "description": "The timeline (JSON), or with Accept: text/event-stream a live "
            "SSE stream resumable with Last-Event-ID",
            "content": {"text/event-stream": {"schema": SSE_EVENTS}},
        },
        **ERRORS,
    },
    summary="An operation's timeline, or its live stream",
)
async def events(
    company: NamePath,
    operation_id: OperationIdPath,
    request: Request,
    view: Caller,
    accept: Annotated[str | None, Header(alias="Accept")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=1000)] = 200,
    page_token: Annotated[str | None, Query(alias="pageToken")] = None,
) -> Response:
    await company_of(view, company)
    op = await find(view, company, operation_id)
    if accept is not None and "text/event-stream" in accept:
        after = sse.parse_last_event_id(last_event_id)
        return StreamingResponse(
            sse.operation_stream(request, view, op, after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    after_id = 0
    if page_token:
        token = decode_token(page_token)
        if not isinstance(token.get("a"), int):
            raise ApiError(400, "InvalidArgument", "pageToken: malformed", target="pageToken")
        after_id = token["a"]
    found = await call(view.service.events, op.id, after_id=after_id, limit=page_size + 1)
    more = len(found) > page_size
    found = found[:page_size]
    return JSONResponse(
        {
            "events": [event_json(e) for e in found],
            "nextPageToken": encode_token({"a": found[-1].id}) if more else None,
        }
    )


@router.get(
    "/operations:stream",
    openapi_extra=acts("list_operations"),
    response_model=None,
    responses={
        200: {
            "description": "A live SSE stream of the company's operations (created, progress, "
            "status), resumable with Last-Event-ID",
            "content": {"text/event-stream": {"schema": SSE_EVENTS}},
        },
        **ERRORS,
    },
    summary="Live changes to the company's operations",
)
async def stream(
    company: NamePath,
    request: Request,
    view: Caller,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    await company_of(view, company)
    sse._cursor(last_event_id)  # a bad one is 400 now, not a stream broken once started
    return StreamingResponse(
        sse.company_stream(request, view, company, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- actions ------------------------------------------------------------------------------------
@router.post(
    "/operations/{operation_id}:cancel",
    openapi_extra=acts("cancel", "force_cancel"),
    response_model=None,
    responses={
        202: {"model": OperationModel, "description": "Asked to stop (or cancelled at once)"},
        200: {"model": OperationModel, "description": "Already done: nothing to cancel"},
        **ERRORS,
    },
    summary="Cancel an operation",
)
async def cancel(
    company: NamePath,
    operation_id: OperationIdPath,
    request: Request,
    view: Caller,
    body: CancelBody | None = None,
) -> Response:
    """Cancel: at once when it is not running; a running one is asked to stop (and after
    its grace period stopped by force; ``force`` skips the grace, for admins)."""
    await company_of(view, company)
    op = await find(view, company, operation_id)
    if op.done:
        return await reply(request, view, company, op, status=200)
    args = body or CancelBody()
    op = await call(view.service.cancel, op.id, reason=args.reason, force=args.force)
    return await reply(request, view, company, op, status=202)


@router.post(
    "/operations/{operation_id}:wait",
    openapi_extra=acts("get_operation"),
    response_model=None,
    responses={200: {"model": OperationModel}, **ERRORS},
    summary="Wait for an operation (up to a timeout)",
)
async def wait(
    company: NamePath,
    operation_id: OperationIdPath,
    request: Request,
    view: Caller,
    body: WaitBody | None = None,
    timeout: Annotated[
        float | None, Query(ge=0, le=60, description="Seconds to wait at most (default 30).")
    ] = None,
) -> Response:
    """The operation once it is done, or its latest state after ``timeout`` seconds (in the
    query, ``?timeout=2``, or the body, ``{"timeout": 2}``; given both, the shorter)."""
    await company_of(view, company)
    op = await find(view, company, operation_id)
    given = [t for t in (timeout, None if body is None else body.timeout) if t is not None]
    # Both are valid by the document, so both are taken: the shorter wait applies.
    seconds = min(given) if given else None
    op = await wait_done(view, op, DEFAULT_WAIT if seconds is None else seconds)
    return await reply(request, view, company, op)


def _action(method: str, summary: str, doc: str) -> None:
    async def act(
        company: NamePath, operation_id: OperationIdPath, request: Request, view: Caller
    ) -> Response:
        await company_of(view, company)
        op = await find(view, company, operation_id)
        op = await call(getattr(view.service, method), op.id)
        services(request).hub.poke()
        return await reply(request, view, company, op)

    act.__doc__ = doc
    verb = {"set_ready": "ready", "run_now": "runNow"}.get(method, method)
    router.add_api_route(
        f"/operations/{{operation_id}}:{verb}",
        act,
        openapi_extra=acts(method),
        methods=["POST"],
        response_model=None,
        responses={200: {"model": OperationModel}, **ERRORS},
        summary=summary,
        name=f"operation_{method}",
    )


_action("hold", "Set an operation on hold", "Set On Hold (not while it runs: cancel instead).")
_action("set_ready", "Set an operation ready", "Set Status to Ready (attempts reset).")
_action("restart", "Restart an operation", "Restart a finished, failed or cancelled operation.")
_action("run_now", "Run an operation now", "Make it due now, ignoring its schedule.")


@router.delete(
    "/operations/{operation_id:lro_id}",
    openapi_extra=acts("delete"),
    status_code=204,
    response_model=None,
    responses={204: {"description": "Forgotten (or already gone)"}, **ERRORS},
    summary="Forget a finished operation",
)
async def delete(company: NamePath, operation_id: OperationIdPath, view: Caller) -> Response:
    """Forget an operation that is done; 400 while it is not (cancel it first)."""
    await company_of(view, company)
    try:
        op = await find(view, company, operation_id)
    except ApiError as exc:
        if exc.http == 404:
            return Response(status_code=204)
        raise
    except LongopsError as exc:
        if from_longops(exc)[0] == 404:
            return Response(status_code=204)
        raise
    if not op.done:
        raise ApiError(
            400,
            "FailedPrecondition",
            f"operation {op.id} is {op.status.value}: only a done operation can be deleted "
            "(cancel it first)",
        )
    await call(view.service.delete, op.id)
    return Response(status_code=204)


# -- batches ------------------------------------------------------------------------------------
BATCH_LIMIT = 10_000


async def _by_ids(
    view: ActorView, company: str, ids: list[str]
) -> list[tuple[str, Operation | None]]:
    """Each requested id once (in the order given), with the operation it names (None: not
    found). An id and the entry number of the same operation are two requests of one
    operation, which the batch then acts on once."""
    out: list[tuple[str, Operation | None]] = []
    for text in dict.fromkeys(ids):
        try:
            out.append((text, await find(view, company, text)))
        except (ApiError, LongopsError):
            out.append((text, None))
    return out


async def _by_filter(view: ActorView, company: str, body: BatchBody) -> list[Operation]:
    assert body.filter is not None
    from dataclasses import replace

    given = body.filter.model_dump(exclude_none=True)
    query = replace(build_query(company, given), descending=False, limit=1000)
    out: list[Operation] = []
    while len(out) < BATCH_LIMIT:
        page = await call(view.service.list_operations, query)
        out.extend(page)
        if len(page) < query.limit:
            break
        query = replace(query, after_entry_no=page[-1].entry_no)
    return out[:BATCH_LIMIT]


async def _apply(view: ActorView, method: str, op: Operation, reason: str | None) -> None:
    if method == "cancel":
        await call(view.service.cancel, op.id, reason=reason)
    elif method == "delete":
        if not op.done:
            raise ValidationError("status", "must be done to delete", op.status.value)
        await call(view.service.delete, op.id)
    else:
        await call(getattr(view.service, method), op.id)


def _batch(verb: str, method: str, summary: str) -> None:
    async def run(company: NamePath, body: BatchBody, request: Request, view: Caller) -> Response:
        """``results`` has one entry per requested id (each id once, as sent) or per
        matching operation; ``matched`` counts the operations found, ``processed`` those
        the action was applied to, ``failed`` the entries that are not ok."""
        await company_of(view, company)
        if (body.ids is None) == (body.filter is None):
            raise ApiError(400, "InvalidArgument", "give either ids or filter", target="ids")
        if body.ids is not None:
            requested = await _by_ids(view, company, body.ids)
        else:
            requested = [(str(op.id), op) for op in await _by_filter(view, company, body)]
        results: list[dict[str, Any]] = []
        outcome: dict[uuid.UUID, dict[str, Any]] = {}
        for text, op in requested:
            if op is None:
                results.append(
                    {
                        "id": text,
                        "ok": False,
                        "code": "OperationNotFound",
                        "message": f"operation {text} not found",
                    }
                )
                continue
            if op.id not in outcome:  # the same operation twice (its id and entry number)
                try:
                    await _apply(view, method, op, body.reason)
                    outcome[op.id] = {"ok": True}
                except LongopsError as exc:
                    _, code, message, _ = from_longops(exc)
                    outcome[op.id] = {"ok": False, "code": code, "message": message}
            results.append({"id": text, "operationId": str(op.id), **outcome[op.id]})
        services(request).hub.poke()
        return JSONResponse(
            {
                "matched": len(outcome),
                "processed": sum(1 for o in outcome.values() if o["ok"]),
                "failed": sum(1 for r in results if not r["ok"]),
                "results": results,
            }
        )

    router.add_api_route(
        f"/operations:{verb}",
        run,
        openapi_extra=acts(method),
        methods=["POST"],
        response_model=None,
        responses={200: {"model": BatchResult}, **ERRORS},
        summary=summary,
        name=f"operations_{verb}",
    )


_batch("batchCancel", "cancel", "Cancel many operations (by ids or by filter)")
_batch("batchRestart", "restart", "Restart many operations (by ids or by filter)")
_batch("batchDelete", "delete", "Delete many done operations (by ids or by filter)")
