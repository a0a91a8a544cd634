"""What every route needs: the caller (from its bearer token), the company in the path,
and small helpers shared by the routers. Blocking core calls run in a thread
(``call``), so the event loop keeps serving streams while the database works."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from longops.api.errors import ApiError
from longops.app import ActorView, Longops
from longops.core.streams import EventHub
from longops.domain.errors import LongopsError
from longops.domain.security import FrontEnd

T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description="An API token (longops users token create).")


@dataclass
class Services:
    """What the API is built on: the application, and the event hub of this process."""

    app: Longops
    hub: EventHub


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
    try:
        return await call(svc.app.authenticate, credentials.credentials, FrontEnd.API)
    except LongopsError:
        # The same answer for a malformed, unknown, revoked, expired or disabled token.
        raise ApiError(
            401,
            "Unauthenticated",
            "the API token is not valid",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None


Caller = Annotated[ActorView, Depends(caller)]


def company_of(view: ActorView, company: str) -> str:
    """The company in the path, if the caller holds a permission set in it; another
    company is not found (its existence does not leak)."""
    actor = view.actor
    if not actor.is_super and company not in actor.companies:
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
