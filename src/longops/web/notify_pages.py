"""The Notification Setup page of a company (Business Central: Job Queue Notification Setup
and Notified Admin): rules, notified admins, channels with a test-send, and the delivery
log with its retries and dead letters. The company's admins only; a channel's URL is
typed once and shown masked from then on.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse

from longops.domain.errors import ValidationError
from longops.domain.notify import Event
from longops.domain.security import Action, Verdict, decide
from longops.web.context import Context
from longops.web.pages import Csrf, Pages

PATH = "/c/{company}/notification-setup"
PREFS = "/c/{company}/notification-preferences"


def may_set_up(ctx: Context) -> bool:
    """True when the page's actor may read the company's notification setup."""
    actor = ctx.view.actor
    return decide(actor, Action.LIST_NOTIFICATION_SETUP, company=ctx.company) is Verdict.ALLOWED


def add_notification_setup(web: FastAPI, pages: Pages) -> None:
    """Add the page and its forms to the pages' app (``web.pages.create_pages``)."""
    pages.env.globals["may_set_up_notifications"] = may_set_up

    def render(
        ctx: Context, status: int = 200, *, error: str | None = None, given: Any = None
    ) -> HTMLResponse:
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

    def refused(ctx: Context, exc: ValidationError, form: str, given: dict[str, str]) -> Response:
        pages.fill_header(ctx)
        # The rule, never the value: a channel's URL may hold a password.
        return render(ctx, 400, error=f"{exc.field}: {exc.rule}.", given={"form": form, **given})

    @web.get(PATH, response_class=HTMLResponse)
    def notification_setup(request: Request, company: str) -> Response:
        ctx = pages.context(request, company)
        ctx.view.notification_setup.list_rules(company)  # refused unless an admin
        return render(ctx)

    @web.post(f"{PATH}/channels", response_class=HTMLResponse)
    def add_channel(
        request: Request,
        company: str,
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
            return refused(ctx, exc, "channel", {"name": name, "rate_limit": rate_limit})
        return pages.back(
            ctx, None, f"{ctx.base}/notification-setup", f"Channel {made.name} saved."
        )

    @web.post(f"{PATH}/channels/{{name}}/test")
    def send_test(request: Request, company: str, name: str, _: Csrf) -> Response:
        ctx = pages.context(request, company, header=False)
        error = ctx.view.notification_setup.test_channel(company, name)
        notice = f"Test sent to {name}." if error is None else f"Test to {name} failed: {error}"
        return pages.back(ctx, None, f"{ctx.base}/notification-setup", notice)

    @web.post(f"{PATH}/channels/{{name}}/remove")
    def remove_channel(request: Request, company: str, name: str, _: Csrf) -> Response:
        ctx = pages.context(request, company, header=False)
        ctx.view.notification_setup.remove_channel(company, name)
        return pages.back(ctx, None, f"{ctx.base}/notification-setup", f"Channel {name} removed.")

    @web.post(f"{PATH}/rules", response_class=HTMLResponse)
    def add_rule(
        request: Request,
        company: str,
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
            return refused(ctx, exc, "rule", given)
        return pages.back(ctx, None, f"{ctx.base}/notification-setup", f"Rule {made.name} saved.")

    @web.post(f"{PATH}/rules/{{name}}/remove")
    def remove_rule(request: Request, company: str, name: str, _: Csrf) -> Response:
        ctx = pages.context(request, company, header=False)
        ctx.view.notification_setup.remove_rule(company, name)
        return pages.back(ctx, None, f"{ctx.base}/notification-setup", f"Rule {name} removed.")

    @web.post(f"{PATH}/admins", response_class=HTMLResponse)
    def add_admin(
        request: Request, company: str, _: Csrf, user: Annotated[str, Form()] = ""
    ) -> Response:
        ctx = pages.context(request, company, header=False)
        try:
            ctx.view.notification_setup.add_admin(company, user.strip())
        except ValidationError as exc:
            return refused(ctx, exc, "admin", {"user": user})
        return pages.back(
            ctx, None, f"{ctx.base}/notification-setup", f"{user.strip()} is a notified admin."
        )

    @web.post(f"{PATH}/admins/{{user}}/remove")
    def remove_admin(request: Request, company: str, user: str, _: Csrf) -> Response:
        ctx = pages.context(request, company, header=False)
        ctx.view.notification_setup.remove_admin(company, user)
        return pages.back(
            ctx, None, f"{ctx.base}/notification-setup", f"{user} is no longer a notified admin."
        )

    @web.post(f"{PATH}/deliveries/{{delivery_id}}/retry")
    def retry_delivery(request: Request, company: str, delivery_id: int, _: Csrf) -> Response:
        ctx = pages.context(request, company, header=False)
        ctx.view.notification_setup.retry_delivery(company, delivery_id)
        return pages.back(
            ctx,
            None,
            f"{ctx.base}/notification-setup",
            f"Delivery {delivery_id} will be sent again.",
        )

    add_preferences(web, pages)


def add_preferences(web: FastAPI, pages: Pages) -> None:
    """A person's own page: mute or unmute each rule, and in-app only or also email."""

    def render(ctx: Context, status: int = 200, *, error: str | None = None) -> HTMLResponse:
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

    @web.get(PREFS, response_class=HTMLResponse)
    def preferences(request: Request, company: str) -> Response:
        return render(pages.context(request, company))

    @web.post(f"{PREFS}/rules/{{name}}/{{verb}}")
    def mute(request: Request, company: str, name: str, verb: str, _: Csrf) -> Response:
        ctx = pages.context(request, company, header=False)
        if verb not in ("mute", "unmute"):
            raise ValidationError("action", "must be mute or unmute", verb)
        ctx.view.notification_setup.mute_rule(company, name, muted=verb == "mute")
        done = "muted" if verb == "mute" else "no longer muted"
        return pages.back(ctx, None, f"{ctx.base}/notification-preferences", f"Rule {name} {done}.")

    @web.post(f"{PREFS}/email", response_class=HTMLResponse)
    def email(
        request: Request,
        company: str,
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
            return render(ctx, 400, error=f"{exc.field}: {exc.rule}.")
        said = "in the app and by email" if choice == "email" else "in the app only"
        return pages.back(
            ctx, None, f"{ctx.base}/notification-preferences", f"You will be notified {said}."
        )
