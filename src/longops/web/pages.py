"""The pages' routes: sign-in, the company pages, the forms they post, the live stream.

Every route is a plain function run in a worker thread (core calls block); every action
goes through core as the signed-in user (front end ``web``), so the permission table and
the company filter apply exactly as for the CLI and the REST API. Errors become pages:
PermissionDenied 403, NotFound (or another company) 404, bad input 400, a refused
transition 409.

Forms post and redirect back (303), so every page works without JavaScript; htmx and its
SSE extension only add live updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from longops.app import ActorView, Longops
from longops.asgi import BodyLimit
from longops.core.enqueue import EnqueueRequest
from longops.core.streams import EventHub
from longops.domain.errors import (
    Conflict,
    InvalidTransition,
    LongopsError,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    ValidationError,
)
from longops.domain.filters import OperationFilter
from longops.domain.operation import Operation, Outcome, Priority
from longops.domain.read_models import format_count
from longops.domain.security import Action, FrontEnd, Verdict, decide
from longops.domain.status import Status
from longops.domain.users import parse_session
from longops.web import present
from longops.web.context import Context, PageError, SignIn, safe_path
from longops.web.guard import WebOptions, foreign_origin, secure_request, too_large
from longops.web.session import COOKIE, MAX_AGE, SECURE_COOKIE, CookieSigner, SessionData

HERE = Path(__file__).parent
PAGE_SIZE = 50
BULK_LIMIT = 10_000
"""At most this many operations in one bulk action (all matching a filter)."""
T = TypeVar("T")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


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
            event_words=present.event_words,
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
            raise SignIn(_here(request) if request.method == "GET" else None)
        try:
            actor = self.app.security.authenticate_session(session.sid, FrontEnd.WEB)
        except (NotFound, PermissionDenied):
            raise SignIn() from None
        return self.app.as_actor(actor)

    def context(self, request: Request, company: str, *, header: bool = True) -> Context:
        """The request's user in ``company``; 404 for a company the user holds nothing in."""
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
        data: dict[str, Any] = {} if ctx is None else ctx.template_vars()
        if ctx is not None and stream is None:
            stream = f"{ctx.base}/stream"
        if stream is not None:
            # Where the hub stood when the page was drawn: the stream sends what happened
            # between this render and its own subscription (a form's redirect, say).
            mark = urlencode(
                {"since": self.hub.watermark, "notes": self.hub.notification_watermark}
            )
            stream += ("&" if "?" in stream else "?") + mark
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
        self, ctx: Context, path: str | None, default: str, notice: str | None = None
    ) -> RedirectResponse:
        """303 to ``path`` (one of our pages) or ``default``, with a notice shown once."""
        target = path if path and safe_path(path) and path.startswith(ctx.base) else default
        response = RedirectResponse(target, status_code=303)
        if notice is not None:
            self.set_cookie(response, ctx.session.with_notice(notice))
        return response


# -- header reads ----------------------------------------------------------------------------
def running_of(ctx: Context) -> list[Operation]:
    """The signed-in user's operations in process in this company."""
    return ctx.view.read_models.running_for_user(ctx.company)


def unread_of(ctx: Context) -> int:
    return ctx.view.inbox.unread_notifications(ctx.company)


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PageError(404, f"Operation {value} was not found.") from None


def find(ctx: Context, operation_id: str) -> Operation:
    """The operation, if it is in this company and the user may read it (else 404)."""
    try:
        op = ctx.view.service.get(_uuid(operation_id))
    except NotFound:
        raise PageError(404, f"Operation {operation_id} was not found.") from None
    if op.company != ctx.company:
        raise PageError(404, f"Operation {operation_id} was not found.")
    return op


# -- the list's filter -------------------------------------------------------------------------
def entries_filter(params: Mapping[str, str | None]) -> dict[str, str]:
    """The list's filter as given (only known, non-empty keys), for links and forms."""
    keys = ("status", "task", "category", "user", "q", "mine", "stalled")
    return {k: str(v) for k in keys if (v := params.get(k)) not in (None, "")}


def entries_query(ctx: Context, flt: Mapping[str, str], **extra: Any) -> OperationFilter:
    statuses: tuple[Status, ...] = ()
    if "status" in flt:
        try:
            statuses = (Status(flt["status"]),)
        except ValueError:
            raise ValidationError(
                "status", f"must be one of {', '.join(s.value for s in Status)}", flt["status"]
            ) from None
    user = flt.get("user")
    if flt.get("mine") == "1":
        user = ctx.view.actor.user
    stalled = {"1": True, "0": False}.get(flt.get("stalled", ""))
    return OperationFilter(
        company=ctx.company,
        statuses=statuses,
        task=flt.get("task"),
        category=flt.get("category"),
        user=user,
        text=flt.get("q"),
        stalled=stalled,
        descending=True,
        **extra,
    )


def matching_ids(ctx: Context, flt: Mapping[str, str]) -> list[uuid.UUID]:
    """Every operation the filter matches (newest first), at most BULK_LIMIT."""
    ids: list[uuid.UUID] = []
    before: int | None = None
    while len(ids) < BULK_LIMIT:
        page = ctx.view.service.list_operations(
            entries_query(ctx, flt, limit=1000, before_entry_no=before)
        )
        ids.extend(op.id for op in page)
        if len(page) < 1000:
            break
        before = page[-1].entry_no
    return ids[:BULK_LIMIT]


def facet_counts(ctx: Context, flt: Mapping[str, str]) -> dict[Status, str]:
    """Per status, how many operations the rest of the filter matches ("10,000+" past the cap)."""
    counts = ctx.view.read_models.status_counts(ctx.company, query=entries_query(ctx, flt))
    return {s: format_count(counts.get(s, 0)) for s in Status}


def facet_view(ctx: Context, flt: Mapping[str, str]) -> dict[str, Any]:
    """What the status facets show: per status its count and link, and the All link."""
    counts = facet_counts(ctx, flt)
    rest = {k: v for k, v in flt.items() if k != "status"}
    links = [
        (s, counts[s], "?" + urlencode({**rest, "status": s.value}), flt.get("status") == s.value)
        for s in Status
    ]
    return {
        "facets": links,
        "all_link": "?" + urlencode(rest),
        "all_active": "status" not in flt,
    }


def facets_html(pages: Pages, ctx: Context, flt: Mapping[str, str]) -> str:
    return pages.fragment("_facets.html", **facet_view(ctx, flt))


# -- forms -------------------------------------------------------------------------------------
def parse_args(text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The task's arguments from the form: a JSON list (positional) or object (keywords)."""
    if not text.strip():
        return (), {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError("args", f"must be JSON: {exc.msg}") from None
    if isinstance(data, list):
        return tuple(data), {}
    if isinstance(data, dict):
        return (), data
    raise ValidationError("args", "must be a JSON list (positional) or object (keywords)")


def parse_local(value: str, ctx: Context, field: str) -> datetime | None:
    """A date-and-time field (ISO, "YYYY-MM-DD HH:MM[:SS]"), read in the company's time zone."""
    if not value.strip():
        return None
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(field, "must be a date and time (YYYY-MM-DD HH:MM)", value) from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=ctx.zone)


def check_csrf(request: Request, csrf_token: Annotated[str | None, Form()] = None) -> None:
    """Refuse (403) a form whose CSRF token is not the session's."""
    pages: Pages = request.app.state.pages
    if foreign_origin(pages.options, request.scope) is not None:
        raise PageError(403, "The form did not come from this site (its Origin is foreign).")
    session = pages.session(request)
    if session is None or not session.csrf_ok(csrf_token):
        raise PageError(
            403,
            "The form has expired or did not come from this site. "
            "Go back, reload the page and try again.",
        )


Csrf = Annotated[None, Depends(check_csrf)]


def create_pages(
    app: Longops,
    hub: EventHub,
    *,
    secret: bytes | None = None,
    options: WebOptions | None = None,
) -> FastAPI:
    """The pages of ``app`` as an ASGI application (``longops serve`` mounts it at ``/``).

    ``secret`` signs the session cookies (at least 32 bytes); without one a random key is
    made, so sign-ins last as long as the process.

    Example::

        hub = EventHub(app.store)
        pages = create_pages(app, hub, secret=os.environb[b"LONGOPS_SECRET_KEY"])
    """
    pages = Pages(app, hub, CookieSigner(secret or secrets.token_bytes(32)), options)
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    web.state.pages = pages
    web.add_middleware(BodyLimit, limit=lambda scope: pages.options.max_body, reject=too_large)
    web.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _install_errors(web, pages)
    # Its own module, which reads Csrf and Pages from this one: imported once this is loaded.
    from longops.web.notify_pages import add_notification_setup

    add_notification_setup(web, pages)
    from longops.web.maintenance_pages import add_maintenance

    add_maintenance(web, pages)

    @web.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        secure_request.set(pages.options.is_secure(request.scope))
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # -- sign-in ------------------------------------------------------------------------
    @web.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str | None = None) -> Response:
        session = pages.session(request) or SessionData.anonymous()
        response = pages.render("login.html", None, csrf=session.csrf, next=next or "")
        pages.set_cookie(response, session)
        return response

    @web.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        _: Csrf,
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "",
    ) -> Response:
        session = pages.session(request) or SessionData.anonymous()
        address = pages.options.address(request)
        try:
            actor = app.security.authenticate_password(
                username.strip(), password, FrontEnd.WEB, address=address
            )
        except TooManyRequests as exc:
            response = pages.render(
                "login.html",
                None,
                429,
                csrf=session.csrf,
                next=next,
                error=f"{str(exc)[:1].upper()}{str(exc)[1:]}.",
                username=username,
            )
            response.headers["Retry-After"] = str(exc.retry_after)
            pages.set_cookie(response, session)
            return response
        except (PermissionDenied, ValidationError, NotFound):
            response = pages.render(
                "login.html",
                None,
                400,
                csrf=session.csrf,
                next=next,
                error="Wrong user name or password.",
                username=username,
            )
            pages.set_cookie(response, session)
            return response
        assert actor.user is not None
        target = next if next and safe_path(next) and next.startswith("/c/") else "/"
        done = RedirectResponse(target, status_code=303)
        agent = request.headers.get("user-agent", "")[:200]
        _record, sid = app.security.start_session(actor.user, client=f"{address or '?'} {agent}")
        pages.set_cookie(done, session.signed_in(actor.user, sid))
        return done

    @web.post("/logout")
    def logout(request: Request, _: Csrf) -> Response:
        session = pages.session(request)
        if session is not None and session.sid is not None:
            app.security.end_session(session.sid)
        response = RedirectResponse("/login", status_code=303)
        pages.set_cookie(response, SessionData.anonymous())
        return response

    @web.get("/")
    def home(request: Request) -> Response:
        view = pages.view_of(pages.session(request), request)
        names = sorted(view.actor.companies) or [c.name for c in view.companies.list_companies()]
        if not names:
            raise PageError(403, "You hold no permission set in any company.")
        return RedirectResponse(f"/c/{names[0]}/", status_code=303)

    @web.get("/switch")
    def switch(request: Request, company: str = "") -> Response:
        ctx = pages.context(request, company, header=False)
        return RedirectResponse(f"{ctx.base}/", status_code=303)

    # -- one's own sign-ins ----------------------------------------------------------------
    @web.get("/c/{company}/account", response_class=HTMLResponse)
    def account(request: Request, company: str) -> Response:
        ctx = pages.context(request, company)
        listed = ctx.view.security.list_web_sessions(ctx.user)
        live = [s for s in listed if s.usable_at(app.clock.now(), app.security.sessions.idle)]
        current = parse_session(ctx.session.sid or "")
        return pages.render(
            "account.html", ctx, title="Your sign-ins", sign_ins=live, current=current
        )

    @web.post("/c/{company}/account/end")
    def end_sign_ins(
        request: Request,
        company: str,
        _: Csrf,
        session_id: Annotated[str, Form()] = "",
    ) -> Response:
        ctx = pages.context(request, company, header=False)
        chosen = session_id or None
        ended = ctx.view.security.end_web_sessions(ctx.user, chosen)
        if chosen is None or parse_session(ctx.session.sid or "") == uuid.UUID(chosen):
            response = RedirectResponse("/login", status_code=303)
            pages.set_cookie(response, SessionData.anonymous())
            return response
        return pages.back(ctx, None, f"{ctx.base}/account", f"{ended} sign-in ended.")

    # -- overview ------------------------------------------------------------------------
    @web.get("/c/{company}/", response_class=HTMLResponse)
    def overview(request: Request, company: str) -> Response:
        ctx = pages.context(request, company)
        view = ctx.view.read_models.overview(company)
        cues = [
            ("Ready", view.ready, {"status": "ready"}),
            ("In process", view.in_process, {"status": "in_process"}),
            ("Failed", view.failed, {"status": "error"}),
            ("My failures", view.my_failures, {"status": "error", "mine": "1"}),
            ("Stalled", view.stalled, {"status": "in_process", "stalled": "1"}),
        ]
        buckets = [(b.finished, b.failed) for b in view.per_hour]
        return pages.render(
            "overview.html",
            ctx,
            title="Overview",
            cues=[(label, format_count(n), urlencode(q)) for label, n, q in cues],
            chart=present.bars(buckets),
            chart_hours=[present.local(b.start, ctx.zone)[11:16] for b in view.per_hour],
            chart_total_finished=sum(f for f, _ in buckets),
            chart_total_failed=sum(e for _, e in buckets),
            chart_top=max([max(f, e) for f, e in buckets] or [0]),
            zone_name=ctx.zone.key,
            longest=view.longest_running,
            now=app.clock.now(),
        )

    # -- job queue entries ---------------------------------------------------------------
    @web.get("/c/{company}/entries", response_class=HTMLResponse)
    def entries(
        request: Request,
        company: str,
        after: Annotated[int | None, Query(ge=0)] = None,
    ) -> Response:
        ctx = pages.context(request, company)
        flt = entries_filter(request.query_params)
        query = entries_query(ctx, flt, limit=PAGE_SIZE + 1, before_entry_no=after)
        ops = ctx.view.service.list_operations(query)
        more = len(ops) > PAGE_SIZE
        ops = ops[:PAGE_SIZE]
        rows = rows_of(pages, ctx, ops, _here(request))
        next_link = None
        if more and ops:
            next_link = "?" + urlencode({**flt, "after": ops[-1].entry_no})
        tasks = app.tasks.names()
        categories = [c.code for c in ctx.view.companies.list_categories(company)]
        return pages.render(
            "entries.html",
            ctx,
            stream=f"{ctx.base}/stream?"
            + urlencode(
                {
                    "view": "list",
                    "rows": ",".join(str(op.id) for op in ops),
                    "next": _here(request),
                }
            ),
            title="My operations" if flt.get("mine") == "1" else "Job Queue Entries",
            rows=rows,
            flt=flt,
            **facet_view(ctx, flt),
            next_link=next_link,
            first_link=("?" + urlencode(flt)) if after is not None else None,
            can_act=present.can_act_somewhere(ctx.actor, company),
            tasks=tasks,
            categories=categories,
            here=_here(request),
        )

    @web.get("/c/{company}/entries/new", response_class=HTMLResponse)
    def new_form(request: Request, company: str, task: str = "") -> Response:
        ctx = pages.context(request, company)
        given = {"task": task}
        with contextlib.suppress(NotFound):
            # A task named in the link starts with its arguments to edit.
            given["args"] = app.tasks.example(task) if task else ""
        return new_page(pages, ctx, given, None)

    @web.post("/c/{company}/entries/new", response_class=HTMLResponse)
    def enqueue(
        request: Request,
        company: str,
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

    @web.get("/c/{company}/entries/{operation_id}", response_class=HTMLResponse)
    def card(request: Request, company: str, operation_id: str) -> Response:
        ctx = pages.context(request, company)
        op = find(ctx, operation_id)
        here = _here(request)
        live = card_live(pages, ctx, op, here)
        return pages.render(
            "entry.html",
            ctx,
            stream=f"{ctx.base}/stream?"
            + urlencode({"view": "card", "op": str(op.id), "next": here}),
            title=op.description or op.task,
            op=op,
            live=live,
            **card_details(ctx, op),
            # A read-only user gets no Edit form at all (no action controls), not a
            # disabled one.
            may_edit=present.may(ctx.actor, Action.UPDATE_OPERATION, op),
            editable=op.status is Status.ON_HOLD
            and present.may(ctx.actor, Action.UPDATE_OPERATION, op),
            priorities=[p.label for p in Priority],
            categories=[c.code for c in ctx.view.companies.list_categories(company)],
            recurrence_text=present.recurrence_text(op.recurrence),
            here=here,
        )

    @web.post("/c/{company}/entries/{operation_id}/edit")
    def edit(
        request: Request,
        company: str,
        operation_id: str,
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
            max_attempts=_whole("max_attempts", max_attempts, op.max_attempts),
            timeout=float(_whole("timeout", timeout, int(op.timeout.total_seconds()))),
            recurrence=chosen,
        )
        card_path = f"{ctx.base}/entries/{op.id}"
        return pages.back(ctx, None, card_path, f"Operation {op.entry_no} saved.")

    # -- log entries -------------------------------------------------------------------------
    @web.get("/c/{company}/log-entries", response_class=HTMLResponse)
    def log_entries(
        request: Request,
        company: str,
        task: str = "",
        outcome: str = "",
        started_from: str = "",
        started_to: str = "",
        after: Annotated[int | None, Query(ge=0)] = None,
    ) -> Response:
        ctx = pages.context(request, company)
        flt = {
            k: v
            for k, v in (
                ("task", task),
                ("outcome", outcome),
                ("started_from", started_from),
                ("started_to", started_to),
            )
            if v
        }
        found = ctx.view.read_models.list_attempts(
            company,
            task=task or None,
            outcome=outcome or None,
            started_from=parse_local(started_from, ctx, "started_from"),
            started_to=parse_local(started_to, ctx, "started_to"),
            before_entry_no=after,
            limit=PAGE_SIZE + 1,
        )
        more = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
        next_link = None
        if more and found:
            next_link = "?" + urlencode({**flt, "after": found[-1].attempt.id})
        return pages.render(
            "log_entries.html",
            ctx,
            title="Log Entries",
            entries=found,
            flt=flt,
            outcomes=[o.value for o in Outcome],
            tasks=app.tasks.names(),
            next_link=next_link,
            first_link=("?" + urlencode(flt)) if after is not None else None,
            admin=decide(ctx.actor, Action.DELETE_LOG_ENTRIES, company=company) is Verdict.ALLOWED,
        )

    @web.post("/c/{company}/log-entries/delete")
    def delete_log_entries(
        request: Request,
        company: str,
        _: Csrf,
        older_than_days: Annotated[str, Form()] = "7",
    ) -> Response:
        ctx = pages.context(request, company, header=False)
        days = _whole("older_than_days", older_than_days, 7)
        n = ctx.view.service.delete_log_entries(company, older_than_days=days)
        return pages.back(
            ctx,
            None,
            f"{ctx.base}/log-entries",
            f"Deleted {n:,} log entr{'y' if n == 1 else 'ies'} older than {days} days.",
        )

    # -- notifications -----------------------------------------------------------------------
    @web.get("/c/{company}/notifications", response_class=HTMLResponse)
    def notifications(
        request: Request,
        company: str,
        unread: str = "",
        after: Annotated[int | None, Query(ge=0)] = None,
    ) -> Response:
        ctx = pages.context(request, company)
        items = ctx.view.inbox.notifications(
            company, unread_only=unread == "1", limit=PAGE_SIZE + 1, before_id=after
        )
        more = len(items) > PAGE_SIZE
        items = items[:PAGE_SIZE]
        ops: dict[uuid.UUID, Operation] = {}
        for n in items:
            if n.operation_id in ops:
                continue
            with contextlib.suppress(NotFound):  # deleted since: no actions then
                ops[n.operation_id] = ctx.view.service.get(n.operation_id)
        restartable = {
            oid: present.status_allows(Action.RESTART, op)
            and present.may(ctx.actor, Action.RESTART, op)
            for oid, op in ops.items()
        }
        next_link = None
        if more and items:
            query = {"after": str(items[-1].id)}
            if unread == "1":
                query["unread"] = "1"
            next_link = "?" + urlencode(query)
        return pages.render(
            "notifications.html",
            ctx,
            title="Notifications",
            items=items,
            ops=ops,
            restartable=restartable,
            unread_only=unread == "1",
            next_link=next_link,
            here=_here(request),
        )

    @web.post("/c/{company}/notifications/read")
    def mark_read(
        request: Request,
        company: str,
        _: Csrf,
        ids: Annotated[list[str] | None, Form()] = None,
    ) -> Response:
        ctx = pages.context(request, company, header=False)
        chosen = None if not ids else [_whole("ids", i, 0) for i in ids]
        n = ctx.view.inbox.mark_notifications_read(company, chosen)
        return pages.back(
            ctx,
            None,
            f"{ctx.base}/notifications",
            f"{n:,} notification{'' if n == 1 else 's'} marked read.",
        )

    @web.post("/c/{company}/entries/{operation_id}/{action}")
    def act(
        request: Request,
        company: str,
        operation_id: str,
        action: str,
        _: Csrf,
        next: Annotated[str, Form()] = "",
    ) -> Response:
        ctx = pages.context(request, company, header=False)
        if action not in present.ACTION_OF_PATH:
            raise PageError(404, f"There is no action {action}.")
        op = find(ctx, operation_id)
        after = run_action(ctx, action, op)
        card_path = f"{ctx.base}/entries/{op.id}"
        default = f"{ctx.base}/entries" if action == "delete" else card_path
        if action == "delete" and next.startswith(card_path):
            next = ""
        return pages.back(ctx, next, default, present.action_notice(action, op, after))

    # -- bulk actions ----------------------------------------------------------------------
    @web.post("/c/{company}/entries/bulk", response_class=HTMLResponse)
    def bulk(
        request: Request,
        company: str,
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
            chosen = [_uuid(i) for i in dict.fromkeys(ids or [])]
        back = next if next and safe_path(next) else f"{ctx.base}/entries"
        if not chosen:
            return pages.back(ctx, back, f"{ctx.base}/entries", "Nothing was selected.")
        if confirmed != "1":
            return pages.render(
                "confirm.html",
                ctx,
                title=f"{verb} {_count(len(chosen))}?",
                verb=verb,
                action=action,
                count=len(chosen),
                ids=[] if all_matching == "1" else chosen,
                all_matching=all_matching == "1",
                flt=flt,
                back=back,
            )
        done, refused = 0, 0
        reasons: dict[str, int] = {}
        for oid in chosen:
            try:
                op = find(ctx, str(oid))
                run_action(ctx, action, op)
                done += 1
            except (PageError, LongopsError) as exc:
                refused += 1
                reason = exc.message if isinstance(exc, PageError) else type(exc).__name__
                reasons[reason] = reasons.get(reason, 0) + 1
        past = {"Cancel": "Cancelled", "Restart": "Restarted", "Delete": "Deleted"}[verb]
        notice = f"{past} {_count(done)}."
        if refused:
            notice += (
                f" {_count(refused)} could not be: "
                + ", ".join(f"{n} {_why(r)}" for r, n in reasons.items())
                + "."
            )
        return pages.back(ctx, back, f"{ctx.base}/entries", notice)

    # -- categories and sessions -----------------------------------------------------------
    @web.get("/c/{company}/categories", response_class=HTMLResponse)
    def categories(request: Request, company: str) -> Response:
        return categories_page(pages, pages.context(request, company))

    @web.post("/c/{company}/categories", response_class=HTMLResponse)
    def save_category(
        request: Request,
        company: str,
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
            field = _CATEGORY_FIELDS.get(exc.field, "code")
            message = f"{_CATEGORY_LABELS[field]} {exc.rule}."
            problem = FormError(field, message, given)
            if row == "1":
                return categories_page(pages, ctx, 400, row_error=(code, problem))
            return categories_page(pages, ctx, 400, new_error=problem)
        return pages.back(ctx, None, f"{ctx.base}/categories", f"Category {code.strip()} saved.")

    @web.get("/c/{company}/sessions", response_class=HTMLResponse)
    def sessions(request: Request, company: str) -> Response:
        ctx = pages.context(request, company)
        svc = ctx.view.sessions
        if decide(ctx.actor, Action.LIST_SESSIONS) is not Verdict.ALLOWED:
            return pages.render("sessions.html", ctx, title="Sessions", allowed=False)
        listed = svc.list_sessions()
        by_session = svc.session_operations()
        events = svc.session_events()
        events_by: dict[uuid.UUID, list[Any]] = {}
        for e in events:
            events_by.setdefault(e.session_id, []).append(e)
        return pages.render(
            "sessions.html",
            ctx,
            title="Sessions",
            allowed=True,
            sessions=listed,
            current=by_session,
            events=events_by,
            can_drain=decide(ctx.actor, Action.DRAIN_SESSION) is Verdict.ALLOWED,
        )

    @web.post("/c/{company}/sessions/{session_id}/drain")
    def drain(request: Request, company: str, session_id: str, _: Csrf) -> Response:
        ctx = pages.context(request, company, header=False)
        try:
            sid = uuid.UUID(session_id)
        except ValueError:
            raise PageError(404, f"Session {session_id} was not found.") from None
        ctx.view.sessions.drain_session(sid)
        return pages.back(ctx, None, f"{ctx.base}/sessions", f"Session {sid} asked to drain.")

    # -- the live stream -------------------------------------------------------------------
    @web.get("/c/{company}/stream")
    async def stream(
        request: Request,
        company: str,
        view: str = "none",
        op: str | None = None,
        rows: str = "",
        next: str = "",
        since: Annotated[int | None, Query(ge=0)] = None,
        notes: Annotated[int | None, Query(ge=0)] = None,
    ) -> Response:
        from longops.web.stream import Watch, page_stream

        ctx = await _thread(pages.context, request, company, header=False)
        card_id = _uuid(op) if op else None
        shown = {_uuid(i) for i in rows.split(",") if i.strip()} if view == "list" else set()
        if card_id is not None:
            shown.add(card_id)
        if len(shown) > 500:
            raise ValidationError("rows", "must name at most 500 operations", len(shown))
        watch = Watch(view, frozenset(shown), card_id, next if safe_path(next) else "")
        watch.since, watch.notes_after = since, notes
        return StreamingResponse(
            page_stream(pages, request, ctx, watch),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return web


async def _thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


def _count(n: int) -> str:
    return f"{n:,} operation" + ("" if n == 1 else "s")


def _whole(field: str, text: str, default: int) -> int:
    if not text.strip():
        return default
    try:
        return int(text.strip())
    except ValueError:
        raise ValidationError(field, "must be a whole number", text) from None


def _why(reason: str) -> str:
    words = {
        "InvalidTransition": "not in a status that allows it",
        "PermissionDenied": "not yours to change",
        "Conflict": "changed meanwhile",
    }
    return words.get(reason, reason)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, sort_keys=True)


def run_action(ctx: Context, path: str, op: Operation) -> Operation | None:
    """Do one row action through core, as the signed-in user."""
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
    svc.delete(op.id)
    return None


def rows_of(
    pages: Pages, ctx: Context, ops: Sequence[Operation], next_path: str
) -> list[dict[str, Any]]:
    """What each list row shows, wait reasons and ETAs derived now (two reads for all)."""
    svc = ctx.view.service
    waits = svc.wait_reasons(ops)
    progress = svc.estimated(ops)
    now = pages.app.clock.now()
    return [
        {
            "op": op,
            "progress": present.progress_view(op, progress.get(op.id), now, ctx.zone),
            "wait": waits.get(op.id),
            "actions": present.actions_for(ctx.actor, op),
        }
        for op in ops
    ]


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
    svc = ctx.view.service
    progress = svc.estimated([op]).get(op.id)
    waits = svc.wait_reasons([op])
    return {
        "op": op,
        "progress": present.progress_view(op, progress, pages.app.clock.now(), ctx.zone),
        "wait": waits.get(op.id),
        "actions": present.actions_for(ctx.actor, op),
    }


def card_details(ctx: Context, op: Operation) -> dict[str, Any]:
    """What the card shows below its live part: fields, checkpoint, timeline, attempts."""
    svc = ctx.view.service
    return {
        "attempts": svc.attempts(op.id),
        "events": svc.events(op.id, limit=500),
        "spark": present.sparkline(svc.progress_history(op.id, points=120)),
        "json": _json,
        "arguments": _json({"args": list(op.args), "kwargs": dict(op.kwargs)}),
    }


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


@dataclass(frozen=True, slots=True)
class FormError:
    """A refused form: the field at fault, the sentence shown beside it, what was typed."""

    field: str
    message: str
    given: Mapping[str, str]


_CATEGORY_FIELDS = {
    "category": "code",
    "code": "code",
    "description": "description",
    "max_concurrent": "max_concurrent",
}
_CATEGORY_LABELS = {
    "code": "Code",
    "description": "Description",
    "max_concurrent": "Max concurrent",
}


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


def new_page(
    pages: Pages, ctx: Context, given: Mapping[str, str], error: str | None, status: int = 200
) -> HTMLResponse:
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


def _install_errors(web: FastAPI, pages: Pages) -> None:
    async def page(request: Request, status: int, message: str) -> HTMLResponse:
        ctx: Context | None = getattr(request.state, "ctx", None)
        if ctx is not None and not ctx.header_read:
            # A form's route skips the header's reads; its error page shows the header.
            with contextlib.suppress(LongopsError):
                await asyncio.to_thread(pages.fill_header, ctx)
        return pages.render(
            "error.html", ctx, status, title=_TITLES.get(status, "Error"), message=message
        )

    @web.exception_handler(SignIn)
    async def _sign_in(request: Request, exc: SignIn) -> Response:
        if request.url.path.endswith("/stream"):
            return Response(status_code=401)
        return RedirectResponse(exc.location, status_code=303)

    @web.exception_handler(PageError)
    async def _page(request: Request, exc: PageError) -> Response:
        return await page(request, exc.status, exc.message)

    @web.exception_handler(LongopsError)
    async def _longops(request: Request, exc: LongopsError) -> Response:
        if isinstance(exc, TooManyRequests):
            busy = await page(request, 429, str(exc))
            busy.headers["Retry-After"] = str(exc.retry_after)
            return busy
        if isinstance(exc, PermissionDenied):
            return await page(request, 403, str(exc))
        if isinstance(exc, NotFound):
            return await page(request, 404, str(exc))
        if isinstance(exc, (InvalidTransition, Conflict)):
            return await page(request, 409, str(exc))
        return await page(request, 400, str(exc))

    @web.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "input"
        return await page(request, 400, f"{where}: {first.get('msg', 'is not valid')}")

    @web.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
        return await page(request, exc.status_code, message)


_TITLES = {
    400: "That did not work",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    429: "Too many requests",
}
