"""An entry's card (``/c/{company}/entries/{id}``): its live part (status, progress, why it
waits, actions), fields, timeline and attempts; the Edit form of an operation on hold, and
the row actions (set ready, hold, restart, run now, cancel, delete) posted from the card or
a list row."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from longops.domain.errors import InvalidTransition, NotFound
from longops.domain.operation import Operation, Priority
from longops.domain.security import Action
from longops.domain.status import Status
from longops.web import present
from longops.web.context import Context, PageError
from longops.web.deps import Csrf, PagesDep
from longops.web.forms import parse_local, whole_number
from longops.web.listing import confirm_page
from longops.web.operations import card_actions, card_details, card_live, find, run_action
from longops.web.pages import Pages, here

router = APIRouter()


@router.get("/c/{company}/entries/{operation_id}", response_class=HTMLResponse)
def card(request: Request, company: str, operation_id: str, pages: PagesDep) -> Response:
    ctx = pages.context(request, company)
    if operation_id.isascii() and operation_id.isdigit():
        # An entry number (No. 12, as the lists and the CLI show it): to the card's own URL.
        try:
            by_no = ctx.view.service.get(int(operation_id), ctx.company)
        except NotFound:
            raise PageError(404, f"No operation with entry number {operation_id}.") from None
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{ctx.base}/entries/{by_no.id}{query}", status_code=303)
    op = find(ctx, operation_id)
    path = here(request)
    live = card_live(pages, ctx, op, path)
    # A notice carried from an action here ("asked to stop") as of this read: a done
    # operation's card says what happened; otherwise the stream replaces it once it is.
    pages.settle_notice(ctx, op)
    return pages.render(
        "entry.html",
        ctx,
        stream=f"{ctx.base}/stream?"
        + urlencode(
            {
                "view": "card",
                "op": str(op.id),
                "next": path,
                "acts": present.actions_key(present.actions_for(ctx.actor, op)),
            }
        ),
        title=op.description or op.task,
        op=op,
        live=live,
        **card_details(ctx, op),
        **card_actions(ctx, op),
        # The Edit form shows only while the operation is on hold (a hint says how to get
        # there otherwise); a read-only user gets neither.
        may_edit=present.may(ctx.actor, Action.UPDATE_OPERATION, op),
        editable=op.status is Status.ON_HOLD
        and present.may(ctx.actor, Action.UPDATE_OPERATION, op),
        priorities=[p.label for p in Priority],
        categories=[c.code for c in ctx.view.companies.list_categories(company)],
        recurrence_text=present.recurrence_text(op.recurrence),
        here=path,
    )


@router.post("/c/{company}/entries/{operation_id}/edit")
def edit(
    request: Request,
    company: str,
    operation_id: str,
    pages: PagesDep,
    _: Csrf,
    description: Annotated[str, Form()] = "",
    priority: Annotated[str, Form()] = "normal",
    category: Annotated[str, Form()] = "",
    earliest_start: Annotated[str, Form()] = "",
    max_attempts: Annotated[str, Form()] = "",
    timeout: Annotated[str, Form()] = "",
    recurrence: Annotated[str, Form()] = "",
    recurrence_shown: Annotated[str, Form()] = "",
    rec_minutes: Annotated[str, Form()] = "",
    rec_days: Annotated[list[str] | None, Form()] = None,
    rec_start: Annotated[str, Form()] = "",
    rec_end: Annotated[str, Form()] = "",
    rec_continue: Annotated[str, Form()] = "",
) -> Response:
    ctx = pages.context(request, company, header=False)
    op = find(ctx, operation_id)
    if recurrence.strip() != recurrence_shown.strip():
        chosen: Any = recurrence.strip() or None  # typed: the text wins
    else:
        chosen = present.recurrence_from_fields(
            rec_minutes, rec_days or [], rec_start, rec_end, rec_continue == "1"
        )
    ctx.view.service.update_operation(
        op.id,
        description=description.strip() or None,
        priority=priority,
        category=category or None,
        earliest_start=parse_local(earliest_start, ctx, "earliest_start"),
        max_attempts=whole_number("max_attempts", max_attempts, op.max_attempts),
        timeout=float(whole_number("timeout", timeout, int(op.timeout.total_seconds()))),
        recurrence=chosen,
    )
    card_path = f"{ctx.base}/entries/{op.id}"
    return pages.back(ctx, None, card_path, f"Operation {op.entry_no} saved.")


# After ``edit``: the first route whose path matches a POST answers it.
@router.post("/c/{company}/entries/{operation_id}/{action}")
def act(
    request: Request,
    company: str,
    operation_id: str,
    action: str,
    pages: PagesDep,
    _: Csrf,
    next: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    ctx = pages.context(request, company, header=False)
    if action not in present.ACTION_OF_PATH:
        raise PageError(404, f"There is no action {action}.")
    op = find(ctx, operation_id)
    if action == "delete" and confirmed != "1":
        # Deleting cannot be undone: ask first (a page, so it works without JavaScript);
        # who may not, or a status that does not allow it, is refused before asking.
        if not present.may(ctx.actor, Action.DELETE, op):
            raise PageError(403, f"{ctx.user} may not delete operation {op.entry_no}.")
        if not present.status_allows(Action.DELETE, op):
            return _not_now(pages, ctx, next, op)
        pages.fill_header(ctx)
        back = next if next and next.startswith(ctx.base) else f"{ctx.base}/entries/{op.id}"
        return confirm_page(pages, ctx, "delete", [op.id], all_matching=False, flt={}, back=back)
    deleting = action == "delete"
    try:
        after = run_action(ctx, action, op, undo=deleting)
    except InvalidTransition:
        # A stale tab (the operation ended or changed since it was drawn): back where the
        # user was, saying how it is now (the API answers 409).
        return _not_now(pages, ctx, next, find(ctx, operation_id))
    card_path = f"{ctx.base}/entries/{op.id}"
    default = f"{ctx.base}/entries" if deleting else card_path
    if deleting and next.startswith(card_path):
        next = ""
    notice = present.action_notice(action, op, after)
    about = str(op.id) if present.notice_awaits_end(action, after) else None
    return pages.back(
        ctx, next, default, notice, undo=(str(op.id),) if deleting else (), about=about
    )


def _not_now(pages: Pages, ctx: Context, next: str, op: Operation) -> Response:
    """Back where the user was, with a notice of the status that refused the action:
    'Operation 31 (Render the year-end report) is already Cancelled.'"""
    caption = present.status_caption(op)
    name = f"Operation {op.entry_no} ({present.short_name(op)})"
    notice = (
        f"{name} is already {caption}."
        if op.done
        else f"{name} is {caption} now: that is not possible, nothing was changed."
    )
    return pages.back(ctx, next, f"{ctx.base}/entries/{op.id}", notice)
