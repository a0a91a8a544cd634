"""Who is asking and where: the signed-in user's view of the application, the company in
the path, and what every page's header shows.

Example::

    ctx = pages.context(request, "CRONUS")      # raises SignIn when nobody is signed in
    ctx.view.service.list_operations(...)       # as the signed-in user, front end "web"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from longops.app import ActorView
from longops.domain.operation import Company, Operation
from longops.domain.security import Action, Actor, Verdict, decide
from longops.web.session import SessionData


class SignIn(Exception):
    """Nobody (or nobody valid) is signed in: send the browser to the sign-in page."""

    def __init__(self, next_path: str | None = None) -> None:
        super().__init__("sign in first")
        self.next_path = next_path

    @property
    def location(self) -> str:
        if not self.next_path or not safe_path(self.next_path):
            return "/login"
        return f"/login?next={quote(self.next_path, safe='')}"


class PageError(Exception):
    """An error page with a status code (403, 404, 400, 409) and a sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def safe_path(path: str) -> bool:
    """Only our own pages are redirect targets (no scheme, host or protocol-relative URL)."""
    return (
        path.startswith("/")
        and not path.startswith("//")
        and "\\" not in path
        and not any(ch in path for ch in "\r\n")
    )


UNDO_SECONDS = 30
"""How long after a Delete on the pages its Undo can put the operations back (a copy of
each is kept that long: store migration 0017)."""
UNDO_LIMIT = 20
"""At most this many operations deleted at once get an Undo (their ids ride in the
session cookie with the notice); a larger bulk Delete says it cannot be undone."""


@dataclass
class Context:
    """One request of a signed-in user in one company."""

    view: ActorView
    session: SessionData
    company: str
    companies: list[Company]
    unread: int = 0
    running: list[Operation] = field(default_factory=list)
    running_percent: float | None = None
    notice: str | None = None
    undo: tuple[str, ...] = ()
    """The ids the notice's Undo button puts back (a Delete's notice)."""
    notice_about: str | None = None
    """The operation whose end the notice awaits ("asked to stop"), if it does; once the
    notice is settled (``Pages.settle_notice``), only while it still awaits it."""
    notice_settled: bool = False
    """Whether the notice was read against its operation (``Pages.settle_notice``)."""
    since: int = 0
    """The hub's event watermark taken before the page read anything: the page's stream
    catches up on whatever the hub handed out after it (``Pages.context``)."""
    notes_since: int = 0
    """The hub's notification watermark, taken at the same moment."""
    header_read: bool = False
    """Whether the header's reads (running operations, unread count) were made."""

    @property
    def actor(self) -> Actor:
        return self.view.actor

    @property
    def user(self) -> str:
        return self.view.actor.name

    @property
    def may_list_sessions(self) -> bool:
        """Worker sessions serve every company: only those who may list them see the page
        in the navigation (SUPER users)."""
        return decide(self.view.actor, Action.LIST_SESSIONS) is Verdict.ALLOWED

    @property
    def zone(self) -> ZoneInfo:
        for c in self.companies:
            if c.name == self.company:
                return ZoneInfo(c.time_zone)
        return ZoneInfo("UTC")

    @property
    def base(self) -> str:
        return f"/c/{quote(self.company, safe='')}"

    def template_vars(self) -> dict[str, Any]:
        return {
            "ctx": self,
            "csrf": self.session.csrf,
            "company": self.company,
            "base": self.base,
            "user": self.user,
            "companies": self.companies,
            "undo_seconds": UNDO_SECONDS,
        }
