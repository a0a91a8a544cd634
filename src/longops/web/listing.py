"""The Job Queue Entries list's filter (from the query string or a bulk form) and its
status facets, shared by the list's routes and the live stream that recounts the facets.

Example::

    flt = entries_filter(request.query_params)     # {"status": "error", "mine": "1"}
    ops = ctx.view.service.list_operations(entries_query(ctx, flt, limit=51))
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from longops.domain.errors import ValidationError
from longops.domain.filters import OperationFilter
from longops.domain.read_models import format_count
from longops.domain.status import Status
from longops.web.context import Context
from longops.web.pages import Pages

BULK_LIMIT = 10_000
"""At most this many operations in one bulk action (all matching a filter)."""


def entries_filter(params: Mapping[str, str | None]) -> dict[str, str]:
    """The list's filter as given (only known, non-empty keys), for links and forms."""
    keys = ("status", "task", "category", "user", "q", "mine", "stalled")
    return {k: str(v) for k in keys if (v := params.get(k)) not in (None, "")}


def entries_query(ctx: Context, flt: Mapping[str, str], **extra: Any) -> OperationFilter:
    """The core filter the list's filter stands for, in the page's company."""
    statuses: tuple[Status, ...] = ()
    if "status" in flt:
        try:
            statuses = (Status(flt["status"]),)
        except ValueError:
            raise ValidationError(
                "status", f"must be one of {', '.join(s.value for s in Status)}", flt["status"]
            ) from None
    user = flt.get("user")
    if flt.get("mine") == "1":
        user = ctx.view.actor.user
    stalled = {"1": True, "0": False}.get(flt.get("stalled", ""))
    return OperationFilter(
        company=ctx.company,
        statuses=statuses,
        task=flt.get("task"),
        category=flt.get("category"),
        user=user,
        text=flt.get("q"),
        stalled=stalled,
        descending=True,
        **extra,
    )


def matching_ids(ctx: Context, flt: Mapping[str, str]) -> list[uuid.UUID]:
    """Every operation the filter matches (newest first), at most BULK_LIMIT."""
    ids: list[uuid.UUID] = []
    before: int | None = None
    while len(ids) < BULK_LIMIT:
        page = ctx.view.service.list_operations(
            entries_query(ctx, flt, limit=1000, before_entry_no=before)
        )
        ids.extend(op.id for op in page)
        if len(page) < 1000:
            break
        before = page[-1].entry_no
    return ids[:BULK_LIMIT]


def facet_counts(ctx: Context, flt: Mapping[str, str]) -> dict[Status, str]:
    """Per status, how many operations the rest of the filter matches ("10,000+" past the cap)."""
    counts = ctx.view.read_models.status_counts(ctx.company, query=entries_query(ctx, flt))
    return {s: format_count(counts.get(s, 0)) for s in Status}


def facet_view(ctx: Context, flt: Mapping[str, str]) -> dict[str, Any]:
    """What the status facets show: per status its count and link, and the All link."""
    counts = facet_counts(ctx, flt)
    rest = {k: v for k, v in flt.items() if k != "status"}
    links = [
        (s, counts[s], "?" + urlencode({**rest, "status": s.value}), flt.get("status") == s.value)
        for s in Status
    ]
    return {
        "facets": links,
        "all_link": "?" + urlencode(rest),
        "all_active": "status" not in flt,
    }


def facets_html(pages: Pages, ctx: Context, flt: Mapping[str, str]) -> str:
    return pages.fragment("_facets.html", **facet_view(ctx, flt))
