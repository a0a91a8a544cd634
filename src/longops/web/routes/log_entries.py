"""The Log Entries page (``/c/{company}/log-entries``): every attempt of every operation,
filtered by task, outcome and start time; an admin deletes those older than some days."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from longops.domain.operation import Outcome
from longops.domain.security import Action, Verdict, decide
from longops.web.deps import Csrf, PagesDep
from longops.web.forms import parse_local, whole_number
from longops.web.pages import PAGE_SIZE

router = APIRouter()


@router.get("/c/{company}/log-entries", response_class=HTMLResponse)
def log_entries(
    request: Request,
    company: str,
    pages: PagesDep,
    task: str = "",
    outcome: str = "",
    started_from: str = "",
    started_to: str = "",
    after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    ctx = pages.context(request, company)
    flt = {
        k: v
        for k, v in (
            ("task", task),
            ("outcome", outcome),
            ("started_from", started_from),
            ("started_to", started_to),
        )
        if v
    }
    found = ctx.view.read_models.list_attempts(
        company,
        task=task or None,
        outcome=outcome or None,
        started_from=parse_local(started_from, ctx, "started_from"),
        started_to=parse_local(started_to, ctx, "started_to"),
        before_entry_no=after,
        limit=PAGE_SIZE + 1,
    )
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    next_link = None
    if more and found:
        next_link = "?" + urlencode({**flt, "after": found[-1].attempt.id})
    return pages.render(
        "log_entries.html",
        ctx,
        title="Log Entries",
        entries=found,
        flt=flt,
        outcomes=[o.value for o in Outcome],
        tasks=pages.app.tasks.names(),
        next_link=next_link,
        first_link=("?" + urlencode(flt)) if after is not None else None,
        admin=decide(ctx.actor, Action.DELETE_LOG_ENTRIES, company=company) is Verdict.ALLOWED,
    )


@router.post("/c/{company}/log-entries/delete")
def delete_log_entries(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    older_than_days: Annotated[str, Form()] = "7",
) -> Response:
    ctx = pages.context(request, company, header=False)
    days = whole_number("older_than_days", older_than_days, 7)
    n = ctx.view.service.delete_log_entries(company, older_than_days=days)
    return pages.back(
        ctx,
        None,
        f"{ctx.base}/log-entries",
        f"Deleted {n:,} log entr{'y' if n == 1 else 'ies'} older than {days} days.",
    )
