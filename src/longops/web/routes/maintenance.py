"""The Maintenance mode page (``/c/{company}/maintenance``): where a SUPER user starts and
stops it; every signed-in page shows its banner (``present.maintenance_now``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from longops.domain.errors import ValidationError
from longops.domain.maintenance import DEFAULT_DRAIN_TIMEOUT
from longops.domain.security import Action, Verdict, decide
from longops.web.context import Context
from longops.web.deps import Csrf, PagesDep
from longops.web.pages import Pages

router = APIRouter()

PATH = "/c/{company}/maintenance"


def _render(
    pages: Pages, ctx: Context, status: int = 200, *, error: str | None = None
) -> HTMLResponse:
    return pages.render(
        "maintenance.html",
        ctx,
        status,
        title="Maintenance mode",
        mode=ctx.view.maintenance.status(),
        may_set=decide(ctx.actor, Action.SET_MAINTENANCE) is Verdict.ALLOWED,
        default_timeout=DEFAULT_DRAIN_TIMEOUT,
        error=error,
    )


@router.get(PATH, response_class=HTMLResponse)
def maintenance(request: Request, company: str, pages: PagesDep) -> Response:
    return _render(pages, pages.context(request, company))


@router.post(f"{PATH}/start", response_class=HTMLResponse)
def start(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    reason: Annotated[str, Form()] = "",
    drain_timeout: Annotated[str, Form()] = "",
) -> Response:
    ctx = pages.context(request, company, header=False)
    try:
        try:
            seconds = float(drain_timeout) if drain_timeout.strip() else None
        except ValueError:
            raise ValidationError(
                "drain_timeout", "must be a number of seconds", drain_timeout
            ) from None
        ctx.view.maintenance.start(reason=reason, drain_timeout=seconds)
    except ValidationError as exc:
        pages.fill_header(ctx)
        return _render(pages, ctx, 400, error=f"{exc.field}: {exc.rule}.")
    return pages.back(ctx, None, f"{ctx.base}/maintenance", "Maintenance mode started.")


@router.post(f"{PATH}/stop", response_class=HTMLResponse)
def stop(request: Request, company: str, pages: PagesDep, _: Csrf) -> Response:
    ctx = pages.context(request, company, header=False)
    ctx.view.maintenance.stop()
    return pages.back(ctx, None, f"{ctx.base}/maintenance", "Maintenance mode stopped.")
