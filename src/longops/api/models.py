"""The shapes of request and response bodies, as the OpenAPI document states them.

Responses are built as plain JSON (``representation.py``) and documented with these
models, so the schema a client (or schemathesis) checks against is the one served.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    """A JSON object that may carry more fields than it names."""

    model_config = ConfigDict(extra="allow")


class ErrorInfo(Open):
    reason: str
    domain: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(Open):
    code: str
    message: str
    target: str | None = None
    details: list[dict[str, Any]] = Field(default_factory=list)
    innererror: dict[str, Any] | None = None
    status: str
    httpCode: int


class ErrorResponse(BaseModel):
    error: ErrorBody


class OperationError(Open):
    code: str
    message: str
    status: str
    rpcCode: int


class OperationModel(Open):
    """An operation: Google (name, done, metadata, error, response) and Azure (id, status,
    error, result) fields at once."""

    name: str
    id: str
    status: Literal["NotStarted", "Running", "Succeeded", "Failed", "Canceled"]
    done: bool
    percentComplete: float | None = None
    metadata: dict[str, Any]
    result: Any = None
    response: Any = None
    error: OperationError | None = None


class OperationList(BaseModel):
    operations: list[OperationModel]
    nextPageToken: str | None = None
    nextLink: str | None = None


class AttemptList(BaseModel):
    attempts: list[dict[str, Any]]


class EventModel(Open):
    id: int
    operation_id: str
    company: str
    at: str
    type: str
    run_no: int | None = None
    data: dict[str, Any]


class EventList(BaseModel):
    events: list[EventModel]
    nextPageToken: str | None = None


class EnqueueBody(BaseModel):
    """What to run and how; every option but the arguments falls back to the task's."""

    model_config = ConfigDict(extra="forbid")

    args: list[Any] = Field(default_factory=list, description="Positional arguments.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")
    description: str | None = Field(default=None, max_length=250)
    queue: str | None = None
    category: str | None = None
    priority: Literal["high", "normal", "low"] | None = None
    delay: float | None = Field(default=None, ge=0, le=366 * 86400, description="Seconds.")
    scheduleTime: datetime | None = Field(default=None, description="Earliest start.")
    expireTime: datetime | None = None
    maxAttempts: int | None = Field(default=None, ge=1, le=100)
    rerunDelay: int | None = Field(default=None, ge=0, le=3600)
    timeout: float | None = Field(default=None, ge=1, le=7 * 86400, description="Seconds.")
    recurrence: str | dict[str, Any] | None = None
    labels: dict[str, str] | None = None
    dedupKey: str | None = Field(default=None, min_length=1, max_length=250)
    onHold: bool = False
    requestId: str | None = Field(
        default=None, description="An Operation-Id given in the body (AIP-155 spelling)."
    )


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)
    force: bool = Field(default=False, description="Skip the grace period (admins).")


class WaitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout: float = Field(default=30, ge=0, le=60, description="Seconds to wait at most.")


class BatchBody(BaseModel):
    """Operations by id, or every one matching a filter (the list's query parameters)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(default=None, max_length=1000)
    filter: dict[str, Any] | None = None
    reason: str | None = Field(default=None, max_length=500)


class BatchResult(BaseModel):
    matched: int
    processed: int
    failed: int
    results: list[dict[str, Any]]


class CategoryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=250)
    maxConcurrent: int = Field(default=1, ge=1, le=1000)


class CategoryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=250)
    maxConcurrent: int | None = Field(default=None, ge=1, le=1000)


class CategoryModel(Open):
    company: str
    code: str
    description: str
    maxConcurrent: int
    paused: bool


class CategoryList(BaseModel):
    categories: list[CategoryModel]


class QueueList(BaseModel):
    paused: list[str]


class SessionList(BaseModel):
    sessions: list[dict[str, Any]]


class TaskModel(Open):
    name: str
    description: str | None = None
    queue: str
    category: str | None = None
    isolation: str
    argumentsSchema: dict[str, Any]


class TaskList(BaseModel):
    tasks: list[TaskModel]


class UserBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    displayName: str | None = Field(default=None, max_length=250)
    password: str | None = Field(default=None, min_length=1, max_length=1000)
    grants: list[tuple[str, str]] = Field(
        default_factory=list, description="(company, permission set) pairs."
    )
    isSuper: bool = False


class UserList(BaseModel):
    users: list[dict[str, Any]]


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="default", min_length=1, max_length=100)
    expiresInDays: float | None = Field(default=90, gt=0, le=3650)


class TokenCreated(Open):
    token: str
    record: dict[str, Any]


class TokenList(BaseModel):
    tokens: list[dict[str, Any]]


class AuditList(BaseModel):
    entries: list[dict[str, Any]]


class Health(BaseModel):
    status: str
    checks: dict[str, Any] = Field(default_factory=dict)
