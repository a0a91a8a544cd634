"""The shapes of request and response bodies, as the OpenAPI document states them.

Every route that answers JSON declares one of these as its ``response_model`` and returns
an instance of it, so the schema a client (or schemathesis) checks against is the one the
answer was made from. A response model names its fields in the order they are sent (an
``Open`` model sends the fields it does not name after them), and routes whose answer
leaves optional fields out send only the fields that were set (``exclude_unset``).

Example::

    @router.get("/v1/queues", response_model=QueueList)
    async def list_queues(view: Caller) -> QueueList:
        return QueueList(paused=sorted(await call(view.companies.paused_queues)))
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from longops.core.security import MAX_PASSWORD, MIN_PASSWORD
from longops.domain.operation import NAME_RE
from longops.domain.users import EMAIL_PATTERN

Name = Annotated[str, StringConstraints(pattern=NAME_RE.pattern)]
"""A company, category, queue, user or token name, as core accepts it."""
UUID_PATTERN = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
CLIENT_KEY_PATTERN = r"^[\x21-\x7e]{1,128}$"
"""A client's idempotency key (``Operation-Id``, ``Repeatability-Request-ID``,
``requestId``): a UUID, or any 1 to 128 printable ASCII characters without spaces."""
TEXT_PATTERN = r"^[^\x00]*$"
"""Text that PostgreSQL can hold (no NUL)."""
OPERATION_ID_PATTERN = (
    r"^(?:[0-9]{1,18}|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
    r"[0-9a-fA-F]{12})$"
)
"""An operation's id (a UUID) or its entry number."""


def _text_only(value: Any) -> Any:
    # Lax pydantic reads a number as a Unix time; the document says RFC 3339 text.
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 time with an offset (a string)")
    return value


Time = Annotated[AwareDatetime, BeforeValidator(_text_only)]
"""An RFC 3339 time with its offset."""


def _number_only(value: Any) -> Any:
    # JSON Schema counts 3.0 as an integer, so strict pydantic (which refuses it) is too
    # strict; but "3" and true are not numbers.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    return value


NUMBER = BeforeValidator(_number_only)
"""With ``Field(strict=False)``, an integer field takes 3 or 3.0 but never "3" or true (the
constraints go before it, or the document loses them)."""

StatusName = Literal[
    "on_hold", "ready", "in_process", "finished", "error", "cancelled",
    "NotStarted", "Running", "Succeeded", "Failed", "Canceled",
]  # fmt: skip
"""A status filter: ours (``Status``) or Azure's."""
OrderBy = Literal["createTime desc", "createTime", "createTime asc", "entryNo", "entryNo desc"]
TimeText = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
"""A time in a filter: RFC 3339 text, read by the list's own parser (which names it)."""


SSE_EVENTS: dict[str, Any] = {
    "type": "object",
    "description": "One Server-Sent Event: its name, id (for Last-Event-ID) and JSON data.",
    "properties": {
        "event": {"type": "string"},
        "id": {"type": "string"},
        "data": {"type": "string"},
        "retry": {"type": "integer"},
    },
}
"""How each event of a live stream is described (the stream is a sequence of them)."""


def unstorable(value: Any) -> str | None:
    """Why ``value`` (or text anywhere inside it) cannot be stored, or None.

    PostgreSQL text holds no NUL character, and UTF-8 no unpaired surrogate (which JSON's
    ``\\ud800`` escape can still spell).

    Example::

        unstorable({"a": ["x\\x00"]})   # 'must not contain NUL characters'
    """
    if isinstance(value, str):
        if "\x00" in value:
            return "must not contain NUL characters"
        if any("\ud800" <= ch <= "\udfff" for ch in value):
            return "must not contain unpaired surrogates"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unstorable(key) or unstorable(item)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for item in value:
            found = unstorable(item)
            if found:
                return found
    return None


class Body(BaseModel):
    """A request body: no unknown fields, and no coercion (``"1"`` is not a number, ``0``
    is not false), so what the document calls bad is refused; and no text that cannot be
    stored (NUL, unpaired surrogates), named by its field."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        problem = unstorable(value)
        if problem:
            raise ValueError(problem)
        return value


GrantedSet = Literal["JOBQUEUE-VIEW", "JOBQUEUE-USER", "JOBQUEUE-ADMIN"]


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
    target: str | None = None
    details: list[dict[str, Any]] = Field(default_factory=list)
    innererror: dict[str, Any] | None = None
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
    operationId: str
    company: str
    at: str
    type: str
    runNo: int | None = None
    data: dict[str, Any]
    name: str


class EventList(BaseModel):
    events: list[EventModel]
    nextPageToken: str | None = None


class EnqueueBody(Body):
    """What to run and how; every option but the arguments falls back to the task's."""

    args: list[Any] = Field(default_factory=list, description="Positional arguments.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")
    description: str | None = Field(default=None, max_length=250)
    queue: Name | None = None
    category: Name | None = Field(default=None, description="An existing category's code.")
    priority: Literal["high", "normal", "low"] | None = None
    delay: float | None = Field(default=None, ge=0, le=366 * 86400, description="Seconds.")
    scheduleTime: Time | None = Field(default=None, strict=False, description="Earliest start.")
    expireTime: Time | None = Field(default=None, strict=False)
    maxAttempts: Annotated[int, Field(strict=False, ge=1, le=100), NUMBER] | None = None
    rerunDelay: Annotated[int, Field(strict=False, ge=0, le=3600), NUMBER] | None = None
    timeout: float | None = Field(default=None, ge=1, le=7 * 86400, description="Seconds.")
    recurrence: str | dict[str, Any] | None = None
    labels: (
        dict[
            Annotated[str, StringConstraints(min_length=1, max_length=63)],
            Annotated[str, StringConstraints(max_length=250)],
        ]
        | None
    ) = None
    dedupKey: str | None = Field(default=None, min_length=1, max_length=250)
    onHold: bool = False
    requestId: str | None = Field(
        default=None,
        pattern=CLIENT_KEY_PATTERN,
        description="An Operation-Id given in the body (AIP-155 spelling).",
    )

    model_config = ConfigDict(json_schema_extra={"not": {"required": ["delay", "scheduleTime"]}})

    @model_validator(mode="before")
    @classmethod
    def _delay_or_time(cls, data: Any) -> Any:
        if isinstance(data, dict) and "delay" in data and "scheduleTime" in data:
            raise PydanticCustomError(
                "delay_or_time",
                "give either delay or scheduleTime, not both (leave one out)",
                {"field": "delay"},
            )
        return data


class CancelBody(Body):
    reason: str | None = Field(default=None, max_length=500)
    force: bool = Field(default=False, description="Skip the grace period (admins).")


class WaitBody(Body):
    timeout: float | None = Field(
        default=None, ge=0, le=60, description="Seconds to wait at most (default 30)."
    )


class BatchFilter(Body):
    """The list's query parameters, as a batch's filter."""

    status: list[StatusName] | StatusName | None = None
    task: str | None = None
    category: str | None = None
    queue: str | None = None
    user: str | None = None
    createdAfter: TimeText | None = None
    createdBefore: TimeText | None = None
    startedAfter: TimeText | None = None
    startedBefore: TimeText | None = None
    q: str | None = Field(default=None, max_length=200)
    orderBy: OrderBy | None = None


def _ids_or_filter(schema: dict[str, Any]) -> None:
    """The document says what the validator does: exactly one of ids and filter."""
    for key in ("ids", "filter"):
        prop = schema["properties"][key]
        prop.update(next(v for v in prop.pop("anyOf") if v.get("type") != "null"))
        prop.pop("default", None)
    schema["oneOf"] = [{"required": ["ids"]}, {"required": ["filter"]}]


class BatchBody(Body):
    """Operations by id, or every one matching a filter (the list's query parameters)."""

    ids: list[Annotated[str, Field(pattern=OPERATION_ID_PATTERN)]] | None = Field(
        default=None, max_length=1000
    )
    filter: BatchFilter | None = None
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="before")
    @classmethod
    def _one_of(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [k for k in ("ids", "filter") if data.get(k) is not None]
            if len(given) != 1 or any(data.get(k, []) is None for k in ("ids", "filter")):
                raise ValueError("give either ids or filter (one of them, not null)")
        return data

    model_config = ConfigDict(json_schema_extra=_ids_or_filter)


class BatchEntry(BaseModel):
    """One requested id's outcome (``operationId`` once found; ``code`` and ``message``
    when not ok)."""

    id: str
    operationId: str | None = None
    ok: bool
    code: str | None = None
    message: str | None = None


class BatchResult(BaseModel):
    matched: int
    processed: int
    failed: int
    results: list[BatchEntry]


class CategoryBody(Body):
    code: Name
    description: str = Field(default="", max_length=250)
    maxConcurrent: Annotated[int, Field(strict=False, ge=1, le=1000), NUMBER] = 1


class CategoryPatch(Body):
    description: str | None = Field(default=None, max_length=250)
    maxConcurrent: Annotated[int, Field(strict=False, ge=1, le=1000), NUMBER] | None = None


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
    maxAttempts: int
    timeoutSeconds: float
    requires: str | None = None
    argumentsSchema: dict[str, Any]


class TaskList(BaseModel):
    tasks: list[TaskModel]


class UserBody(Body):
    name: Name
    displayName: str | None = Field(default=None, max_length=250)
    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)
    grants: list[Annotated[tuple[Name, GrantedSet], Field(strict=False)]] = Field(
        default_factory=list,  # a JSON array is the tuple (not strict); its items stay strict
        description="(company, permission set) pairs.",
    )
    isSuper: bool = False
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)


class ContactBody(Body):
    """A user's email address and how they are notified (omitted: unchanged)."""

    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    removeEmail: bool = False
    notify: Literal["inbox", "email"] | None = Field(
        default=None, description="inbox: in the app only; email: in the app and by email."
    )


class UserList(BaseModel):
    users: list[dict[str, Any]]


class TokenBody(Body):
    name: Name = "default"
    expiresInDays: float | None = Field(default=90, gt=0, le=3650)


class TokenCreated(Open):
    token: str
    record: dict[str, Any]


class UserModel(Open):
    """A user (core's JSON of a user)."""

    name: str
    display_name: str | None = None
    state: str
    super: bool


class ContactModel(BaseModel):
    name: str
    email: str | None
    notify: Literal["inbox", "email"]


class SessionModel(Open):
    """A worker session (core's JSON of a session)."""

    id: str
    host: str
    pid: int


class TokenList(BaseModel):
    tokens: list[dict[str, Any]]


class AuditList(BaseModel):
    entries: list[dict[str, Any]]


class RuleModel(Open):
    """A notification rule."""

    name: str
    on: str
    to: list[str]


class RuleList(Open):
    rules: list[RuleModel]


class RuleMuted(BaseModel):
    rule: str
    muted: bool


class AdminList(BaseModel):
    admins: list[str]


class AdminAdded(BaseModel):
    user: str


class ChannelModel(BaseModel):
    """A notification channel; its URL masked (it is write-only)."""

    name: str
    url: str
    schema_: str = Field(alias="schema")
    rateLimit: int | None
    rateWindow: int


class ChannelList(Open):
    channels: list[ChannelModel]


class ChannelTested(BaseModel):
    sent: bool
    error: str | None


class PersonalEmailChannel(BaseModel):
    personalEmailChannel: str


class DeliveryList(Open):
    deliveries: list[dict[str, Any]]


class DeliveryRetried(BaseModel):
    id: int
    status: Literal["pending"]


class Health(BaseModel):
    status: str
    checks: dict[str, Any] = Field(default_factory=dict)
