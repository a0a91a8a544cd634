"""What the operation routes share: reading an operation of the company in the path,
presenting operations (wait reasons and ETAs derived now) as ``OperationModel``, and the
headers of an operation answer (``ETag``, ``Retry-After``, ``Operation-Location``).

Example::

    op = await find(view, company, operation_id)
    return await reply(response, request, view, company, op)   # an OperationModel
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from typing import Any

import orjson
from fastapi import Request, Response

from longops.api.deps import call, wait_context
from longops.api.errors import ApiError
from longops.api.models import ErrorResponse, OperationModel
from longops.api.representation import represent
from longops.app import ActorView
from longops.domain.operation import Operation
from longops.domain.status import Status

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad input, a conflict or a refused transition"},
    401: {"model": ErrorResponse, "description": "No valid API token"},
    403: {"model": ErrorResponse, "description": "The token's user may not do this"},
    404: {"model": ErrorResponse, "description": "Not found (or in another company)"},
}
"""The error answers every authenticated route documents."""

MAX_WAIT = 60.0
DEFAULT_WAIT = 30.0
PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d+(?:\.\d+)?)")


def present(view: ActorView, ops: list[Operation]) -> list[dict[str, Any]]:
    """Operations as the API shows them (wait reasons and ETAs derived now), as JSON."""
    svc = view.service
    ready = any(op.status is Status.READY for op in ops)
    waits = svc.wait_reasons(ops, wait_context(view) if ready else None)
    progress = svc.estimated(ops)
    now = view.app.clock.now()
    return [
        represent(op, progress=progress.get(op.id), wait=waits.get(op.id), now=now) for op in ops
    ]


def presented(view: ActorView, ops: list[Operation]) -> list[OperationModel]:
    """``present`` as the response model."""
    return [OperationModel.model_validate(body) for body in present(view, ops)]


def etag(op: Operation) -> str:
    return f'"{op.entry_no}-{int(op.updated_at.timestamp() * 1_000_000)}-{op.status.value}"'


def retry_after(op: Operation, body: OperationModel | dict[str, Any], now: datetime) -> int | None:
    """How long a poller should wait before asking again: sooner near the end."""
    if op.done:
        return None
    if op.status is Status.READY and op.earliest_start_at > now:
        return int(min(max((op.earliest_start_at - now).total_seconds(), 1), 60))
    if op.status is Status.ON_HOLD:
        return 30
    metadata = body["metadata"] if isinstance(body, dict) else body.metadata
    progress = metadata.get("progress") or {}
    eta = progress.get("etaTime")
    if eta:
        left = (datetime.fromisoformat(eta) - now).total_seconds()
        return int(min(max(left / 4, 1), 30))
    return 1


def operation_headers(
    location: str, op: Operation, body: OperationModel | dict[str, Any], now: datetime
) -> dict[str, str]:
    """The headers of an answer that is one operation at ``location`` (its URL)."""
    headers = {
        "ETag": etag(op),
        "Cache-Control": "no-store",
        "Operation-Id": str(op.id),
        "Operation-Location": location,
    }
    wait = retry_after(op, body, now)
    if wait is not None:
        headers["Retry-After"] = str(wait)
    return headers


def in_company(op: Operation, company: str, operation_id: str) -> Operation:
    if op.company != company:
        raise ApiError(404, "OperationNotFound", f"operation {operation_id} not found")
    return op


def found_and_presented(
    view: ActorView, company: str, operation_id: str
) -> tuple[Operation, OperationModel]:
    """The operation and its representation, in one trip to a thread."""
    op = in_company(view.service.get(operation_id), company, operation_id)
    [body] = presented(view, [op])
    return op, body


def found_and_shown(
    view: ActorView, company: str, operation_id: str
) -> tuple[Operation, dict[str, Any]]:
    """The operation and its representation as JSON (``present``), in one trip to a thread:
    ``found_and_presented`` without the model (the fast path writes the JSON itself,
    ``operation_json``)."""
    op = in_company(view.service.get(operation_id), company, operation_id)
    [body] = present(view, [op])
    return op, body


def operation_json(body: dict[str, Any]) -> bytes:
    """The bytes FastAPI sends for ``OperationModel.model_validate(body)`` as a route's
    response model (``exclude_unset``): the representation's keys are the model's fields
    in the model's order, its values already JSON; only ``percentComplete`` (a float
    field) is coerced, as validation does. orjson writes them (the same bytes as
    pydantic-core's writer: both print floats the shortest way and escape the same
    characters; ``tests/api/test_fast_poll.py`` compares them). What orjson refuses (an
    integer beyond 64 bits in a result, say) goes through the model, as before."""
    try:
        return orjson.dumps(_coerced(body))
    except TypeError:
        model = OperationModel.model_validate(body)
        return model.__pydantic_serializer__.to_json(model, exclude_unset=True, by_alias=True)


def _coerced(body: dict[str, Any]) -> dict[str, Any]:
    percent = body.get("percentComplete")
    if percent is None or type(percent) is float:
        return body
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        raise TypeError("percentComplete is not a number")  # the model decides
    return {**body, "percentComplete": float(percent)}


async def find(view: ActorView, company: str, operation_id: str) -> Operation:
    """The operation, if it is in this company and the caller may read it."""
    return in_company(await call(view.service.get, operation_id), company, operation_id)


async def reply(
    response: Response,
    request: Request,
    view: ActorView,
    company: str,
    op: Operation,
    *,
    status: int = 200,
    extra: dict[str, str] | None = None,
    body: OperationModel | None = None,
) -> OperationModel:
    """The operation as the answer, its headers and status set on ``response`` (the one
    FastAPI sends the returned model in)."""
    if body is None:
        [body] = await call(presented, view, [op])
    now = view.app.clock.now()
    location = request.url_for("get_operation", company=company, operation_id=str(op.id))
    response.headers.update(operation_headers(str(location), op, body, now))
    response.headers.update(extra or {})
    response.status_code = status
    return body


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
