"""The Job Queue Entries list (``/c/{company}/entries``): filter, status facets, paging,
and the bulk actions on the rows chosen or on everything the filter matches."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from longops.domain.errors import LongopsError, ValidationError
from longops.domain.filters import OperationFilter, SortCursor, SortKey
from longops.domain.operation import Operation
from longops.domain.status import Status
from longops.web import present
from longops.web.context import UNDO_LIMIT, UNDO_SECONDS, Context, PageError, safe_path
from longops.web.deps import Csrf, PagesDep
from longops.web.listing import (
    SORTABLE,
    confirm_page,
    cursor_of,
    cursor_params,
    entries_filter,
    entries_query,
    facet_view,
    id_prefix_note,
    matching_ids,
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
    before: Annotated[int | None, Query(ge=0)] = None,
    before_value: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    ctx = pages.context(request, company)
    flt = entries_filter(request.query_params)
    key, descending = sort_of(flt)
    if after is not None and before is not None:
        raise ValidationError("before", "cannot be given with after (a page goes one way)", before)
    ops, has_previous, has_next = _page(
        ctx, flt, key, descending, after, after_value, before, before_value
    )
    rows = rows_of(pages, ctx, ops, here(request))
    ambiguous = id_prefix_note(flt.get("q"), ops, more=has_next or has_previous)
    next_link = previous_link = None
    if has_next and ops:
        next_link = "?" + urlencode({**flt, **cursor_params(key, ops[-1])})
    if has_previous and ops:
        previous_link = "?" + urlencode({**flt, **cursor_params(key, ops[0], "before")})
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
        previous_link=previous_link,
        id_prefix_note=ambiguous,
        first_link=("?" + urlencode(flt)) if has_previous else None,
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


def _page(
    ctx: Context,
    flt: dict[str, str],
    key: SortKey,
    descending: bool,
    after: int | None,
    after_value: str | None,
    before: int | None,
    before_value: str | None,
) -> tuple[list[Operation], bool, bool]:
    """One page of the list: its operations, and whether there are pages before and after.

    Keyset both ways: a page after a row reads on in the list's order from it; a page
    before a row reads the reverse order from it (every order is total, ties by entry
    number, so its reverse is exact) and turns the rows round. Reaching the start going
    back gives the first page, full."""
    read = ctx.view.service.list_operations
    if before is not None:
        cursor = cursor_of(key, before, before_value, "before_value")
        found = read(_query(ctx, flt, key, not descending, before, cursor))
        if len(found) > PAGE_SIZE:
            return list(reversed(found[:PAGE_SIZE])), True, True
        first = read(_query(ctx, flt, key, descending, None, None))
        return first[:PAGE_SIZE], False, len(first) > PAGE_SIZE
    found = read(_query(ctx, flt, key, descending, after, cursor_of(key, after, after_value)))
    return found[:PAGE_SIZE], after is not None, len(found) > PAGE_SIZE


def _query(
    ctx: Context,
    flt: dict[str, str],
    key: SortKey,
    descending: bool,
    at: int | None,
    cursor: SortCursor | None,
) -> OperationFilter:
    """The rows after entry number ``at`` (and ``cursor``, for a sort by another column)
    in this direction, one more than a page (to tell whether another page follows)."""
    paging: dict[str, Any] = {"cursor": cursor, "descending": descending}
    if key is SortKey.ENTRY_NO and at is not None:
        paging["before_entry_no" if descending else "after_entry_no"] = at
    return entries_query(ctx, flt, limit=PAGE_SIZE + 1, **paging)


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
        return confirm_page(
            pages, ctx, action, chosen, all_matching=all_matching == "1", flt=flt, back=back
        )
    done, refused = 0, 0
    about: str | None = None
    reasons: dict[str, int] = {}
    acted: list[tuple[Operation, Operation | None]] = []
    undo = action == "delete" and len(chosen) <= UNDO_LIMIT
    for oid in chosen:
        try:
            op = find(ctx, str(oid))
            acted.append((op, run_action(ctx, action, op, undo=undo)))
            done += 1
        except (PageError, LongopsError) as exc:
            refused += 1
            reason = exc.message if isinstance(exc, PageError) else type(exc).__name__
            reasons[reason] = reasons.get(reason, 0) + 1
    if len(chosen) == 1 and done == 1:
        # One operation (a row's or the card's Delete, say): named as a row action names it.
        [(op, after)] = acted
        notice = present.action_notice(action, op, after)
        if present.notice_awaits_end(action, after):
            about = str(op.id)
    elif action == "cancel":
        notice = _cancel_notice([after for _, after in acted])
    else:
        past = {"Cancel": "Cancelled", "Restart": "Restarted", "Delete": "Deleted"}[verb]
        notice = f"{past} {_count(done)}."
    if refused:
        notice += (
            f" {_count(refused)} could not be: "
            + ", ".join(f"{n} {_why(r)}" for r, n in reasons.items())
            + "."
        )
    gone = [f"{ctx.base}/entries/{op.id}" for op, _ in acted] if action == "delete" else []
    if any(back.startswith(card) for card in gone):
        back = f"{ctx.base}/entries"  # the card of a deleted operation is gone
    kept = tuple(str(op.id) for op, _ in acted) if undo else ()
    return pages.back(ctx, back, f"{ctx.base}/entries", notice, undo=kept, about=about)


def _cancel_notice(after: list[Operation | None]) -> str:
    """A bulk Cancel's notice by what happened: ready or on-hold operations are cancelled
    at once, running ones only asked to stop ('Cancelled 1 operation; asked 2 running
    operations to stop.')."""
    asked = sum(1 for op in after if op is not None and op.status is Status.IN_PROCESS)
    cancelled = len(after) - asked
    parts = [f"Cancelled {_count(cancelled)}"] if cancelled or not asked else []
    if asked:
        parts.append(f"asked {asked:,} running operation{'' if asked == 1 else 's'} to stop")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


@router.post("/c/{company}/entries/undelete")
def undelete(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    ids: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """The Undo of a Delete's notice: puts back, as they were, the operations this user
    deleted less than UNDO_SECONDS ago; says which could not be."""
    ctx = pages.context(request, company, header=False)
    restored: list[Operation] = []
    late = 0
    for oid in list(dict.fromkeys(ids or []))[:UNDO_LIMIT]:
        try:
            restored.append(ctx.view.service.undelete(operation_uuid(oid), company=ctx.company))
        except LongopsError:
            late += 1
    if len(restored) == 1 and not late:
        [op] = restored
        notice = f"Operation {op.entry_no} ({present.short_name(op)}) is back, as it was."
    elif restored:
        notice = f"Put back {_count(len(restored))}, as they were."
    else:
        notice = ""
    if late:
        notice += (
            f" {_count(late)} could not be put back: Undo lasts {UNDO_SECONDS} seconds after"
            " the delete (or another operation took its dedup key meanwhile)."
        )
    target = f"{ctx.base}/entries/{restored[0].id}" if len(restored) == 1 else f"{ctx.base}/entries"
    return pages.back(ctx, None, target, notice.strip())


def _count(n: int) -> str:
    return f"{n:,} operation" + ("" if n == 1 else "s")


def _why(reason: str) -> str:
    words = {
        "InvalidTransition": "not in a status that allows it",
        "PermissionDenied": "not yours to change",
        "Conflict": "changed meanwhile",
    }
    return words.get(reason, reason)
