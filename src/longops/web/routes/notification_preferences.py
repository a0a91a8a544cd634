"""A person's own notification preferences (``/c/{company}/notification-preferences``):
mute or unmute each rule that notifies them, and in-app only or also by email."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from longops.domain.errors import ValidationError
from longops.web.context import Context
from longops.web.deps import Csrf, PagesDep
from longops.web.pages import Pages

PATH = "/c/{company}/notification-preferences"

router = APIRouter()


def render(pages: Pages, ctx: Context, status: int = 200, *, error: str | None = None) -> Response:
    """The page; with a refused form, its message."""
    view = ctx.view
    name = view.actor.user
    contact: tuple[str | None, bool] = (None, False)
    if name is not None:
        contact = view.security.contact(name)
    return pages.render(
        "notification_preferences.html",
        ctx,
        status,
        title="Notification preferences",
        rules=view.notification_setup.my_rules(ctx.company),
        email=contact[0],
        by_email=contact[1],
        email_channel=view.notification_setup.has_email_channel(ctx.company),
        error=error,
    )


@router.get(PATH, response_class=HTMLResponse)
def preferences(request: Request, company: str, pages: PagesDep) -> Response:
    return render(pages, pages.context(request, company))


@router.post(f"{PATH}/rules/{{name}}/{{verb}}")
def mute(
    request: Request, company: str, name: str, verb: str, pages: PagesDep, _: Csrf
) -> Response:
    ctx = pages.context(request, company, header=False)
    if verb not in ("mute", "unmute"):
        raise ValidationError("action", "must be mute or unmute", verb)
    ctx.view.notification_setup.mute_rule(company, name, muted=verb == "mute")
    done = "muted" if verb == "mute" else "no longer muted"
    return pages.back(ctx, None, f"{ctx.base}/notification-preferences", f"Rule {name} {done}.")


@router.post(f"{PATH}/email", response_class=HTMLResponse)
def email(
    request: Request,
    company: str,
    pages: PagesDep,
    _: Csrf,
    email: Annotated[str, Form()] = "",
    choice: Annotated[str, Form()] = "inbox",
) -> Response:
    ctx = pages.context(request, company, header=False)
    name = ctx.view.actor.user
    try:
        if name is None:
            raise ValidationError("user", "a preference is a person's: sign in as one")
        if choice not in ("inbox", "email"):
            raise ValidationError("choice", "must be inbox or email", choice)
        typed = email.strip()
        ctx.view.security.set_contact(
            name,
            email=typed or None,
            clear_email=not typed,
            notify_by_email=choice == "email",
        )
    except ValidationError as exc:
        pages.fill_header(ctx)
        return render(pages, ctx, 400, error=f"{exc.field}: {exc.rule}.")
    said = "in the app and by email" if choice == "email" else "in the app only"
    return pages.back(
        ctx, None, f"{ctx.base}/notification-preferences", f"You will be notified {said}."
    )
