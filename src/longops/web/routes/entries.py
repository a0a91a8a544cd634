"""The Job Queue Entries list (``/c/{company}/entries``): filter, status facets, paging,
and the bulk actions on the rows chosen or on everything the filter matches."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from longops.domain.errors import LongopsError, ValidationError
from longops.domain.filters import SortKey
from longops.web import present
from longops.web.context import PageError, safe_path
from longops.web.deps import Csrf, PagesDep
from longops.web.listing import (
    SORTABLE,
    cursor_of,
    cursor_params,
    entries_filter,
    entries_query,
    facet_view,
    matching_ids,
    named,
    sort_headers,
    sort_of,
)
from longops.web.operations import find, operation_uuid, rows_of, run_action
from longops.web.pages import PAGE_SIZE, here

router = APIRouter()


@router.get("/c/{company}/entries", response_class=HTMLResponse)
def entries(
    request: Request,
    company: str,
    pages: PagesDep,
    after: Annotated[int | None, Query(ge=0)] = None,
    after_value: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    ctx = pages.context(request, company)
    flt = entries_filter(request.query_params)
    key, descending = sort_of(flt)
    paging: dict[str, Any] = {"cursor": cursor_of(key, after, after_value)}
    if key is SortKey.ENTRY_NO and after is not None:
        paging["before_entry_no" if descending else "after_entry_no"] = after
    query = entries_query(ctx, flt, limit=PAGE_SIZE + 1, **paging)
    ops = ctx.view.service.list_operations(query)
    more = len(ops) > PAGE_SIZE
    ops = ops[:PAGE_SIZE]
    rows = rows_of(pages, ctx, ops, here(request))
    next_link = None
    if more and ops:
        next_link = "?" + urlencode({**flt, **cursor_params(key, ops[-1])})
    tasks = pages.app.tasks.names()
    categories = [c.code for c in ctx.view.companies.list_categories(company)]
    folded = {k: v for k, v in flt.items() if k in ("task", "category", "user")}
    return pages.render(
        "entries.html",
        ctx,
        stream=f"{ctx.base}/stream?"
        + urlencode(
            {
                "view": "list",
                "rows": ",".join(str(op.id) for op in ops),
                "next": here(request),
            }
        ),
        title="My operations" if flt.get("mine") == "1" else "Job Queue Entries",
        rows=rows,
        flt=flt,
        **facet_view(ctx, flt),
        next_link=next_link,
        first_link=("?" + urlencode(flt)) if after is not None else None,
        can_act=present.can_act_somewhere(ctx.actor, company),
        tasks=tasks,
        categories=categories,
        here=here(request),
        heads=sort_headers(flt),
        folded_count=len(folded),
        order=_order_words(key, descending),
        sort_name=key.value,
        sort_desc=descending,
    )


def _order_words(key: SortKey, descending: bool) -> str:
    """The table's caption part: 'newest first', 'by Ended, latest first'."""
    if key is SortKey.ENTRY_NO:
        return "newest first" if descending else "oldest first"
    label = SORTABLE[key.value].label
    if key in (SortKey.DESCRIPTION, SortKey.USER):
        return f"by {label}, " + ("Z to A" if descending else "A to Z")
    if key is SortKey.PRIORITY:
        return f"by {label}, " + ("low first" if descending else "high first")
    return f"by {label}, " + ("largest first" if descending else "smallest first")


@router.post("/c/{company}/entries/bulk", response_class=HTMLResponse)
def bulk(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    action: Annotated[str, Form()] = "",
    ids: Annotated[list[str] | None, Form()] = None,
    all_matching: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    task: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    user: Annotated[str, Form()] = "",
    q: Annotated[str, Form()] = "",
    mine: Annotated[str, Form()] = "",
    stalled: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    ctx = pages.context(request, company)
    if action not in present.BULK_ACTIONS:
        raise ValidationError("action", "must be cancel, restart or delete", action)
    verb = present.BULK_ACTIONS[action]
    if not present.can_act_somewhere(ctx.actor, company):
        # Read-only in this company: nothing here could succeed (core would refuse
        # each one; say so once).
        raise PageError(403, f"{ctx.user} may only read operations in {company}.")
    flt = entries_filter(
        {
            "status": status,
            "task": task,
            "category": category,
            "user": user,
            "q": q,
            "mine": mine,
            "stalled": stalled,
        }
    )
    if all_matching == "1":
        chosen = matching_ids(ctx, flt)
    else:
        chosen = [operation_uuid(i) for i in dict.fromkeys(ids or [])]
    back = next if next and safe_path(next) else f"{ctx.base}/entries"
    if not chosen:
        return pages.back(ctx, back, f"{ctx.base}/entries", "Nothing was selected.")
    if confirmed != "1":
        names, more = named(ctx, chosen)
        one = len(chosen) == 1 and bool(names)
        return pages.render(
            "confirm.html",
            ctx,
            title=f"{verb} {names[0]}?" if one else f"{verb} {_count(len(chosen))}?",
            names=names,
            more=more,
            verb=verb,
            action=action,
            count=len(chosen),
            ids=[] if all_matching == "1" else chosen,
            all_matching=all_matching == "1",
            flt=flt,
            back=back,
        )
    done, refused = 0, 0
    reasons: dict[str, int] = {}
    for oid in chosen:
        try:
            op = find(ctx, str(oid))
            run_action(ctx, action, op)
            done += 1
        except (PageError, LongopsError) as exc:
            refused += 1
            reason = exc.message if isinstance(exc, PageError) else type(exc).__name__
            reasons[reason] = reasons.get(reason, 0) + 1
    past = {"Cancel": "Cancelled", "Restart": "Restarted", "Delete": "Deleted"}[verb]
    notice = f"{past} {_count(done)}."
    if refused:
        notice += (
            f" {_count(refused)} could not be: "
            + ", ".join(f"{n} {_why(r)}" for r, n in reasons.items())
            + "."
        )
    return pages.back(ctx, back, f"{ctx.base}/entries", notice)


def _count(n: int) -> str:
    return f"{n:,} operation" + ("" if n == 1 else "s")


def _why(reason: str) -> str:
    words = {
        "InvalidTransition": "not in a status that allows it",
        "PermissionDenied": "not yours to change",
        "Conflict": "changed meanwhile",
    }
    return words.get(reason, reason)
