"""A company's Categories (``/c/{company}/categories``): each with how many of its
operations run and wait; an admin adds one or changes its limit, description or pause."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from longops.domain.errors import Conflict, ValidationError
from longops.domain.read_models import format_count
from longops.domain.security import Action, Verdict, decide
from longops.web.context import Context, PageError
from longops.web.deps import Csrf, PagesDep
from longops.web.forms import FormError
from longops.web.pages import Pages

router = APIRouter()

_FIELDS = {
    "category": "code",
    "code": "code",
    "description": "description",
    "max_concurrent": "max_concurrent",
}
"""The form field a refusal names, by the field core named."""
_LABELS = {
    "code": "Code",
    "description": "Description",
    "max_concurrent": "Max concurrent",
}


@router.get("/c/{company}/categories", response_class=HTMLResponse)
def categories(request: Request, company: str, pages: PagesDep) -> Response:
    return categories_page(pages, pages.context(request, company))


@router.post("/c/{company}/categories", response_class=HTMLResponse)
def save_category(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    code: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    max_concurrent: Annotated[str, Form()] = "1",
    paused: Annotated[str, Form()] = "",
    row: Annotated[str, Form()] = "",
) -> Response:
    ctx = pages.context(request, company, header=False)
    given = {
        "code": code,
        "description": description,
        "max_concurrent": max_concurrent,
        "paused": paused,
    }
    try:
        try:
            limit = int(max_concurrent)
        except ValueError:
            raise ValidationError(
                "max_concurrent", "must be a whole number", max_concurrent
            ) from None
        ctx.view.companies.set_category(
            company,
            code.strip(),
            description=description.strip(),
            max_concurrent=limit,
            paused=paused == "1",
        )
    except ValidationError as exc:
        # The form again, the message beside the field and what was typed kept (a
        # row's Save keeps the row's values; the New category form keeps its own).
        pages.fill_header(ctx)
        field = _FIELDS.get(exc.field, "code")
        message = f"{_LABELS[field]} {exc.rule}."
        problem = FormError(field, message, given)
        if row == "1":
            return categories_page(pages, ctx, 400, row_error=(code, problem))
        return categories_page(pages, ctx, 400, new_error=problem)
    return pages.back(ctx, None, f"{ctx.base}/categories", f"Category {code.strip()} saved.")


@router.post("/c/{company}/categories/delete", response_class=HTMLResponse)
def delete_category(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    code: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    """Delete a category no operation names, once confirmed (the first post shows what is
    asked, as an operation's Delete does); one in use comes back with why (409)."""
    ctx = pages.context(request, company, header=False)
    if confirmed != "1":
        pages.fill_header(ctx)
        if decide(ctx.actor, Action.SET_CATEGORY, company=ctx.company) is not Verdict.ALLOWED:
            raise PageError(403, "Only an ADMIN of this company may delete its categories.")
        listed = ctx.view.companies.list_categories(ctx.company)
        found = [c for c in listed if c.code == code.strip()]
        if not found:
            raise PageError(404, f"Category {code.strip()} was not found.")
        activity = ctx.view.read_models.category_activity(ctx.company).get(found[0].code)
        return pages.render(
            "confirm_category.html",
            ctx,
            title=f"Delete category {found[0].code}?",
            category=found[0],
            running=0 if activity is None else activity.running,
            waiting=0 if activity is None else activity.waiting,
        )
    try:
        ctx.view.companies.delete_category(company, code.strip())
    except Conflict as exc:
        pages.fill_header(ctx)
        problem = FormError("code", str(exc), {})
        return categories_page(pages, ctx, 409, row_error=(code.strip(), problem))
    return pages.back(ctx, None, f"{ctx.base}/categories", f"Category {code.strip()} deleted.")


def categories_page(
    pages: Pages,
    ctx: Context,
    status: int = 200,
    *,
    new_error: FormError | None = None,
    row_error: tuple[str, FormError] | None = None,
) -> HTMLResponse:
    """The Categories page; with a refused form, that form again with its message."""
    cats = ctx.view.companies.list_categories(ctx.company)
    activity = ctx.view.read_models.category_activity(ctx.company)
    busy = []
    for cat in cats:
        found = activity.get(cat.code)
        running = 0 if found is None else found.running
        waiting = 0 if found is None else found.waiting
        busy.append((cat, format_count(running), format_count(waiting)))
    admin = decide(ctx.actor, Action.SET_CATEGORY, company=ctx.company) is Verdict.ALLOWED
    return pages.render(
        "categories.html",
        ctx,
        status,
        title="Categories",
        rows=busy,
        admin=admin,
        new_error=new_error,
        row_error=row_error,
    )
