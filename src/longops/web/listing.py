"""The Job Queue Entries list's filter (from the query string or a bulk form) and its
status facets, shared by the list's routes and the live stream that recounts the facets.

Example::

    flt = entries_filter(request.query_params)     # {"status": "error", "mine": "1"}
    ops = ctx.view.service.list_operations(entries_query(ctx, flt, limit=51))
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse

from longops.domain.errors import LongopsError, ValidationError
from longops.domain.filters import (
    OperationFilter,
    SortCursor,
    SortKey,
    search_terms,
    sort_value,
)
from longops.domain.operation import Operation
from longops.domain.read_models import COUNT_CAP, format_bound
from longops.domain.status import Status
from longops.web import present
from longops.web.context import UNDO_LIMIT, UNDO_SECONDS, Context
from longops.web.pages import Pages

BULK_LIMIT = 10_000
"""At most this many operations in one bulk action (all matching a filter)."""


FILTER_KEYS = ("q", "status", "task", "category", "user", "mine", "stalled", "sort", "dir")
"""The list's query string (its filter and its order); paging adds ``after`` (the last
entry number shown) and, for a sort other than the entry number, ``after_value``."""


@dataclass(frozen=True, slots=True)
class Column:
    """A column the list sorts by: its query value, its heading, its first direction."""

    key: SortKey
    label: str
    first_descending: bool


SORTABLE = {
    c.key.value: c
    for c in (
        Column(SortKey.ENTRY_NO, "No.", True),
        Column(SortKey.DESCRIPTION, "Description", False),
        Column(SortKey.PRIORITY, "Priority", False),
        Column(SortKey.USER, "User", False),
        Column(SortKey.EARLIEST_START, "Earliest start", True),
        Column(SortKey.ENDED, "Ended", True),
        Column(SortKey.DURATION, "Duration", True),
    )
}


def entries_filter(params: Mapping[str, str | None]) -> dict[str, str]:
    """The list's filter and order as given (only known, non-empty keys), for links and
    forms; the default order (newest first) is left out, so that a link stays short."""
    out = {k: str(v).strip() for k in FILTER_KEYS if (v := params.get(k)) not in (None, "")}
    out = {k: v for k, v in out.items() if v}
    if out.get("sort") == SortKey.ENTRY_NO.value and out.get("dir", "desc") == "desc":
        out.pop("sort")
        out.pop("dir", None)
    return out


def sort_of(flt: Mapping[str, str]) -> tuple[SortKey, bool]:
    """The order the filter asks for: (key, descending); 400 for an unknown one."""
    name = flt.get("sort", SortKey.ENTRY_NO.value)
    column = SORTABLE.get(name)
    if column is None:
        raise ValidationError("sort", f"must be one of {', '.join(SORTABLE)}", name)
    direction = flt.get("dir")
    if direction not in (None, "asc", "desc"):
        raise ValidationError("dir", "must be asc or desc", direction)
    if direction is None:
        return column.key, column.key is SortKey.ENTRY_NO or column.first_descending
    return column.key, direction == "desc"


def cursor_of(
    key: SortKey, after: int | None, value: str | None, field: str = "after_value"
) -> SortCursor | None:
    """A sorted page's cursor from ``after`` and ``after_value`` (or ``before`` and
    ``before_value``, named by ``field``; 400 when malformed)."""
    if after is None or key is SortKey.ENTRY_NO:
        return None
    text = (value or "").strip()
    if text == "" and key not in (SortKey.DESCRIPTION, SortKey.USER):
        return SortCursor(after, None)
    try:
        if key in (SortKey.PRIORITY, SortKey.DURATION):
            return SortCursor(after, int(text))
        if key in (SortKey.EARLIEST_START, SortKey.ENDED):
            when = datetime.fromisoformat(text)
            if when.tzinfo is None:
                raise ValueError(text)
            return SortCursor(after, when)
    except ValueError:
        raise ValidationError(field, _CURSOR_RULE[key], text) from None
    return SortCursor(after, text)


_CURSOR_RULE = {
    SortKey.PRIORITY: "must be a whole number: the priority of the row the page goes on from",
    SortKey.DURATION: "must be a whole number of microseconds: the duration of the row the "
    "page goes on from",
    SortKey.EARLIEST_START: "must be a time with its zone offset (ISO 8601, as in "
    "2026-12-07T14:05:00+00:00): the earliest start of the row the page goes on from",
    SortKey.ENDED: "must be a time with its zone offset (ISO 8601, as in "
    "2026-12-07T14:05:00+00:00): the end of the row the page goes on from",
}
"""Why a sorted page's cursor value was refused, per sort column (a text column takes any)."""


def cursor_params(key: SortKey, op: Operation, side: str = "after") -> dict[str, str]:
    """The query string's paging part for the page after ``op`` (``side="before"``: the
    page before it)."""
    out = {side: str(op.entry_no)}
    if key is not SortKey.ENTRY_NO:
        value = sort_value(key, op)
        out[f"{side}_value"] = (
            value.isoformat()
            if isinstance(value, datetime)
            else ""
            if value is None
            else str(value)
        )
    return out


def sort_headers(flt: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Per sortable column: its link (the same filter, this order, first page), the
    ``aria-sort`` it has now ("none" unless it is the order), and an arrow."""
    key, descending = sort_of(flt)
    rest = {k: v for k, v in flt.items() if k not in ("sort", "dir")}
    out = {}
    for name, column in SORTABLE.items():
        current = column.key is key
        desc = (not descending) if current else column.first_descending
        out[name] = {
            "href": "?" + urlencode({**rest, "sort": name, "dir": "desc" if desc else "asc"}),
            "aria": ("descending" if descending else "ascending") if current else "none",
            "arrow": ("▼" if descending else "▲") if current else "",
            "label": column.label,
            "next": "descending" if desc else "ascending",
        }
    return out


TIME_DIGITS = 12
"""An operation id's first 12 hex digits are the millisecond it was made (UUID version 7,
``domain.ids``): only the digits after them tell operations made together apart."""


def id_prefix_note(q: str | None, ops: Sequence[Operation], *, more: bool) -> str | None:
    """When the search reads as an id prefix that more than one listed operation has, why
    (an id starts with its time) and what to type instead; None otherwise."""
    if not q:
        return None
    terms = search_terms(q)
    if terms.id_low is None or terms.id_high is None:
        return None
    low, high = terms.id_low, terms.id_high
    hits = sum(1 for op in ops if low <= op.id <= high)
    if hits < 2:
        return None
    digits = len(q.strip().replace("-", ""))
    # With more pages the matches there are not counted (a count of a range scan per page
    # view would cost more than the note is worth): what is known is a lower bound.
    count = f"At least {hits} operations" if more else f"{hits} operations"
    if digits <= TIME_DIGITS:
        window = 16 ** (TIME_DIGITS - digits) / 1000
        span = "millisecond" if digits == TIME_DIGITS else f"{present.duration(window)}"
        return (
            f"{count} have ids starting with {q.strip()}. An id starts with the time the "
            f"operation was made: its first {digits} digits are the same for every operation "
            f"made within the same {span}. Type {TIME_DIGITS + 1} or more digits of the id, "
            "or search by entry number (#4711), to find one."
        )
    return (
        f"{count} have ids starting with {q.strip()}. Type more digits of the id, or search "
        "by entry number (#4711), to find one."
    )


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
    user = None
    if flt.get("mine") == "1":
        user = ctx.view.actor.user
    stalled = {"1": True, "0": False}.get(flt.get("stalled", ""))
    key, descending = sort_of(flt)
    descending = extra.pop("descending", descending)
    return OperationFilter(
        company=ctx.company,
        statuses=statuses,
        task=flt.get("task"),
        category=flt.get("category"),
        user=user,
        user_prefix=flt.get("user"),
        text=flt.get("q"),
        stalled=stalled,
        sort=key,
        descending=descending,
        **extra,
    )


def matching_ids(ctx: Context, flt: Mapping[str, str]) -> list[uuid.UUID]:
    """Every operation the filter matches (newest first), at most BULK_LIMIT."""
    ids: list[uuid.UUID] = []
    before: int | None = None
    newest_first = {k: v for k, v in flt.items() if k not in ("sort", "dir")}
    while len(ids) < BULK_LIMIT:
        page = ctx.view.service.list_operations(
            entries_query(ctx, newest_first, limit=1000, before_entry_no=before)
        )
        ids.extend(op.id for op in page)
        if len(page) < 1000:
            break
        before = page[-1].entry_no
    return ids[:BULK_LIMIT]


BOUNDS_NOTE = (
    f"The search matches more than {COUNT_CAP:,} operations: each status shows how many of"
    f" the first {COUNT_CAP + 1:,} have it (at least that many; ? where none of them has it)."
)
"""The facets' note when their counts are lower bounds (a broad search)."""


def facet_counts(ctx: Context, flt: Mapping[str, str]) -> tuple[dict[Status, str], str | None]:
    """Per status, how many operations the rest of the filter matches ("10,000+" past the
    cap; "1,234+" and "?" for a broad search, counted in its first matches only), and the
    note that says so (None when every count is exact)."""
    counts = ctx.view.read_models.status_counts(ctx.company, query=entries_query(ctx, flt))
    bounds = counts.lower_bounds
    shown = {s: format_bound(counts.get(s, 0), bounds) for s in Status}
    return shown, BOUNDS_NOTE if bounds else None


def facet_view(ctx: Context, flt: Mapping[str, str]) -> dict[str, Any]:
    """What the status facets show: per status its count and link, and the All link."""
    counts, note = facet_counts(ctx, flt)
    rest = {k: v for k, v in flt.items() if k != "status"}
    links = [
        (s, counts[s], "?" + urlencode({**rest, "status": s.value}), flt.get("status") == s.value)
        for s in Status
    ]
    return {
        "facets": links,
        "facets_note": note,
        "all_link": "?" + urlencode(rest),
        "all_active": "status" not in flt,
    }


def facets_html(pages: Pages, ctx: Context, flt: Mapping[str, str]) -> str:
    return pages.fragment("_facets.html", **facet_view(ctx, flt))


def confirm_page(
    pages: Pages,
    ctx: Context,
    action: str,
    chosen: Sequence[uuid.UUID],
    *,
    all_matching: bool,
    flt: Mapping[str, str],
    back: str,
) -> HTMLResponse:
    """The one confirmation page of a bulk action or a Delete (of a row, the card or the
    bulk bar): what it acts on, named, and (for a Delete) what Undo can bring back."""
    verb = present.BULK_ACTIONS[action]
    names, more = named(ctx, chosen)
    single = None
    if len(chosen) == 1 and not all_matching:
        with contextlib.suppress(LongopsError):
            single = ctx.view.service.get(chosen[0])
    if single is not None:
        title = f"{verb} operation {single.entry_no}?"
        what = f"operation {single.entry_no}"
    else:
        one = len(chosen) == 1 and names
        title = f"{verb} {names[0]}?" if one else f"{verb} {_count(len(chosen))}?"
        what = _count(len(chosen))
    # A Delete's button says what goes; the others' is Confirm (the title says what).
    button = f"Delete {what}" if action == "delete" else "Confirm"
    return pages.render(
        "confirm.html",
        ctx,
        title=title,
        button=button,
        single=single,
        single_name=op_name(single) if single else "",
        names=names,
        more=more,
        verb=verb,
        action=action,
        count=len(chosen),
        ids=[] if all_matching else list(chosen),
        all_matching=all_matching,
        flt=flt,
        back=back,
        undo_seconds=UNDO_SECONDS,
        undo_limit=UNDO_LIMIT,
    )


def _count(n: int) -> str:
    return f"{n:,} operation" + ("" if n == 1 else "s")


def named(ctx: Context, ids: Sequence[uuid.UUID], shown: int = 5) -> tuple[list[str], int]:
    """How a confirmation names operations: the first ``shown`` as 'Post invoices (No. 18)',
    and how many more there are."""
    names: list[str] = []
    for oid in ids[:shown]:
        try:
            op = ctx.view.service.get(oid)
        except LongopsError:
            names.append(str(oid))
            continue
        names.append(f"{op_name(op)} (No. {op.entry_no})")
    return names, max(len(ids) - shown, 0)


def op_name(op: Operation, width: int = 60) -> str:
    """An operation as a list names it: its description, else its task (shortened)."""
    name = op.description or op.task
    return name if len(name) <= width else name[: width - 1] + "…"


SHOWN_HOLDERS = 3
MAX_HOLDER_READS = 10
"""At most this many reads of blocking operations per page: one per full category."""


def blocking(
    ctx: Context, ops: Sequence[Operation], waits: Mapping[uuid.UUID, Any]
) -> dict[uuid.UUID, tuple[str, list[tuple[str, str]]]]:
    """For each waiting operation held back by others (a full category): the wait's
    sentence without the raw ids, and the blocking operations as (name and number, link).
    One read per full category: its first SHOWN_HOLDERS holders, the oldest first (as
    wait reasons list them; a holder that ended meanwhile is named by its id)."""
    full = list(
        dict.fromkeys(
            op.category
            for op in ops
            if op.category is not None and len(getattr(waits.get(op.id), "holders", ())) > 0
        )
    )
    found: dict[uuid.UUID, Operation] = {}
    for category in full[:MAX_HOLDER_READS]:
        try:
            running = ctx.view.service.list_operations(
                OperationFilter(
                    company=ctx.company,
                    statuses=(Status.IN_PROCESS,),
                    category=category,
                    limit=SHOWN_HOLDERS,
                )
            )
        except LongopsError:
            continue
        found.update((other.id, other) for other in running)
    out: dict[uuid.UUID, tuple[str, list[tuple[str, str]]]] = {}
    for op in ops:
        wait = waits.get(op.id)
        holders = getattr(wait, "holders", ())
        if wait is None or not holders:
            continue
        text = str(wait.message).split(": ", 1)[0].rstrip(")").rstrip()
        links = []
        for h in holders[:SHOWN_HOLDERS]:
            other = found.get(h)
            label = f"{op_name(other, 40)} (No. {other.entry_no})" if other else str(h)[:8]
            links.append((label, f"{ctx.base}/entries/{h}"))
        if len(holders) > SHOWN_HOLDERS:
            links.append(
                (
                    f"and {len(holders) - SHOWN_HOLDERS} more",
                    f"{ctx.base}/entries?status=in_process",
                )
            )
        out[op.id] = (text + ")" if "(" in text else text, links)
    return out


def relative(value: datetime | None, now: datetime) -> str:
    """'3 min ago', 'in 2 h', 'just now': a time as the list shows it (its exact time in
    the company's zone is the title)."""
    if value is None:
        return ""
    seconds = (value - now).total_seconds()
    span = abs(seconds)
    if span < 45:
        return "just now"
    if span < 3_600:
        text = f"{max(round(span / 60), 1)} min"
    elif span < 86_400:
        text = f"{round(span / 3_600)} h"
    else:
        text = f"{round(span / 86_400)} d"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def when(value: datetime | None, now: datetime, zone: Any) -> dict[str, str]:
    """A time cell: relative text, the exact time in the company's zone (the title, and
    what a screen reader hears) and ISO 8601 (the ``datetime`` attribute)."""
    if value is None:
        return {}
    exact = value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    return {"text": relative(value, now), "exact": exact, "iso": value.isoformat()}


PRIMARY_FIRST = ("cancel", "set-ready", "restart", "run-now", "hold")
"""Which of a row's actions is its one button: the one its status suggests
(``PRIMARY_BY_STATUS``) if offered, else the first offered of these; the others go in its
menu (Delete and Force cancel are never the one button: they are not undone)."""

PRIMARY_BY_STATUS = {
    Status.IN_PROCESS: "cancel",
    Status.READY: "cancel",
    Status.ON_HOLD: "set-ready",
    Status.ERROR: "restart",
    Status.FINISHED: "restart",
    Status.CANCELLED: "restart",
}


def split_actions(status: Status, actions: Sequence[Any]) -> tuple[Any | None, list[Any]]:
    """(the row's primary action, the rest in their usual order)."""
    offered = {a.path: a for a in actions}
    order = (PRIMARY_BY_STATUS.get(status, ""), *PRIMARY_FIRST)
    primary = next((offered[p] for p in order if p in offered), None)
    return primary, [a for a in actions if a is not primary]
