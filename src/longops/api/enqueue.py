"""Enqueue over HTTP: ``POST /v1/companies/{company}/tasks/{task}:enqueue`` answers 202
with ``Operation-Location``, ``Operation-Id`` and ``Retry-After``; a client's key
(``Operation-Id``, ``Repeatability-Request-ID`` or ``requestId``) makes it idempotent."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query, Request, Response

from longops.api.deps import Caller, NamePath, acts, call, company_of, services
from longops.api.errors import ApiError
from longops.api.models import CLIENT_KEY_PATTERN, EnqueueBody, OperationModel
from longops.api.presenting import ERRORS, prefer_wait, reply, wait_done
from longops.core.enqueue import EnqueueRequest
from longops.domain.errors import ValidationError

T = TypeVar("T")

router = APIRouter(prefix="/v1/companies/{company}", tags=["operations"])

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
    response_model=OperationModel,
    response_model_exclude_unset=True,  # no null result/error while not applicable
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
    response: Response,
    view: Caller,
    validate_only: Annotated[bool, Query(alias="validateOnly")] = False,
    operation_id: Annotated[
        str | None, Header(alias="Operation-Id", pattern=CLIENT_KEY_PATTERN)
    ] = None,
    repeatability: Annotated[
        str | None, Header(alias="Repeatability-Request-ID", pattern=CLIENT_KEY_PATTERN)
    ] = None,
    prefer: Annotated[str | None, Header(alias="Prefer")] = None,
) -> OperationModel:
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
        response.status_code = 200
        response.headers["Cache-Control"] = "no-store"
        return OperationModel(
            name=f"companies/{company}/operations/-",
            id="-",
            status="NotStarted",
            done=False,
            percentComplete=None,
            metadata={
                "validateOnly": True,
                "task": task,
                "company": company,
                "createTime": now.isoformat(),
            },
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
        status = 200 if op.done else 202
        return await reply(response, request, view, company, op, status=status, extra=extra)
    return await reply(response, request, view, company, op, status=202, extra=extra)
