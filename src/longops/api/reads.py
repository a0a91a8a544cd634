"""Reading operations over HTTP, under ``/v1/companies/{company}/``: one operation (ETag,
``Retry-After``, ``Prefer: wait``), the list (filters, keyset pages), an operation's attempts
and timeline (JSON, or a live SSE stream), and the company's live stream."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any

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
)
from longops.api.errors import ApiError
from longops.api.models import (
    SSE_EVENTS,
    TEXT_PATTERN,
    AttemptList,
    EventList,
    EventModel,
    OperationList,
    OperationModel,
    OrderBy,
    StatusName,
)
from longops.api.presenting import (
    ERRORS,
    etag,
    find,
    found_and_presented,
    prefer_wait,
    present,
    presented,
    reply,
)
from longops.api.representation import AZURE_STATUSES, attempt_json, event_json
from longops.app import ActorView
from longops.domain.filters import OperationFilter
from longops.domain.operation import Operation
from longops.domain.status import Status

router = APIRouter(prefix="/v1/companies/{company}", tags=["operations"])


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


def _listed_and_presented(
    view: ActorView, query: OperationFilter, page_size: int
) -> tuple[list[Operation], list[OperationModel]]:
    """A page's read and its representation in one trip to a thread."""
    ops = view.service.list_operations(query)
    return ops, presented(view, ops[:page_size])


@router.get(
    "/operations/{operation_id:lro_id}",
    openapi_extra=acts("get_operation"),
    name="get_operation",
    response_model=OperationModel,
    response_model_exclude_unset=True,  # no null result/error while not applicable
    responses={200: {"model": OperationModel}, 304: {"description": "Not modified"}, **ERRORS},
    summary="Get an operation",
)
async def get_operation(
    company: NamePath,
    operation_id: OperationIdPath,
    request: Request,
    response: Response,
    view: Caller,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    prefer: Annotated[str | None, Header(alias="Prefer")] = None,
) -> OperationModel | Response:
    """The operation; ``Retry-After`` while it is not done (shorter near its ETA), an
    ``ETag`` (``If-None-Match`` gives 304), and ``Prefer: wait=N`` waits up to N seconds for
    a change."""
    await company_of(view, company)
    wait = prefer_wait(prefer)
    if wait is None and if_none_match is None:
        # The common poll: the read and its representation in one trip to a thread.
        op, body = await call(found_and_presented, view, company, operation_id)
        return await reply(response, request, view, company, op, body=body)
    op = await find(view, company, operation_id)
    if wait is not None and not op.done:
        seen = if_none_match or etag(op)
        deadline = time.monotonic() + wait
        while etag(op) == seen and not op.done and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            op = await find(view, company, operation_id)
    if if_none_match is not None and if_none_match == etag(op):
        return Response(status_code=304, headers={"ETag": etag(op), "Cache-Control": "no-store"})
    return await reply(response, request, view, company, op)


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
    response_model=OperationList,
    response_model_exclude_unset=True,  # each operation's fields as OPERATION says
    responses={200: {"model": OperationList}, **ERRORS},
    summary="List operations",
)
async def list_operations(
    company: NamePath,
    request: Request,
    response: Response,
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
        Query(
            max_length=200,
            pattern=TEXT_PATTERN,
            description=(
                "Text in the task, description or last error; also an entry number (#4711:"
                " that one only) or the start of an id."
            ),
        ),
    ] = None,
    order_by: Annotated[OrderBy | None, Query(alias="orderBy")] = None,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=1000)] = 50,
    page_token: Annotated[str | None, Query(alias="pageToken")] = None,
) -> OperationList:
    """Operations of the company, newest first by default; ``nextPageToken`` continues."""
    await company_of(view, company)
    params: dict[str, Any] = {
        "status": status, "task": task, "category": category, "queue": queue, "user": user,
        "createdAfter": created_after, "createdBefore": created_before,
        "startedAfter": started_after, "startedBefore": started_before, "q": q,
        "orderBy": order_by,
    }  # fmt: skip
    plan = page_plan(company, params, page_size, page_token)
    ops, shown = await call(_listed_and_presented, view, plan.query, page_size)
    next_token = plan.next_token(ops)
    response.headers["Cache-Control"] = "no-store"
    if next_token is None:
        return OperationList(operations=shown, nextPageToken=None, nextLink=None)
    next_link = str(request.url.include_query_params(pageToken=next_token))
    return OperationList(operations=shown, nextPageToken=next_token, nextLink=next_link)


NO_FILTER: dict[str, Any] = dict.fromkeys(
    ("status", "task", "category", "queue", "user", "createdAfter", "createdBefore",
     "startedAfter", "startedBefore", "q", "orderBy")
)  # fmt: skip
"""The list's filter parameters, none given (the first page the fast path answers)."""


@dataclass(frozen=True, slots=True)
class PagePlan:
    """A page of the list: what to read and how its next page token is made."""

    query: OperationFilter
    fingerprint: str
    page_size: int
    limit: int

    def next_token(self, ops: list[Operation]) -> str | None:
        """The next page's token, when ``ops`` (what ``query`` read) show one follows."""
        more = len(ops) > self.page_size or len(ops) == self.limit == self.page_size
        if not more:
            return None
        return encode_token({"e": ops[: self.page_size][-1].entry_no, "f": self.fingerprint})


def page_plan(
    company: str, params: dict[str, Any], page_size: int, page_token: str | None
) -> PagePlan:
    """The read of a page of the list (its filter from ``params``, the query parameters)."""
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
    # One more than a page tells whether another follows; core reads 1000 at most, so a
    # full page of 1000 always offers a next token (which may lead to an empty page).
    limit = min(page_size + 1, 1000)
    query = replace(
        query,
        limit=limit,
        after_entry_no=None if query.descending else after,
        before_entry_no=after if query.descending else None,
    )
    return PagePlan(query, fingerprint, page_size, limit)


def listed_and_shown(
    view: ActorView, query: OperationFilter, page_size: int
) -> tuple[list[Operation], list[dict[str, Any]]]:
    """``_listed_and_presented`` without the models (the fast path writes the JSON)."""
    ops = view.service.list_operations(query)
    return ops, present(view, ops[:page_size])


@router.get(
    "/operations/{operation_id}/attempts",
    openapi_extra=acts("list_attempts"),
    response_model=AttemptList,
    responses={200: {"model": AttemptList}, **ERRORS},
    summary="An operation's attempts (log entries)",
)
async def attempts(company: NamePath, operation_id: OperationIdPath, view: Caller) -> AttemptList:
    await company_of(view, company)
    op = await find(view, company, operation_id)
    found = await call(view.service.attempts, op.id)
    return AttemptList(attempts=[attempt_json(a) for a in found])


@router.get(
    "/operations/{operation_id}/events",
    openapi_extra=acts("list_events"),
    response_model=EventList,
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
) -> EventList | Response:
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
    return EventList(
        events=[EventModel.model_validate(event_json(e)) for e in found],
        nextPageToken=encode_token({"a": found[-1].id}) if more else None,
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
    # No response model: the answer is a stream of SSE frames (sse.py), never one JSON body.
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
