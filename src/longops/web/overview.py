"""The Overview's live part (cues, chart, longest running), shared by its page
(``routes/overview.py``) and the live stream, which redraws it when an operation of the
company changes status (at most every ``stream.OVERVIEW_EVERY`` seconds).

Example::

    html = overview_html(pages, ctx)      # <div id="overview-live" sse-swap="overview" ...>
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from longops.domain.read_models import format_count
from longops.web import present
from longops.web.context import Context
from longops.web.pages import Pages


def overview_values(pages: Pages, ctx: Context) -> dict[str, Any]:
    """What the Overview shows now, as the signed-in user sees the company."""
    view = ctx.view.read_models.overview(ctx.company)
    cues = [
        ("Ready", view.ready, {"status": "ready"}),
        ("In process", view.in_process, {"status": "in_process"}),
        ("Failed", view.failed, {"status": "error"}),
        ("My failures", view.my_failures, {"status": "error", "mine": "1"}),
        ("Stalled", view.stalled, {"status": "in_process", "stalled": "1"}),
    ]
    buckets = [(b.finished, b.failed) for b in view.per_hour]
    minutes = view.per_hour[0].minutes if view.per_hour else 60
    return {
        "cues": [(label, format_count(n), urlencode(q)) for label, n, q in cues],
        "chart": present.bars(buckets),
        "chart_hours": [present.local(b.start, ctx.zone)[11:16] for b in view.per_hour],
        "chart_span": "24 hours" if minutes == 60 else f"{minutes * 24 // 60} hours",
        "chart_bucket": "hour" if minutes == 60 else f"{minutes} minutes",
        "chart_total_finished": sum(f for f, _ in buckets),
        "chart_total_failed": sum(e for _, e in buckets),
        "chart_top": max([max(f, e) for f, e in buckets] or [0]),
        "zone_name": ctx.zone.key,
        "longest": view.longest_running,
        "now": pages.app.clock.now(),
    }


def overview_html(pages: Pages, ctx: Context) -> str:
    return pages.fragment(
        "_overview_live.html", ctx=ctx, base=ctx.base, **overview_values(pages, ctx)
    )
