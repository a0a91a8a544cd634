"""The New operation form (``/c/{company}/entries/new``): a task, its arguments as JSON
(prefilled with the task's example), priority, category, earliest start, on hold."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from longops.core.enqueue import EnqueueRequest
from longops.domain.errors import NotFound, ValidationError
from longops.domain.operation import Priority
from longops.domain.security import Action, Verdict, decide
from longops.web.context import Context, PageError
from longops.web.deps import Csrf, PagesDep
from longops.web.forms import parse_args, parse_local
from longops.web.pages import Pages

router = APIRouter()


@router.get("/c/{company}/entries/new", response_class=HTMLResponse)
def new_form(request: Request, company: str, pages: PagesDep, task: str = "") -> Response:
    ctx = pages.context(request, company)
    given = {"task": task}
    with contextlib.suppress(NotFound):
        # A task named in the link starts with its arguments to edit.
        given["args"] = pages.app.tasks.example(task) if task else ""
    return new_page(pages, ctx, given, None)


@router.post("/c/{company}/entries/new", response_class=HTMLResponse)
def enqueue(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    task: Annotated[str, Form()] = "",
    args: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    priority: Annotated[str, Form()] = "normal",
    category: Annotated[str, Form()] = "",
    earliest_start: Annotated[str, Form()] = "",
    on_hold: Annotated[str, Form()] = "",
) -> Response:
    ctx = pages.context(request, company)
    given = {
        "task": task,
        "args": args,
        "description": description,
        "priority": priority,
        "category": category,
        "earliest_start": earliest_start,
        "on_hold": on_hold,
    }
    try:
        positional, keywords = parse_args(args)
        if not task:
            raise ValidationError("task", "choose a task")
        with contextlib.suppress(NotFound):  # an unknown task: core names it below
            gaps = pages.app.tasks.required_gaps(task, positional, keywords)
            if gaps:
                raise ValidationError(", ".join(f"args.{n}" for n in gaps), _gaps_rule(gaps))
        request_ = EnqueueRequest(
            task=task,
            args=positional,
            kwargs=keywords,
            company=company,
            description=description.strip() or None,
            priority=Priority.parse(priority),
            category=category or None,
            earliest_start_at=parse_local(earliest_start, ctx, "earliest_start"),
            on_hold=on_hold == "1",
        )
        op = ctx.view.service.enqueue(request_)
    except ValidationError as exc:
        return new_page(pages, ctx, given, str(exc), 400)
    return pages.back(
        ctx, None, f"{ctx.base}/entries/{op.id}", f"Operation {op.entry_no} enqueued."
    )


def _gaps_rule(gaps: Mapping[str, str]) -> str:
    """Why required arguments were refused: missing (the key is not there) or blank (it is
    there, without a value), in words."""
    missing = [n for n, why in gaps.items() if why == "missing"]
    blank = [n for n, why in gaps.items() if why == "blank"]
    parts = []
    if missing:
        keys = ", ".join(f'"{n}"' for n in missing)
        parts.append(
            f"{'is' if len(gaps) == 1 else 'are'} required and missing: add {keys} with a "
            "value to the arguments"
            if not blank
            else f"{keys} {'is' if len(missing) == 1 else 'are'} missing (add "
            f"{'it' if len(missing) == 1 else 'them'} with a value)"
        )
    if blank:
        keys = ", ".join(f'"{n}"' for n in blank)
        parts.append(
            f"{'is' if len(gaps) == 1 else 'are'} required: give "
            f"{'it' if len(blank) == 1 else 'each'} a value in the arguments "
            f"({'it was' if len(blank) == 1 else 'they were'} left blank)"
            if not missing
            else f"{keys} {'is' if len(blank) == 1 else 'are'} blank (give "
            f"{'it' if len(blank) == 1 else 'each'} a value)"
        )
    if missing and blank:
        return "are required: " + "; ".join(parts)
    return parts[0]


def new_page(
    pages: Pages, ctx: Context, given: Mapping[str, str], error: str | None, status: int = 200
) -> HTMLResponse:
    """The form, empty, prefilled from a link, or again with what was typed and why not."""
    if decide(ctx.actor, Action.ENQUEUE, company=ctx.company) is not Verdict.ALLOWED:
        raise PageError(403, f"{ctx.user} may not enqueue operations in {ctx.company}.")
    catalog = pages.app.tasks
    tasks = catalog.tasks()
    return pages.render(
        "new.html",
        ctx,
        status,
        title="New operation",
        tasks=tasks,
        examples={t.name: catalog.example(t.name) for t in tasks},
        hints={t.name: catalog.hints(t.name) for t in tasks},
        categories=[c.code for c in ctx.view.companies.list_categories(ctx.company)],
        priorities=[p.label for p in Priority],
        given=given,
        error=error,
    )
