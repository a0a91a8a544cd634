"""A company's Overview (``/c/{company}/``): the cues (ready, in process, failed, stalled),
the last hours' finished and failed operations, the longest running; live (the stream's
``overview`` event redraws them when an operation of the company changes status)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from longops.web.deps import PagesDep
from longops.web.overview import overview_values

router = APIRouter()


@router.get("/c/{company}/", response_class=HTMLResponse)
def overview(request: Request, company: str, pages: PagesDep) -> Response:
    ctx = pages.context(request, company)
    return pages.render(
        "overview.html",
        ctx,
        stream=f"{ctx.base}/stream?view=overview",
        title="Overview",
        **overview_values(pages, ctx),
    )
