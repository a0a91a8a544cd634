"""Notification rules, notified admins, outbound channels and deliveries, as data.

Business Central's *Job Queue Notification Setup* notifies on failure the user who
scheduled the entry, or the *Job Queue Notified Admin* users; longops keeps that as the
``default`` rule every company starts with, and adds rules of its own: *when* (an
:class:`Event`), *which* operations (task, category, queue, user) and *who*
(:func:`parse_recipient`). An event some rule listens to is written to the outbox in the
transaction that caused it; the delivery service expands it into one :class:`Delivery` per
recipient (:func:`plan`), each with a stable idempotency key (:func:`idem_key`).

Example::

    >>> parse_recipient("channel:ops")
    'channel:ops'
    >>> mask_url("mailtos://bob:hunter2@mail.example.com:587?to=ops@example.com")
    'mailtos://bob:****@mail.example.com:587/****'
    >>> backoff(3)
    datetime.timedelta(seconds=40)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from longops.domain.errors import ValidationError
from longops.domain.operation import NAME_RE, Operation
from longops.domain.status import Status


class Event(StrEnum):
    """What happened to an operation that a rule may listen to."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Failed with no attempts left (status Error)."""
    ATTEMPT_FAILED = "attempt_failed"
    """An attempt failed and the operation will be retried."""
    CANCELLED = "cancelled"
    STALLED = "stalled"
    """Its progress has not moved for the task's ``stall_after``."""
    RUNNING_LONG = "running_long"
    """In process longer than the rule's ``threshold`` minutes, or (no threshold) longer
    than the task usually takes: the p95 of its recent successful runs."""
    WAITING_LONG = "waiting_long"
    """Ready and due for longer than the rule's ``threshold`` minutes, not yet started."""
    MILESTONE = "milestone"
    """Its progress reached the rule's ``threshold`` percent."""

    @property
    def watched(self) -> bool:
        """True for conditions that need a clock (the watch service), not a change."""
        return self in WATCHED

    @property
    def caption(self) -> str:
        return _CAPTIONS[self]

    @classmethod
    def parse(cls, value: str) -> Event:
        for member in cls:
            if value == member.value:
                return member
        raise ValidationError("on", f"must be one of {', '.join(e.value for e in cls)}", value)


WATCHED = frozenset({Event.RUNNING_LONG, Event.WAITING_LONG, Event.MILESTONE})

_CAPTIONS = {
    Event.RUNNING_LONG: "is taking long",
    Event.WAITING_LONG: "has waited long to start",
    Event.MILESTONE: "reached a milestone",
    Event.SUCCEEDED: "succeeded",
    Event.FAILED: "failed",
    Event.ATTEMPT_FAILED: "failed an attempt and will be retried",
    Event.CANCELLED: "was cancelled",
    Event.STALLED: "has stalled",
}

INBOX_EVENTS = frozenset({Event.SUCCEEDED, Event.FAILED, Event.CANCELLED})
"""The events the in-app inbox can hold (its kinds), and that it already receives for the
operation's own user (a trigger of its own, migration 5)."""

OWNER = "owner"
ADMINS = "admins"
OWNER_OR_ADMINS = "owner_or_admins"
"""Business Central's default: the user who scheduled the operation, or the admins when
none did."""


def parse_recipient(text: str) -> str:
    """A recipient as a rule stores it: ``owner``, ``admins``, ``owner_or_admins``,
    ``user:NAME`` or ``channel:NAME``.

    Example::

        parse_recipient("user:alice")   # 'user:alice'
    """
    value = text.strip() if isinstance(text, str) else text
    if value in (OWNER, ADMINS, OWNER_OR_ADMINS):
        return str(value)
    if isinstance(value, str):
        kind, _, name = value.partition(":")
        if kind in ("user", "channel") and NAME_RE.fullmatch(name):
            return f"{kind}:{name}"
    raise ValidationError(
        "to", "must be owner, admins, owner_or_admins, user:NAME or channel:NAME", text
    )


def check_name(field: str, value: str) -> str:
    """``value`` as a name (rule, channel, user), by the rule every name follows."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ValidationError(
            field,
            "must be 1-100 characters of letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit",
            value,
        )
    return value


@dataclass(frozen=True, slots=True)
class Rule:
    """When something happens to which operations of a company, notify whom."""

    company: str
    name: str
    on: Event
    recipients: tuple[str, ...]
    task: str | None = None
    category: str | None = None
    queue: str | None = None
    user: str | None = None
    enabled: bool = True
    created_at: datetime | None = None
    threshold: float | None = None
    """Minutes (running_long, waiting_long) or a percentage (milestone)."""

    def to_json(self) -> dict[str, object]:
        """The rule as the command line and the REST API print it."""
        return {
            "name": self.name,
            "on": self.on.value,
            "to": list(self.recipients),
            "task": self.task,
            "category": self.category,
            "queue": self.queue,
            "user": self.user,
            "enabled": self.enabled,
            "threshold": self.threshold,
        }

    def matches(self, event: Event, op: Operation) -> bool:
        """True when this rule listens to ``event`` on ``op``."""
        return (
            self.enabled
            and self.on is event
            and (self.task is None or self.task == op.task)
            and (self.category is None or self.category == op.category)
            and (self.queue is None or self.queue == op.queue)
            and (self.user is None or self.user == op.user)
        )


@dataclass(frozen=True, slots=True)
class Channel:
    """An outbound channel as people may see it: never the URL, only its masked form."""

    company: str
    name: str
    url_masked: str
    url_schema: str
    created_at: datetime
    rate_limit: int | None = None
    """At most this many sends per ``rate_window`` seconds; past it, one digest."""
    rate_window: int = 60


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    """Not sent yet (or failed and waiting for its next try at ``next_at``)."""
    SENT = "sent"
    DEAD = "dead"
    """Failed ``max_attempts`` times; ``last_error`` says why. Sent again only by hand."""
    DIGESTED = "digested"
    """Past its channel's rate limit: sent inside a digest instead of on its own."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An event written in the transaction that caused it, not yet expanded."""

    id: int
    company: str
    operation_id: uuid.UUID
    event: Event
    at: datetime
    rule_name: str | None = None
    """Set for a watched condition: only that rule's recipients hear of it."""


@dataclass(frozen=True, slots=True)
class Watched:
    """A watched condition one rule found on one operation, for the outbox."""

    company: str
    operation_id: uuid.UUID
    event: Event
    rule_name: str
    dedup: str
    """Once per rule, operation and attempt: the condition is told once."""


def watch(
    rule: Rule, op: Operation, now: datetime, usual_seconds: float | None = None
) -> Watched | None:
    """The condition ``rule`` watches, if ``op`` meets it at ``now``.

    Example::

        watch(Rule("A", "slow", Event.RUNNING_LONG, ("admins",), threshold=30), op, now)
    """
    if not rule.enabled or not rule.matches(rule.on, op):
        return None
    met = False
    running = op.status is Status.IN_PROCESS
    if rule.on is Event.RUNNING_LONG and running and op.started_at is not None:
        ran = (now - op.started_at).total_seconds()
        limit = rule.threshold * 60 if rule.threshold is not None else usual_seconds
        met = limit is not None and ran > limit
    elif rule.on is Event.WAITING_LONG and op.status is Status.READY:
        since = max(op.earliest_start_at, op.ready_at or op.earliest_start_at)
        met = rule.threshold is not None and (now - since).total_seconds() > rule.threshold * 60
    elif rule.on is Event.MILESTONE and running and op.progress is not None:
        percent = op.progress.percent
        met = rule.threshold is not None and percent is not None and percent >= rule.threshold
    if not met:
        return None
    dedup = f"{rule.company}:{rule.name}:{op.id}:{op.attempt_count}"
    return Watched(op.company, op.id, rule.on, rule.name, dedup)


def p95(durations: Sequence[float]) -> float | None:
    """The 95th percentile of ``durations`` (None with fewer than 5: no "usual" yet)."""
    if len(durations) < 5:
        return None
    ordered = sorted(durations)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    """One recipient of an outbox entry, as :func:`plan` chooses it."""

    rule_name: str
    recipient: str
    """``inbox:USER`` (the in-app inbox), ``email:USER`` (the person's own address, through
    the company's personal email channel) or ``channel:NAME``."""


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    outbox_id: int
    company: str
    operation_id: uuid.UUID
    event: Event
    rule_name: str
    recipient: str
    idem_key: uuid.UUID
    status: DeliveryStatus
    attempts: int
    next_at: datetime
    created_at: datetime
    last_error: str | None = None
    sent_at: datetime | None = None
    claim_token: uuid.UUID | None = None


_KEYS = uuid.UUID("6f0d8a52-6a59-4f43-9a38-0f6c3f1d0b5e")


def idem_key(outbox_id: int, operation_id: uuid.UUID, recipient: str) -> uuid.UUID:
    """The idempotency key of one notification to one recipient: the same however often it
    is planned or sent, so a receiver can drop a repeat.

    Example::

        idem_key(1, op.id, "channel:ops") == idem_key(1, op.id, "channel:ops")   # True
    """
    return uuid.uuid5(_KEYS, f"{operation_id}:{outbox_id}:{recipient}")


def plan(
    event: Event,
    op: Operation,
    rules: Iterable[Rule],
    admins: Sequence[str],
    only: str | None = None,
    muted: Collection[tuple[str, str]] = (),
    emails: Collection[str] = (),
) -> list[PlannedDelivery]:
    """Who receives ``event`` on ``op``: one delivery per recipient, the first rule naming
    it wins. People get the in-app inbox (``inbox:USER``), only for the events the inbox can
    hold; the operation's own user already gets those from the inbox's trigger. A watched
    condition names its rule (``only``): none of the others hears of it. ``muted`` holds
    (user, rule) pairs: people who asked not to hear from a rule. ``emails`` holds the
    people who chose "also email": each person a rule names (the operation's own user
    too, for any event the rule listens to) also gets ``email:USER``.

    Example::

        plan(Event.FAILED, op_without_user, [default_rule], ["ann"])
        # [PlannedDelivery(rule_name='default', recipient='inbox:ann')]
    """
    out: dict[str, PlannedDelivery] = {}
    for rule in rules:
        if not rule.matches(event, op) or (only is not None and rule.name != only):
            continue
        for recipient in rule.recipients:
            for target in _targets(recipient, op, admins):
                if target.startswith("inbox:"):
                    user = target.removeprefix("inbox:")
                    if (user, rule.name) in muted:
                        continue  # the person's preference: not from this rule
                    if user in emails:
                        email = f"email:{user}"
                        out.setdefault(email, PlannedDelivery(rule.name, email))
                    if event not in INBOX_EVENTS or user == op.user:
                        continue
                out.setdefault(target, PlannedDelivery(rule.name, target))
    return list(out.values())


def _targets(recipient: str, op: Operation, admins: Sequence[str]) -> list[str]:
    if recipient == OWNER:
        return [] if op.user is None else [f"inbox:{op.user}"]
    if recipient == ADMINS:
        return [f"inbox:{a}" for a in admins]
    if recipient == OWNER_OR_ADMINS:
        return [f"inbox:{op.user}"] if op.user is not None else [f"inbox:{a}" for a in admins]
    if recipient.startswith("user:"):
        return [f"inbox:{recipient.removeprefix('user:')}"]
    return [recipient]  # channel:NAME


def backoff(attempts: int, base: float = 10.0, cap: float = 3600.0) -> timedelta:
    """How long to wait after the ``attempts``-th failed try: doubling, capped.

    Example::

        backoff(1), backoff(2)   # 10 s, 20 s
    """
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


_SCHEMA = re.compile(r"^[a-z][a-z0-9+.-]*$")


def url_schema(url: str) -> str:
    """The Apprise schema of a channel URL (``json``, ``mailtos``, ``slack``…)."""
    schema, sep, _ = url.partition("://")
    if not sep or not _SCHEMA.fullmatch(schema.lower()):
        # The URL may hold a secret: the error never repeats it.
        raise ValidationError("url", "must be an Apprise URL such as json://host/path")
    return schema.lower()


def mask_url(url: str) -> str:
    """``url`` with every part that may hold a secret hidden: the password, the path (Slack,
    Teams and ntfy keep tokens there) and the query.

    Example::

        mask_url("json://user:pw@127.0.0.1:8080/hook?token=x")
        # 'json://user:****@127.0.0.1:8080/****'
    """
    schema = url_schema(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    user = ""
    if parts.username:
        user = parts.username + (":****" if parts.password is not None else "") + "@"
    rest = "/****" if (parts.path.strip("/") or parts.query) else ""
    return f"{schema}://{user}{host}{port}{rest}"


@dataclass(frozen=True, slots=True)
class Message:
    """A notification in words: what happened, to which operation, and where to look."""

    title: str
    body: str
    link: str | None


_ERROR_TYPE = re.compile(r"^[A-Za-z_][\w.]*$")


def error_words(error: str, *, customer_content: bool = False) -> str:
    """What a message may say of an operation's error. Its text is customer content (the
    data classification of ``longops_operations.last_error``): it may quote an invoice, an
    address or a token, and leaves for a mailbox or a chat only when the deployment allows
    customer content in notifications. Otherwise the exception's type alone, which is the
    task's code speaking, not its data.

    Example::

        >>> error_words("KeyError: card 4111 1111")
        'KeyError (the message is on the card)'
        >>> error_words("KeyError: card 4111 1111", customer_content=True)
        'KeyError: card 4111 1111'
    """
    if customer_content:
        return error[:500]
    head = error.split(":", 1)[0].strip()
    kind = head if _ERROR_TYPE.fullmatch(head) else "an error"
    return f"{kind} (the message is on the card)"


def message(
    event: Event, op: Operation, base_url: str | None, *, customer_content: bool = False
) -> Message:
    """The words of ``event`` on ``op``: description, company, task, outcome, error
    (its type; its text only with ``customer_content``, see :func:`error_words`),
    attempts, duration and the link to its card.

    Example::

        message(Event.FAILED, op, "https://ops.example.com").title
        # 'Post invoices failed (CRONUS)'
    """
    name = op.description or op.task
    title = f"{name} {event.caption} ({op.company})"
    lines = [
        f"The operation {name!r} (#{op.entry_no}, task {op.task}) in company {op.company} "
        f"{event.caption}.",
        f"Scheduled by: {op.user or 'no user'}",
        f"Attempts: {op.attempt_count} of {op.max_attempts}",
    ]
    if op.started_at is not None and op.ended_at is not None:
        lines.append(f"Duration: {(op.ended_at - op.started_at).total_seconds():.1f} s")
    if op.progress is not None and op.progress.percent is not None and not op.done:
        lines.append(f"Progress: {op.progress.percent:.0f} %")
    if op.last_error and event in (Event.FAILED, Event.ATTEMPT_FAILED):
        lines.append(f"Error: {error_words(op.last_error, customer_content=customer_content)}")
    link = None
    if base_url:
        link = f"{base_url.rstrip('/')}/c/{op.company}/entries/{op.id}"
        lines.append(f"Card: {link}")
    return Message(title, "\n".join(lines), link)
