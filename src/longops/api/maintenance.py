"""Maintenance mode over HTTP: ``GET /v1/maintenance`` (anyone with a token), and
``POST /v1/maintenance:start`` / ``:stop`` (SUPER). While it is on, ready operations carry
the wait reason ``maintenance`` with its reason in their ``waitReason``.

Example::

    POST /v1/maintenance:start   {"reason": "upgrade to 2.0", "drainTimeout": 120}
    GET  /v1/maintenance         {"active": true, "reason": "upgrade to 2.0", ...}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from longops.api.deps import Caller, acts, call
from longops.api.models import Body, Open
from longops.api.operations import ERRORS
from longops.domain.maintenance import (
    DEFAULT_DRAIN_TIMEOUT,
    MAX_DRAIN_TIMEOUT,
    MAX_REASON_CHARS,
    MaintenanceMode,
)

router = APIRouter(tags=["maintenance"])


class MaintenanceModel(Open):
    """Maintenance mode as it stands."""

    active: bool
    reason: str | None = None
    drainTimeout: float = Field(description="Seconds running work may take once it began.")
    startedAt: str | None = Field(default=None, description="When it was last started.")
    stoppedAt: str | None = Field(default=None, description="When it was last stopped.")
    drainDeadline: str | None = Field(
        default=None,
        description="While on: when workers hand back the runs still going (attempt not spent).",
    )


class MaintenanceStart(Body):
    reason: str | None = Field(
        default=None, max_length=MAX_REASON_CHARS, description="Why (shown on the pages)."
    )
    drainTimeout: float = Field(
        default=DEFAULT_DRAIN_TIMEOUT,
        ge=0,
        le=MAX_DRAIN_TIMEOUT,
        description="Seconds running work may take to finish before it is handed back.",
    )


def maintenance_json(mode: MaintenanceMode) -> dict[str, Any]:
    data = mode.to_json()
    return {
        "active": data["active"],
        "reason": data["reason"],
        "drainTimeout": data["drain_timeout"],
        "startedAt": data["started_at"],
        "stoppedAt": data["stopped_at"],
        "drainDeadline": data["drain_deadline"],
    }


@router.get(
    "/v1/maintenance",
    openapi_extra=acts("read_maintenance"),
    response_model=None,
    responses={200: {"model": MaintenanceModel}, **ERRORS},
    summary="Whether maintenance mode is on, and why",
)
async def get_maintenance(view: Caller) -> Response:
    mode = await call(view.maintenance.status)
    return JSONResponse(maintenance_json(mode))


@router.post(
    "/v1/maintenance:start",
    openapi_extra=acts("set_maintenance"),
    response_model=None,
    responses={200: {"model": MaintenanceModel}, **ERRORS},
    summary="Start maintenance mode: workers stop claiming (SUPER)",
)
async def start_maintenance(view: Caller, body: MaintenanceStart | None = None) -> Response:
    args = body or MaintenanceStart()
    mode = await call(view.maintenance.start, reason=args.reason, drain_timeout=args.drainTimeout)
    return JSONResponse(maintenance_json(mode))


@router.post(
    "/v1/maintenance:stop",
    openapi_extra=acts("set_maintenance"),
    response_model=None,
    responses={200: {"model": MaintenanceModel}, **ERRORS},
    summary="Stop maintenance mode: workers claim again (SUPER)",
)
async def stop_maintenance(view: Caller) -> Response:
    mode = await call(view.maintenance.stop)
    return JSONResponse(maintenance_json(mode))
