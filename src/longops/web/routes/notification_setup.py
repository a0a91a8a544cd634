"""The Notification Setup page of a company (Business Central: Job Queue Notification Setup
and Notified Admin): rules, notified admins, channels with a test-send, and the delivery
log with its retries and dead letters. The company's admins only; a channel's URL is
typed once and shown masked from then on.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from longops.domain.errors import ValidationError
from longops.domain.notify import Event
from longops.web.context import Context
from longops.web.deps import Csrf, PagesDep
from longops.web.pages import Pages

PATH = "/c/{company}/notification-setup"

router = APIRouter()


def render(
    pages: Pages,
    ctx: Context,
    status: int = 200,
    *,
    error: str | None = None,
    given: Any = None,
) -> HTMLResponse:
    """The page; with a refused form, its message and what was typed."""
    setup = ctx.view.notification_setup
    return pages.render(
        "notification_setup.html",
        ctx,
        status,
        title="Notification Setup",
        rules=setup.list_rules(ctx.company),
        admins=setup.list_admins(ctx.company),
        channels=setup.list_channels(ctx.company),
        deliveries=setup.list_deliveries(ctx.company, limit=50),
        events=list(Event),
        error=error,
        given=given or {},
    )


def refused(
    pages: Pages, ctx: Context, exc: ValidationError, form: str, given: dict[str, str]
) -> Response:
    pages.fill_header(ctx)
    # The rule, never the value: a channel's URL may hold a password.
    return render(pages, ctx, 400, error=f"{exc.field}: {exc.rule}.", given={"form": form, **given})


@router.get(PATH, response_class=HTMLResponse)
def notification_setup(request: Request, company: str, pages: PagesDep) -> Response:
    ctx = pages.context(request, company)
    ctx.view.notification_setup.list_rules(company)  # refused unless an admin
    return render(pages, ctx)


@router.post(f"{PATH}/channels", response_class=HTMLResponse)
def add_channel(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    name: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    rate_limit: Annotated[str, Form()] = "",
) -> Response:
    ctx = pages.context(request, company, header=False)
    try:
        limit = None
        if rate_limit.strip():
            if not rate_limit.strip().isdigit():
                raise ValidationError("rate_limit", "must be a whole number")
            limit = int(rate_limit)
        made = ctx.view.notification_setup.add_channel(
            company, name.strip(), url.strip(), rate_limit=limit
        )
    except ValidationError as exc:
        return refused(pages, ctx, exc, "channel", {"name": name, "rate_limit": rate_limit})
    return pages.back(ctx, None, f"{ctx.base}/notification-setup", f"Channel {made.name} saved.")


@router.post(f"{PATH}/channels/{{name}}/test")
def send_test(request: Request, company: str, name: str, pages: PagesDep, _: Csrf) -> Response:
    ctx = pages.context(request, company, header=False)
    error = ctx.view.notification_setup.test_channel(company, name)
    notice = f"Test sent to {name}." if error is None else f"Test to {name} failed: {error}"
    return pages.back(ctx, None, f"{ctx.base}/notification-setup", notice)


@router.post(f"{PATH}/channels/{{name}}/remove")
def remove_channel(request: Request, company: str, name: str, pages: PagesDep, _: Csrf) -> Response:
    ctx = pages.context(request, company, header=False)
    ctx.view.notification_setup.remove_channel(company, name)
    return pages.back(ctx, None, f"{ctx.base}/notification-setup", f"Channel {name} removed.")


@router.post(f"{PATH}/rules", response_class=HTMLResponse)
def add_rule(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    name: Annotated[str, Form()] = "",
    on: Annotated[str, Form()] = "failed",
    to: Annotated[str, Form()] = "",
    task: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    queue: Annotated[str, Form()] = "",
    user: Annotated[str, Form()] = "",
    threshold: Annotated[str, Form()] = "",
) -> Response:
    ctx = pages.context(request, company, header=False)
    given = {"name": name, "on": on, "to": to, "task": task, "category": category,
             "queue": queue, "user": user, "threshold": threshold}  # fmt: skip
    try:
        limit = None
        if threshold.strip():
            try:
                limit = float(threshold)
            except ValueError:
                raise ValidationError("threshold", "must be a number") from None
        made = ctx.view.notification_setup.add_rule(
            company,
            name.strip(),
            on=on,
            to=[t.strip() for t in to.split(",") if t.strip()],
            task=task.strip() or None,
            category=category.strip() or None,
            queue=queue.strip() or None,
            user=user.strip() or None,
            threshold=limit,
        )
    except ValidationError as exc:
        return refused(pages, ctx, exc, "rule", given)
    return pages.back(ctx, None, f"{ctx.base}/notification-setup", f"Rule {made.name} saved.")


@router.post(f"{PATH}/rules/{{name}}/remove")
def remove_rule(request: Request, company: str, name: str, pages: PagesDep, _: Csrf) -> Response:
    ctx = pages.context(request, company, header=False)
    ctx.view.notification_setup.remove_rule(company, name)
    return pages.back(ctx, None, f"{ctx.base}/notification-setup", f"Rule {name} removed.")


@router.post(f"{PATH}/admins", response_class=HTMLResponse)
def add_admin(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    user: Annotated[str, Form()] = "",
) -> Response:
    ctx = pages.context(request, company, header=False)
    try:
        ctx.view.notification_setup.add_admin(company, user.strip())
    except ValidationError as exc:
        return refused(pages, ctx, exc, "admin", {"user": user})
    return pages.back(
        ctx, None, f"{ctx.base}/notification-setup", f"{user.strip()} is a notified admin."
    )


@router.post(f"{PATH}/admins/{{user}}/remove")
def remove_admin(request: Request, company: str, user: str, pages: PagesDep, _: Csrf) -> Response:
    ctx = pages.context(request, company, header=False)
    ctx.view.notification_setup.remove_admin(company, user)
    return pages.back(
        ctx, None, f"{ctx.base}/notification-setup", f"{user} is no longer a notified admin."
    )


@router.post(f"{PATH}/deliveries/{{delivery_id}}/retry")
def retry_delivery(
    request: Request, company: str, delivery_id: int, pages: PagesDep, _: Csrf
) -> Response:
    ctx = pages.context(request, company, header=False)
    ctx.view.notification_setup.retry_delivery(company, delivery_id)
    return pages.back(
        ctx,
        None,
        f"{ctx.base}/notification-setup",
        f"Delivery {delivery_id} will be sent again.",
    )
