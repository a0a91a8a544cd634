"""What every route needs: the caller (from its bearer token), the company in the path,
and small helpers shared by the routers. Blocking core calls run in a thread
(``call``), so the event loop keeps serving streams while the database works."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import mmap
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

from longops.api.errors import ApiError
from longops.api.models import OPERATION_ID_PATTERN, UUID_PATTERN
from longops.app import ActorView, Longops
from longops.core.streams import EventHub
from longops.domain.errors import LongopsError, ValidationError
from longops.domain.operation import NAME_RE
from longops.domain.security import PERMISSIONS, FrontEnd
from longops.domain.waiting import WaitContext

T = TypeVar("T")

# Path parameters state the rules core applies, so that a client (or schemathesis) can
# tell a well-formed request from a bad one from the document alone; a value that breaks
# them is 400 naming the parameter, before anything is looked up.
NAME_PATTERN = NAME_RE.pattern
NamePath = Annotated[
    str,
    Path(
        pattern=NAME_PATTERN,
        description="1-100 letters, digits, '_', '.', ':' or '-', starting with a letter or digit.",
    ),
]
OperationIdPath = Annotated[
    str,
    Path(
        pattern=OPERATION_ID_PATTERN,
        description="The operation's id (a UUID) or its entry number.",
    ),
]
UuidPath = Annotated[str, Path(pattern=UUID_PATTERN, description="A UUID.")]

MAX_ID = 2**63 - 1
"""The largest id or entry number a query may name (a signed 64-bit integer)."""

CUSTOM_VERBS = ("pause", "resume", "enable", "disable", "test", "mute", "unmute", "personalEmail")


class _NoColon(StringConvertor):
    """An operation id never holds ':', so ``GET .../operations/X:cancel`` is the custom
    method's path (405), not a read of an operation called ``X:cancel``."""

    regex = "[^/:]+"


class _NotAVerb(StringConvertor):
    """A name (which may hold ':') that does not end in one of the custom methods beside
    its route, so ``PATCH .../categories/X:pause`` is 405, not category ``X:pause``."""

    regex = "[^/]+" + "".join(f"(?<!:{verb})" for verb in CUSTOM_VERBS)


register_url_convertor("lro_id", _NoColon())
register_url_convertor("lro_name", _NotAVerb())

COMPANY_MEMBER = "company_member"
"""Not an action of core: any permission set in the company reaches it (the task list)."""
ACTIONS_KEY = "x-longops-actions"


def acts(*actions: str) -> dict[str, Any]:
    """What a route declares it does, for its OpenAPI entry: the actions of the permission
    table (``domain.security.PERMISSIONS``) that core will decide on. The HTTP authorization
    matrix (tests/api) reads them and fails for a route that declares none.

    Example::

        @router.post("/operations/{operation_id}:hold", openapi_extra=acts("hold"))
    """
    unknown = [a for a in actions if a not in PERMISSIONS and a != COMPANY_MEMBER]
    if not actions or unknown:
        raise ValueError(f"a route must declare actions of the permission table: {unknown}")
    return {ACTIONS_KEY: list(actions)}


bearer = HTTPBearer(auto_error=False, description="An API token (longops users token create).")


class TokenCache:
    """API tokens this process verified in the last ``seconds``, so a client polling
    operations costs one database read per request, not two.

    Only tokens that verified are kept (an unknown or refused one is checked every time,
    so guessing fills nothing). A change of who may do what, here, ends every entry at
    once: any state-changing request this process serves (revoking a token, disabling a
    user, a grant, a sign-out on the pages) calls :meth:`changed`, and a verification that
    began before it is not kept; so does one served by another process of the same
    ``longops serve --processes N`` (:meth:`share`). A change made elsewhere (the CLI, the
    library, another server) is seen at most ``seconds`` late; an expired token likewise.

    Example::

        cache = TokenCache(seconds=1.0)
        view = cache.get(token) or cache.put(token, verify(token), cache.generation)
    """

    MAX_ENTRIES = 10_000

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= seconds <= 60:
            raise ValidationError("api_token_cache_seconds", "must be between 0 and 60", seconds)
        self.seconds = seconds
        self._generation = 0
        self._clock = clock
        self._entries: dict[bytes, tuple[float, ActorView]] = {}
        self._shared: SharedCounter | None = None
        self._seen = b""

    def share(self, counter: SharedCounter) -> None:
        """End the kept tokens whenever any process sharing ``counter`` (the processes of
        one ``longops serve --processes N``) serves a state-changing request: a token
        revoked through one of them is refused by all of them at once."""
        self._shared = counter
        self._seen = counter.read()

    @property
    def generation(self) -> int:
        """Changes whenever the kept tokens end (here, or in a process sharing the count)."""
        self._sync()
        return self._generation

    def _sync(self) -> None:
        if self._shared is not None:
            now = self._shared.read()
            if now != self._seen:
                self._seen = now
                self._generation += 1
                self._entries.clear()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def get(self, token: str) -> ActorView | None:
        if not self.seconds:
            return None
        self._sync()
        key = self._key(token)
        found = self._entries.get(key)
        if found is None:
            return None
        if self._clock() >= found[0]:
            self._entries.pop(key, None)
            return None
        return found[1]

    def put(self, token: str, view: ActorView, generation: int) -> ActorView:
        """Keep ``view`` unless something changed since ``generation`` was read (the
        verification may have seen the state before the change)."""
        if self.seconds and generation == self.generation:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[self._key(token)] = (self._clock() + self.seconds, view)
        return view

    def changed(self) -> None:
        """Something may have changed who may do what: verify every token again (in every
        process sharing the count too)."""
        self._generation += 1
        self._entries.clear()
        if self._shared is not None:
            self._seen = self._shared.bump()


class SharedCounter:
    """Eight bytes in a file that the processes of one server map and bump: a change
    through one of them is seen by the others at their next request (a read of mapped
    memory, no system call). Two bumps at once may count as one: what matters is that
    the value moved.

    Example::

        counter = SharedCounter(path)       # the same path in every process
        counter.bump(); counter.read()
    """

    SIZE = 8

    def __init__(self, path: str) -> None:
        with open(path, "r+b") as file:
            self._map = mmap.mmap(file.fileno(), self.SIZE)

    @classmethod
    def create(cls, path: str) -> None:
        """Make the file the processes will map (zeroed)."""
        with open(path, "wb") as file:
            file.write(bytes(cls.SIZE))

    def read(self) -> bytes:
        return self._map[: self.SIZE]

    def bump(self) -> bytes:
        value = (int.from_bytes(self._map[: self.SIZE], "little") + 1) % 2**64
        self._map[: self.SIZE] = value.to_bytes(self.SIZE, "little")
        return self.read()


class WaitContexts:
    """The wait context (what the wait reasons of ready operations are derived from: eight
    reads of queues, categories, sessions, companies and users, and maintenance mode) this
    process read in the last ``seconds``, per scope of companies, so that a poll of a
    ready operation costs one database read, not three. The operation itself is read on
    every request; only what its wait reason is derived from may be that old.

    It ends with the API tokens' cache (``TokenCache.changed``): any state-changing request
    this server serves, in any of its processes (pausing a queue, a category's limit,
    maintenance mode, disabling a user) ends it when it starts and again when it is done,
    so a client that changed something sees it in its next read. A change made elsewhere
    (a worker claiming or finishing, the CLI, another server) shows at most ``seconds``
    late.

    Example::

        waits = WaitContexts(1.0, tokens)
        view.service.wait_reasons(ops, waits.context(view))
    """

    MAX_ENTRIES = 1_000

    def __init__(
        self, seconds: float, tokens: TokenCache, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not 0 <= seconds <= 60:
            raise ValidationError("api_wait_context_seconds", "must be between 0 and 60", seconds)
        self.seconds = seconds
        self._tokens = tokens
        self._clock = clock
        self._entries: dict[frozenset[str] | None, tuple[int, float, WaitContext]] = {}

    def context(self, view: ActorView) -> WaitContext | None:
        """The caller's scope's wait context read lately, or read now (None: read it with
        the reasons, as ever, when ``seconds`` is 0)."""
        if not self.seconds:
            return None
        scope = view.actor.scope()
        generation = self._tokens.generation
        found = self._entries.get(scope)
        if found is not None and found[0] == generation and self._clock() < found[1]:
            return found[2]
        began = self._clock()
        read = view.service.wait_context()
        if generation == self._tokens.generation:  # nothing changed meanwhile
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[scope] = (generation, began + self.seconds, read)
        return read


_WAITS: weakref.WeakKeyDictionary[Longops, WaitContexts] = weakref.WeakKeyDictionary()
"""The wait contexts the API of each application keeps (``create_api`` sets it)."""


def keep_wait_contexts(app: Longops, waits: WaitContexts) -> None:
    _WAITS[app] = waits


def wait_context(view: ActorView) -> WaitContext | None:
    """The wait context the API keeps for the caller's scope (None: read one now)."""
    waits = _WAITS.get(view.app)
    return None if waits is None else waits.context(view)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class EndsCachedTokens:
    """ASGI middleware: a state-changing HTTP request ends the cached tokens, when it
    starts and again when it is done (its change is committed by then)."""

    def __init__(self, app: ASGIApp, cache: TokenCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        self.cache.changed()
        try:
            await self.app(scope, receive, send)
        finally:
            self.cache.changed()


@dataclass
class Services:
    """What the API is built on: the application, the event hub of this process, and
    the API tokens it verified lately."""

    app: Longops
    hub: EventHub
    tokens: TokenCache


def services(request: Request) -> Services:
    found: Services = request.app.state.longops
    return found


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking core call in a worker thread (the store's scope travels with it)."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ActorView:
    """The actor the bearer token names; 401 without a valid one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401,
            "Unauthenticated",
            "an API token is needed: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    svc = services(request)
    text = credentials.credentials
    cached = svc.tokens.get(text)
    if cached is not None:
        return cached
    generation = svc.tokens.generation
    try:
        view = await call(svc.app.authenticate, text, FrontEnd.API)
    except LongopsError:
        # The same answer for a malformed, unknown, revoked, expired or disabled token.
        raise ApiError(
            401,
            "Unauthenticated",
            "the API token is not valid",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    return svc.tokens.put(text, view, generation)


Caller = Annotated[ActorView, Depends(caller)]


_KNOWN: weakref.WeakKeyDictionary[Longops, set[str]] = weakref.WeakKeyDictionary()
"""Companies seen to exist, per application (companies are never deleted)."""


def known_company(view: ActorView, company: str) -> bool:
    """Whether the caller surely reaches the company in the path, without a database read
    (False: ask ``company_of``, which may read)."""
    actor = view.actor
    if not actor.is_super:
        return company in actor.companies
    return company in _KNOWN.get(view.app, ())


async def company_of(view: ActorView, company: str) -> str:
    """The company in the path, if the caller holds a permission set in it; another
    company is not found (its existence does not leak), and for SUPER neither is one
    that does not exist."""
    actor = view.actor
    if not actor.is_super:
        if company not in actor.companies:
            raise ApiError(404, "CompanyNotFound", f"company {company} not found")
        return company
    known = _KNOWN.setdefault(view.app, set())
    if company not in known:
        names = {c.name for c in await call(view.companies.list_companies)}
        known.update(names)
        if company not in names:
            raise ApiError(404, "CompanyNotFound", f"company {company} not found")
    return company


def encode_token(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(text: str) -> dict[str, Any]:
    try:
        padded = text + "=" * (-len(text) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(
            400,
            "InvalidArgument",
            "pageToken: is not a page token of this list",
            target="pageToken",
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "InvalidArgument",
            "pageToken: is not a page token of this list",
            target="pageToken",
        )
    return data
