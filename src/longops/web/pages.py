"""What every page shares: the templates, the session cookie, who is asking in which
company, and how a page is drawn or a form answered.

One :class:`Pages` per application lives in the pages' app state (``create_pages`` puts
it there); a route reads it through the ``PagesDep`` dependency (``web/deps.py``).

Example::

    @router.get("/c/{company}/", response_class=HTMLResponse)
    def overview(request: Request, company: str, pages: PagesDep) -> Response:
        ctx = pages.context(request, company)      # SignIn / 404 unless allowed
        return pages.render("overview.html", ctx, title="Overview")
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from longops.app import ActorView, Longops
from longops.core.streams import EventHub
from longops.domain.errors import LongopsError, NotFound, PermissionDenied
from longops.domain.operation import Operation
from longops.domain.security import FrontEnd
from longops.domain.status import Status
from longops.web import present
from longops.web.context import Context, PageError, SignIn, safe_path
from longops.web.guard import WebOptions, secure_request
from longops.web.session import COOKIE, MAX_AGE, SECURE_COOKIE, CookieSigner, SessionData

HERE = Path(__file__).parent
PAGE_SIZE = 50
"""Rows on one page of a list (entries, log entries, notifications)."""


class Pages:
    """The pages of one application: templates, the cookie signer and the event hub."""

    def __init__(
        self,
        app: Longops,
        hub: EventHub,
        signer: CookieSigner,
        options: WebOptions | None = None,
    ) -> None:
        self.app = app
        self.hub = hub
        self.signer = signer
        self.options = options or WebOptions()
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            # The templates ship with the code: no stat() of each one on every use (a list
            # page uses its row template fifty times) to see whether it changed on disk.
            auto_reload=False,
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            local=present.local,
            iso=present.iso,
            duration=present.duration,
            wait_text=present.wait_text,
            caption=present.status_caption,
            status_text=present.status_text,
            ended_notice=present.ended_notice,
            event_words=present.event_words,
            scrub_paths=present.scrub_paths,
            may_set_up_notifications=present.may_set_up_notifications,
            maintenance_now=present.maintenance_now,
            statuses=list(Status),
        )

    # -- sessions --------------------------------------------------------------------------
    def session(self, request: Request) -> SessionData | None:
        name = SECURE_COOKIE if self.options.is_secure(request.scope) else COOKIE
        return self.signer.load(request.cookies.get(name))

    def set_cookie(self, response: Response, data: SessionData) -> None:
        secure = secure_request.get()
        response.set_cookie(
            SECURE_COOKIE if secure else COOKIE,
            self.signer.dump(data),
            max_age=MAX_AGE,
            httponly=True,
            samesite="lax",
            path="/",
            secure=secure,
        )

    def view_of(self, session: SessionData | None, request: Request) -> ActorView:
        """The signed-in user's view; SignIn when nobody is, or the server-side session
        has ended (signed out, idle, expired, the user disabled)."""
        if session is None or session.user is None or session.sid is None:
            raise SignIn(here(request) if request.method == "GET" else None)
        try:
            actor = self.app.security.authenticate_session(session.sid, FrontEnd.WEB)
        except (NotFound, PermissionDenied):
            raise SignIn() from None
        return self.app.as_actor(actor)

    def context(self, request: Request, company: str, *, header: bool = True) -> Context:
        """The request's user in ``company``; 404 for a company the user holds nothing in.

        The hub's watermarks are taken first, before the page reads anything: whatever
        the hub hands out after them may be missing from the page, and its stream catches
        up on it (taken at the render, an event handed out between a read and the render
        would be neither in the page nor sent)."""
        since, notes_since = self.hub.watermark, self.hub.notification_watermark
        session = self.session(request)
        view = self.view_of(session, request)
        assert session is not None
        actor = view.actor
        companies = view.companies.list_companies()
        if company not in {c.name for c in companies} or (
            not actor.is_super and company not in actor.companies
        ):
            raise PageError(404, f"Company {company} was not found.")
        ctx = Context(view=view, session=session, company=company, companies=companies)
        ctx.notice = session.notice
        ctx.undo = session.undo
        ctx.notice_about = session.about
        ctx.since, ctx.notes_since = since, notes_since
        if header:
            self.fill_header(ctx)
        request.state.ctx = ctx
        return ctx

    def fill_header(self, ctx: Context) -> None:
        """The header's unread count and background indicator (the user's running work)."""
        ctx.header_read = True
        if ctx.view.actor.user is None:
            return
        ctx.running = running_of(ctx)
        ctx.unread = unread_of(ctx)
        percents = [
            p.percent for p in (op.progress for op in ctx.running) if p and p.percent is not None
        ]
        ctx.running_percent = sum(percents) / len(percents) if percents else None

    def settle_notice(self, ctx: Context, op: Operation | None = None) -> None:
        """Read a carried notice that awaits an operation's end ("asked to stop") against
        that operation (``op`` when the page has read it, else one read): once it is done,
        the notice says what happened (``present.notice_now``); while it is not,
        ``ctx.notice_about`` stays, and the page's stream replaces the notice when it ends."""
        if ctx.notice_settled or ctx.notice_about is None:
            return
        ctx.notice_settled = True
        if op is None or str(op.id) != ctx.notice_about:
            op = _visible(ctx, ctx.notice_about)
        if op is None:  # deleted, or out of sight: the notice stays as it was said
            ctx.notice_about = None
            return
        ctx.notice, awaits = present.notice_now(ctx.notice, ctx.notice_about, op)
        if not awaits:
            ctx.notice_about = None

    # -- rendering -------------------------------------------------------------------------
    def render(
        self,
        name: str,
        ctx: Context | None,
        status: int = 200,
        *,
        stream: str | None = None,
        **values: Any,
    ) -> HTMLResponse:
        if ctx is not None:
            self.settle_notice(ctx)
        data: dict[str, Any] = {} if ctx is None else ctx.template_vars()
        if ctx is not None and stream is None:
            stream = f"{ctx.base}/stream"
        if stream is not None:
            # Where the hub stood before the page read anything (``context``; a page
            # without one, now): the stream sends what happened between then and its own
            # subscription (during the page's reads, or a form's redirect, say).
            marks: dict[str, Any] = (
                {"since": self.hub.watermark, "notes": self.hub.notification_watermark}
                if ctx is None
                else {"since": ctx.since, "notes": ctx.notes_since}
            )
            if ctx is not None and ctx.notice_about is not None:
                marks["notice"] = ctx.notice_about  # replaced once that operation is done
            stream += ("&" if "?" in stream else "?") + urlencode(marks)
        data["stream_url"] = stream
        data.update(values)
        html = self.env.get_template(name).render(**data)
        response = HTMLResponse(html, status_code=status)
        if ctx is not None and ctx.notice is not None:
            self.set_cookie(response, ctx.session.with_notice(None))
        return response

    def fragment(self, name: str, **values: Any) -> str:
        return self.env.get_template(name).render(**values)

    def back(
        self,
        ctx: Context,
        path: str | None,
        default: str,
        notice: str | None = None,
        *,
        undo: tuple[str, ...] = (),
        about: str | None = None,
    ) -> RedirectResponse:
        """303 to ``path`` (one of our pages) or ``default``, with a notice shown once (and
        an Undo button that puts back the operations ``undo`` names; ``about``: the
        operation whose end the notice foretells, ``present.notice_now``)."""
        target = path if path and safe_path(path) and path.startswith(ctx.base) else default
        response = RedirectResponse(target, status_code=303)
        if notice is not None:
            self.set_cookie(response, ctx.session.with_notice(notice, undo, about))
        return response


# -- header reads ----------------------------------------------------------------------------
def running_of(ctx: Context) -> list[Operation]:
    """The signed-in user's operations in process in this company."""
    return ctx.view.read_models.running_for_user(ctx.company)


def _visible(ctx: Context, operation_id: str) -> Operation | None:
    """The operation of this company, if the user may read it (None otherwise)."""
    try:
        op = ctx.view.service.get(uuid.UUID(operation_id))
    except (ValueError, LongopsError):
        return None
    return op if op.company == ctx.company else None


def unread_of(ctx: Context) -> int:
    return ctx.view.inbox.unread_notifications(ctx.company)


def here(request: Request) -> str:
    """The request's path and query: where a form sends the browser back to."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")
