"""A company's Overview (``/c/{company}/``): the cues (ready, in process, failed, stalled),
the last hours' finished and failed operations, the longest running."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from longops.domain.read_models import format_count
from longops.web import present
from longops.web.deps import PagesDep

router = APIRouter()


@router.get("/c/{company}/", response_class=HTMLResponse)
def overview(request: Request, company: str, pages: PagesDep) -> Response:
    ctx = pages.context(request, company)
    view = ctx.view.read_models.overview(company)
    cues = [
        ("Ready", view.ready, {"status": "ready"}),
        ("In process", view.in_process, {"status": "in_process"}),
        ("Failed", view.failed, {"status": "error"}),
        ("My failures", view.my_failures, {"status": "error", "mine": "1"}),
        ("Stalled", view.stalled, {"status": "in_process", "stalled": "1"}),
    ]
    buckets = [(b.finished, b.failed) for b in view.per_hour]
    return pages.render(
        "overview.html",
        ctx,
        title="Overview",
        cues=[(label, format_count(n), urlencode(q)) for label, n, q in cues],
        chart=present.bars(buckets),
        chart_hours=[present.local(b.start, ctx.zone)[11:16] for b in view.per_hour],
        chart_total_finished=sum(f for f, _ in buckets),
        chart_total_failed=sum(e for _, e in buckets),
        chart_top=max([max(f, e) for f, e in buckets] or [0]),
        zone_name=ctx.zone.key,
        longest=view.longest_running,
        now=pages.app.clock.now(),
    )
