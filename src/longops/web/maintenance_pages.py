"""Maintenance mode on the pages: a banner on every page while it is on (with its reason),
and a small page where a SUPER user starts and stops it.

Example::

    add_maintenance(web, pages)      # in web.pages.create_pages
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse

from longops.domain.errors import LongopsError, ValidationError
from longops.domain.maintenance import DEFAULT_DRAIN_TIMEOUT, MaintenanceMode
from longops.domain.security import Action, Verdict, decide
from longops.web.context import Context
from longops.web.pages import Csrf, Pages

PATH = "/c/{company}/maintenance"


def maintenance_now(ctx: Context | None) -> MaintenanceMode | None:
    """Maintenance mode for the banner of ``ctx``'s page, or None while it is off (or when
    it cannot be read: the banner never breaks a page)."""
    if ctx is None:
        return None
    try:
        mode = ctx.view.maintenance.status()
    except LongopsError:
        return None
    return mode if mode.active else None


def add_maintenance(web: FastAPI, pages: Pages) -> None:
    """Add the banner and the page to the pages' app (``web.pages.create_pages``)."""
    pages.env.globals["maintenance_now"] = maintenance_now

    def render(ctx: Context, status: int = 200, *, error: str | None = None) -> HTMLResponse:
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

    @web.get(PATH, response_class=HTMLResponse)
    def maintenance(request: Request, company: str) -> Response:
        return render(pages.context(request, company))

    @web.post(f"{PATH}/start", response_class=HTMLResponse)
    def start(
        request: Request,
        company: str,
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
            return render(ctx, 400, error=f"{exc.field}: {exc.rule}.")
        return pages.back(ctx, None, f"{ctx.base}/maintenance", "Maintenance mode started.")

    @web.post(f"{PATH}/stop", response_class=HTMLResponse)
    def stop(request: Request, company: str, _: Csrf) -> Response:
        ctx = pages.context(request, company, header=False)
        ctx.view.maintenance.stop()
        return pages.back(ctx, None, f"{ctx.base}/maintenance", "Maintenance mode stopped.")
