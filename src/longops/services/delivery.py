"""The delivery service: turns the notification outbox into deliveries and sends them.

Each round it (1) expands outbox entries, written by the database in the transaction of
the change that caused them, into one delivery per recipient by the company's rules, and
(2) claims due deliveries for a lease and sends them: the in-app inbox by a row written in
the same transaction that marks the delivery sent (exactly once), a channel through Apprise
with the delivery's idempotency key (at least once: a sender that dies after sending but
before recording it leaves the delivery to be claimed again when its lease lapses, with the
same key, so a receiver that keeps keys sees it once). A failed send is retried with
doubling back-off and dead-lettered after ``max_attempts`` tries, its last error kept.
Past a channel's rate limit, what is left of the batch goes as one digest.

Any number of processes may run it at once: claims take rows no one else holds
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite).

A database fault ends a round, never a delivery: what the round had claimed and not yet
handled is handled next round while its lease holds (not left for the lease to lapse), and
an outcome already decided (a channel that answered, an inbox row to write) waits in memory
and is written first next round, under its claim token -- never sent a second time because
its record failed.

Example::

    DeliveryService(store, clock, secrets=SecretBox(key), base_url="https://ops").run_once()
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from longops import telemetry
from longops.domain.clock import Clock
from longops.domain.errors import LongopsError
from longops.domain.notify import (
    Delivery,
    DeliveryStatus,
    Message,
    backoff,
    message,
    plan,
    url_schema,
)
from longops.domain.operation import Operation
from longops.notify import channels
from longops.notify.secrets import SecretBox
from longops.store.base import Store

log = logging.getLogger("longops.notify")

INTERVAL = timedelta(seconds=1)
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 5
SEND_MARGIN = timedelta(seconds=10)
"""Deliveries claimed in an earlier round are handled only while their lease has this much
left: a send after the lease lapsed could go out beside another sender's."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    """How a claimed delivery went, decided and waiting to be recorded."""

    delivery: Delivery
    status: DeliveryStatus
    at: datetime
    options: dict[str, Any] = field(default_factory=dict)


class DeliveryService:
    name = "notification_delivery"

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        secrets: SecretBox | None,
        base_url: str | None = None,
        interval: timedelta = INTERVAL,
        lease: timedelta = LEASE,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_base: float = 10.0,
        batch: int = 20,
        customer_content: bool = False,
    ) -> None:
        self.store = store
        self.clock = clock
        self.secrets = secrets
        self.base_url = base_url
        self.interval = interval
        self.lease = lease
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.batch = batch
        self._warned_no_key = False
        self.customer_content = customer_content
        """Messages may carry customer content (an error's text); see ``error_words``."""
        self._held: list[Delivery] = []
        """Claimed and not yet handled (a fault ended the round first)."""
        self._held_until: datetime | None = None
        self._unwritten: list[_Outcome] = []
        """Decided (sent, or to be retried) and not yet recorded."""

    def run_once(self) -> int:
        """One round: record what an earlier round decided, expand the outbox, then send
        what is due; returns how many moved."""
        return self._write_outcomes() + self.expand() + self.deliver()

    def expand(self) -> int:
        done = 0
        for entry in self.store.pending_outbox(self.batch):
            op = self.store.get_operation(entry.operation_id)
            planned = []
            if op is not None:  # deleted since: nothing left to say
                rules = self.store.list_notify_rules(entry.company)
                admins = self.store.list_notified_admins(entry.company)
                muted = self.store.list_notify_mutes(entry.company)
                emails = set(self.store.email_recipients())
                planned = plan(
                    entry.event,
                    op,
                    rules,
                    admins,
                    only=entry.rule_name,
                    muted=muted,
                    emails=emails,
                )
            self.store.expand_outbox(entry, planned, self.clock.now())
            done += 1
        return done

    def deliver(self) -> int:
        self._write_outcomes()
        now = self.clock.now()
        if self._held and self._held_until is not None and now >= self._held_until - SEND_MARGIN:
            log.info(
                "%d claimed notification(s) not sent before their lease ran short; they are "
                "claimed again once it lapses",
                len(self._held),
                extra={"action": "deliveries_released", "count": len(self._held)},
            )
            self._held = []
        if self._held:
            count = len(self._held)  # left by a round a fault ended: these first
        else:
            self._held = self.store.claim_deliveries(now, self.lease, self.batch)
            self._held_until = now + self.lease
            count = len(self._held)
        by_channel: dict[tuple[str, str], list[Delivery]] = {}
        for d in list(self._held):
            if d.recipient.startswith("inbox:"):
                self._inbox(d)
            elif d.recipient.startswith("email:"):
                self._email(d)
            else:
                by_channel.setdefault((d.company, d.recipient), []).append(d)
            self._write_outcomes()
        for (company, recipient), items in by_channel.items():
            self._channel(company, recipient.removeprefix("channel:"), items)
            self._write_outcomes()
        return count

    def _settle(self, items: Sequence[Delivery], status: DeliveryStatus, **options: Any) -> None:
        """The outcome of ``items`` is decided: no longer held (never handled again), it
        waits in memory until :meth:`_write_outcomes` records it."""
        at = options.pop("at", None) or self.clock.now()
        for d in items:
            if d in self._held:
                self._held.remove(d)
            self._unwritten.append(_Outcome(d, status, at, options))

    def _write_outcomes(self) -> int:
        """Record the decided outcomes, oldest first; a fault leaves the rest for the next
        round. A claim that lapsed and was taken again meanwhile changes nothing (the other
        sender's record stands; a repeat send carries the same idempotency key)."""
        written = 0
        while self._unwritten:
            o = self._unwritten[0]
            if not self.store.finish_delivery(o.delivery, o.status, o.at, **o.options):
                log.warning(
                    "a notification's outcome was not recorded: its claim lapsed meanwhile",
                    extra={"action": "delivery_claim_lapsed", "delivery": o.delivery.id},
                )
            self._unwritten.pop(0)
            written += 1
        return written

    # -- the in-app inbox -----------------------------------------------------------------
    def _inbox(self, d: Delivery) -> None:
        op = self.store.get_operation(d.operation_id)
        if op is None:
            self._failed([d], "the operation no longer exists", final=True)
            return
        with telemetry.notifying("inbox", d.company, [(d.id, d.idem_key, d.attempts)]) as n:
            # The inbox row is written with the delivery's record: exactly once.
            self._settle([d], DeliveryStatus.SENT, inbox_title=op.description or op.task)
            n.done("sent")

    # -- a person's own email -------------------------------------------------------------
    def _email(self, d: Delivery) -> None:
        user = d.recipient.removeprefix("email:")
        contact = self.store.get_user_contact(user)
        if contact is None or contact[0] is None or not contact[1]:
            self._failed([d], f"user {user} has no email address or chose in-app only", final=True)
            return
        name = self.store.personal_email_channel(d.company)
        found = None if name is None else self.store.get_notify_channel_secret(d.company, name)
        if found is None:
            self._failed([d], f"company {d.company} has no personal email channel", final=True)
            return
        op = self.store.get_operation(d.operation_id)
        if op is None:
            self._failed([d], "the operation no longer exists", final=True)
            return
        try:
            if self.secrets is None:
                raise LongopsError("LONGOPS_SECRET_KEY is not set")
            url = channels.addressed(self.secrets.decrypt(found[0]), contact[0])
        except LongopsError as exc:
            self._failed([d], str(exc))
            return
        self._send(url, [d], self._message(d, op))

    # -- outbound channels ----------------------------------------------------------------
    def _channel(self, company: str, name: str, items: list[Delivery]) -> None:
        found = self.store.get_notify_channel_secret(company, name)
        if found is None:
            self._failed(items, f"channel {name} does not exist in company {company}", final=True)
            return
        secret, rate_limit, rate_window = found
        try:
            if self.secrets is None:
                if not self._warned_no_key:
                    # Said once, loudly: every channel delivery of this worker will fail
                    # (and be retried, then dead-lettered) until it runs with the key.
                    self._warned_no_key = True
                    log.error(
                        "channel deliveries fail: this worker has no LONGOPS_SECRET_KEY, the "
                        "key the channels' URLs are encrypted with (docs/notifications.md)",
                        extra={"action": "delivery_no_key"},
                    )
                raise LongopsError("LONGOPS_SECRET_KEY is not set on this worker")
            url = self.secrets.decrypt(secret)
        except LongopsError as exc:
            self._failed(items, str(exc))
            return
        alone, digest = items, []
        if rate_limit is not None:
            now = self.clock.now()
            room = rate_limit - self.store.count_recent_sends(
                company, f"channel:{name}", now - timedelta(seconds=rate_window)
            )
            if room <= 0:
                # Past the limit: back when the window has moved on, the try not counted.
                self._settle(
                    items,
                    DeliveryStatus.PENDING,
                    at=now,
                    next_at=now + timedelta(seconds=rate_window),
                    uncharge=True,
                )
                return
            if len(items) > room:
                alone, digest = items[: room - 1], items[room - 1 :]
        for d in alone:
            op = self.store.get_operation(d.operation_id)
            if op is None:
                self._failed([d], "the operation no longer exists", final=True)
                continue
            self._send(url, [d], self._message(d, op))
        if digest:
            self._send(url, digest, self._digest(digest))

    def _message(self, d: Delivery, op: Operation) -> Message:
        return message(d.event, op, self.base_url, customer_content=self.customer_content)

    def _digest(self, items: Sequence[Delivery]) -> Message:
        lines = []
        for d in items:
            op = self.store.get_operation(d.operation_id)
            if op is not None:
                m = self._message(d, op)
                lines.append(f"- {m.title}" + (f" {m.link}" if m.link else ""))
        return Message(f"{len(items)} notifications (digest)", "\n".join(lines), None)

    def _send(self, url: str, items: Sequence[Delivery], msg: Message) -> None:
        schema = url_schema(url)
        keys = [(d.id, d.idem_key, d.attempts) for d in items]
        with telemetry.notifying(schema, items[0].company, keys) as n:
            # A digest travels under its first item's key: a repeat of it is still one key.
            error = channels.send(url, msg, idem_key=items[0].idem_key)
            if error is None:
                status = DeliveryStatus.SENT if len(items) == 1 else DeliveryStatus.DIGESTED
                self._settle(items, status)
                n.done(status.value)
                log.info(
                    "notification sent",
                    extra={"action": "notification_sent", "channel": schema, "count": len(items)},
                )
            else:
                n.done("retry", dead=self._record_failure(items, error))
                log.warning(
                    "notification failed",
                    extra={
                        "action": "notification_failed",
                        "channel": schema,
                        "count": len(items),
                    },
                )

    def _failed(self, items: Sequence[Delivery], error: str, *, final: bool = False) -> None:
        """A failure before any send (no channel, no key, no operation): still reported."""
        kind = items[0].recipient.partition(":")[0]
        keys = [(d.id, d.idem_key, d.attempts) for d in items]
        with telemetry.notifying(kind, items[0].company, keys) as n:
            n.done("retry", dead=self._record_failure(items, error, final=final))

    def _record_failure(
        self, items: Sequence[Delivery], error: str, *, final: bool = False
    ) -> list[int]:
        """Retry later with back-off, or dead-letter; returns the dead-lettered ids."""
        now = self.clock.now()
        dead = []
        for d in items:
            if final or d.attempts >= self.max_attempts:
                self._settle([d], DeliveryStatus.DEAD, at=now, error=error)
                dead.append(d.id)
            else:
                wait = backoff(d.attempts, base=self.backoff_base)
                self._settle([d], DeliveryStatus.PENDING, at=now, next_at=now + wait, error=error)
        return dead
