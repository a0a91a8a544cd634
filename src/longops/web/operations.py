"""One operation on the pages: finding it in the page's company, doing a row action, and
what its list row and card show (as values for a page, or as the HTML fragment the live
stream sends).

Example::

    op = find(ctx, operation_id)                 # 404 unless in this company and readable
    run_action(ctx, "hold", op)                  # through core, as the signed-in user
    html = row_html(pages, ctx, op, "/c/CRONUS/entries")
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from longops.domain.errors import LongopsError, NotFound
from longops.domain.operation import Attempt, EventType, Operation, OperationEvent
from longops.web import listing, present
from longops.web.context import UNDO_SECONDS, Context, PageError
from longops.web.pages import Pages


def operation_uuid(value: str) -> uuid.UUID:
    """An operation id from a path or form; 404 when it is not one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PageError(404, f"Operation {value} was not found.") from None


def find(ctx: Context, operation_id: str) -> Operation:
    """The operation, if it is in this company and the user may read it (else 404)."""
    try:
        op = ctx.view.service.get(operation_uuid(operation_id))
    except NotFound:
        raise PageError(404, f"Operation {operation_id} was not found.") from None
    if op.company != ctx.company:
        raise PageError(404, f"Operation {operation_id} was not found.")
    return op


def run_action(ctx: Context, path: str, op: Operation, *, undo: bool = False) -> Operation | None:
    """Do one row action through core, as the signed-in user (a Delete with ``undo``
    keeps a copy for UNDO_SECONDS, which the notice's Undo puts back)."""
    svc = ctx.view.service
    action = present.ACTION_OF_PATH[path]
    if action == "set_ready":
        return svc.set_ready(op.id)
    if action == "hold":
        return svc.hold(op.id)
    if action == "restart":
        return svc.restart(op.id)
    if action == "run_now":
        return svc.run_now(op.id)
    if action == "cancel":
        return svc.cancel(op.id, reason="cancelled from the pages")
    if action == "force_cancel":
        return svc.cancel(op.id, reason="cancelled by force from the pages", force=True)
    svc.delete(op.id, undo_for=timedelta(seconds=UNDO_SECONDS) if undo else None)
    return None


def rows_of(
    pages: Pages, ctx: Context, ops: Sequence[Operation], next_path: str
) -> list[dict[str, Any]]:
    """What each list row shows, wait reasons and ETAs derived now (two reads for all)."""
    svc = ctx.view.service
    waits = svc.wait_reasons(ops)
    progress = svc.estimated(ops)
    now = pages.app.clock.now()
    blocked = listing.blocking(ctx, ops, waits)
    rows = []
    for op in ops:
        actions = present.actions_for(ctx.actor, op)
        primary, more = listing.split_actions(op.status, actions)
        rows.append(
            {
                "op": op,
                "progress": present.progress_view(op, progress.get(op.id), now, ctx.zone),
                "wait": waits.get(op.id),
                "blocked": blocked.get(op.id),
                "actions": actions,
                "primary": primary,
                "more": more,
                "start": listing.when(op.earliest_start_at, now, ctx.zone),
                "ended": listing.when(op.ended_at, now, ctx.zone),
                "took": present.duration(op.ended_at - op.started_at)
                if op.ended_at and op.started_at
                else "",
                "name": listing.op_name(op),
            }
        )
    return rows


def row_html(pages: Pages, ctx: Context, op: Operation, next_path: str) -> str:
    [row] = rows_of(pages, ctx, [op], next_path)
    return pages.fragment(
        "_row.html",
        row=row,
        csrf=ctx.session.csrf,
        base=ctx.base,
        ctx=ctx,
        can_act=present.can_act_somewhere(ctx.actor, ctx.company),
        here=next_path,
    )


def card_live(pages: Pages, ctx: Context, op: Operation, next_path: str) -> dict[str, Any]:
    """What the card's live part shows: status, progress, why it waits, its actions."""
    svc = ctx.view.service
    progress = svc.estimated([op]).get(op.id)
    waits = svc.wait_reasons([op])
    return {
        "op": op,
        "progress": present.progress_view(op, progress, pages.app.clock.now(), ctx.zone),
        "wait": waits.get(op.id),
        "blocked": listing.blocking(ctx, [op], waits).get(op.id),
        "forced": forced_request(ctx, op),
    }


def forced_request(ctx: Context, op: Operation) -> OperationEvent | None:
    """The Force cancel that followed a Cancel of a running operation (its request keeps
    the first one's time and who): its own event, for the card's 'forced 19:27:21'. None
    unless Cancelling by force after a plain Cancel (one read, only then)."""
    request = op.cancel_request
    if not op.cancelling or request is None or not request.force:
        return None
    try:
        asked = ctx.view.service.events(op.id, types=(EventType.CANCEL_REQUESTED,), limit=100)
    except LongopsError:
        return None
    forced = [e for e in asked if e.data.get("force")]
    if not forced or forced[-1].at <= request.requested_at:
        return None  # forced from the first request on: "(by force)" says it
    return forced[-1]


def card_details(ctx: Context, op: Operation) -> dict[str, Any]:
    """What the card shows below its live part: fields, checkpoint, timeline, attempts; and
    on top, for an operation in Error, the error with its failing step and traceback."""
    svc = ctx.view.service
    attempts = svc.attempts(op.id)
    return {
        "attempts": attempts,
        "events": svc.events(op.id, limit=500),
        "spark": present.sparkline(svc.progress_history(op.id, points=120)),
        "json": _json,
        "arguments": _json({"args": list(op.args), "kwargs": dict(op.kwargs)}),
        **card_error(op, attempts),
    }


def card_error(op: Operation, attempts: Sequence[Attempt]) -> dict[str, Any]:
    """The failing step and the last failed attempt's traceback (frames sorted into the
    task's own code and the libraries')."""
    failed = next((a for a in reversed(attempts) if a.traceback or a.error_message), None)
    text = None if failed is None else failed.traceback
    step = None if op.progress is None else op.progress.step_label
    return {
        "failed_step": step,
        "failure": present.traceback_of(text),
        "traceback_text": present.scrub_paths(text),
    }


def card_error_html(pages: Pages, ctx: Context, op: Operation) -> str:
    return pages.fragment(
        "_card_error.html", op=op, ctx=ctx, **card_error(op, ctx.view.service.attempts(op.id))
    )


def card_details_html(pages: Pages, ctx: Context, op: Operation) -> str:
    return pages.fragment(
        "_card_details.html", op=op, ctx=ctx, base=ctx.base, **card_details(ctx, op)
    )


def card_live_html(pages: Pages, ctx: Context, op: Operation, next_path: str) -> str:
    return pages.fragment(
        "_card_live.html",
        live=card_live(pages, ctx, op, next_path),
        csrf=ctx.session.csrf,
        base=ctx.base,
        ctx=ctx,
        here=next_path,
    )


def card_actions(ctx: Context, op: Operation) -> dict[str, Any]:
    """The card's buttons, the sentences telling the re-queue ones apart, and their key."""
    actions = present.actions_for(ctx.actor, op)
    return {
        "actions": actions,
        "help": present.action_help(actions),
        "key": present.actions_key(actions),
    }


def card_actions_html(pages: Pages, ctx: Context, op: Operation, next_path: str) -> str:
    return pages.fragment(
        "_card_actions.html",
        op=op,
        csrf=ctx.session.csrf,
        base=ctx.base,
        here=next_path,
        **card_actions(ctx, op),
    )


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, sort_keys=True)
