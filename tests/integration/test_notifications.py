"""Notifications end to end on both databases: rules, notified admins, channels over a real
loopback webhook and SMTP server, the outbox and the delivery service.

Every receiver listens on 127.0.0.1 only. The clock is frozen and moved by hand, so the
back-off between tries is observed, not slept through.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from longops import EnqueueRequest, FrozenClock, Longops, NotFound, ValidationError
from longops.domain.notify import DeliveryStatus, Event
from longops.domain.security import PermissionSet
from longops.notify.secrets import SecretBox
from longops.services.delivery import DeliveryService
from longops.services.watch import NotificationWatch
from longops.store.base import ClaimedRun, ClaimParams, ProgressUpdate
from longops.testing import Runner
from longops.worker.session import active_session
from notify_receivers import refused_port, smtp_sink, webhook

KEY = SecretBox.generate_key()
BASE_URL = "http://ops.example.test"
COMPANY = "ACME"
MARKED = "SECRET-7731-MARK"


@dataclass
class World:
    app: Longops
    clock: FrozenClock
    url: str

    @property
    def setup(self):  # type: ignore[no-untyped-def]
        return self.app.notification_setup

    def delivery(self, **options: object) -> DeliveryService:
        options.setdefault("backoff_base", 1.0)
        options.setdefault("max_attempts", 3)
        return self.app.delivery_service(**options)  # type: ignore[arg-type]

    def enqueue(self, task: str, **kwargs: object) -> uuid.UUID:
        request = EnqueueRequest(task=task, company=COMPANY, **kwargs)  # type: ignore[arg-type]
        return self.app.service.enqueue(request).id

    def run(self) -> None:
        Runner(self.app).run_until_idle()

    def deliveries(self, status: str | None = None) -> list:  # type: ignore[type-arg]
        return self.setup.list_deliveries(COMPANY, status=status)


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    clock = FrozenClock()
    app = Longops(db_url, clock=clock, secret_key=KEY, base_url=BASE_URL)
    app.add_company(COMPANY)

    @app.task(name="boom", max_attempts=1)
    def boom() -> None:
        raise RuntimeError("the ledger is locked")

    @app.task(name="leaky", max_attempts=1)
    def leaky() -> None:
        raise ValueError(f"customer card {MARKED} was declined")

    @app.task(name="flaky", max_attempts=2, rerun_delay=3600)
    def flaky() -> None:
        raise RuntimeError("try again")

    app.task(name="ok")(lambda: None)
    yield World(app, clock, db_url)
    app.close()


def test_failure_email_reaches_a_real_smtp_server(world: World) -> None:
    with smtp_sink() as sink:
        url = f"mailto://127.0.0.1:{sink.port}?from=longops@example.com&to=ops@example.com"
        world.setup.add_channel(COMPANY, "mail", url)
        world.setup.add_rule(COMPANY, "mail-failures", on="failed", to=["channel:mail"])
        op_id = world.enqueue("boom", description="Post invoices")
        world.enqueue("ok", description="Not this one")
        world.run()
        assert world.delivery().run_once() >= 2  # one outbox entry expanded, one sent
        [mail] = sink.messages
    assert "Post invoices" in mail["Subject"]
    assert "failed" in mail["Subject"]
    assert COMPANY in mail["Subject"]
    parts = [mail] if not mail.is_multipart() else mail.get_payload()
    body = "\n".join(str(p.get_payload(decode=True), "utf-8") for p in parts)  # type: ignore[union-attr]
    assert "Post invoices" in body
    assert "Error: RuntimeError" in body  # the type; its text is customer content
    assert f"{BASE_URL}/c/{COMPANY}/entries/{op_id}" in body
    [d] = world.deliveries()
    assert (d.status, d.recipient, d.attempts) == (DeliveryStatus.SENT, "channel:mail", 1)


def test_webhook_payload_carries_an_idempotency_key(world: World) -> None:
    with webhook() as hook:
        world.setup.add_channel(COMPANY, "hook", hook.url())
        world.setup.add_rule(COMPANY, "hooked", on="failed", to=["channel:hook"])
        op_id = world.enqueue("boom", description="Nightly export")
        world.run()
        world.delivery().run_once()
        world.delivery().run_once()  # nothing more to send: no second request
        [got] = hook.received
    [d] = world.deliveries()
    assert got.key == str(d.idem_key) == got.body["idempotency_key"]
    assert got.body["title"] == f"Nightly export failed ({COMPANY})"
    assert "Error: RuntimeError (the message is on the card)" in got.body["message"]
    assert str(op_id) in got.body["message"]


@pytest.mark.parametrize("allowed", [False, True])
def test_an_errors_text_leaves_only_where_customer_content_is_allowed(
    world: World, allowed: bool
) -> None:
    with webhook() as hook, smtp_sink() as sink:
        mail = f"mailto://127.0.0.1:{sink.port}?from=longops@example.com&to=ops@example.com"
        world.setup.add_channel(COMPANY, "hook", hook.url())
        world.setup.add_channel(COMPANY, "mail", mail)
        world.setup.add_rule(COMPANY, "out", on="failed", to=["channel:hook", "channel:mail"])
        world.enqueue("leaky", description="Charge cards")
        world.run()
        assert world.delivery(customer_content=allowed).run_once() == 3
        [got] = hook.received
        [email] = sink.messages
    assert {d.status for d in world.deliveries()} == {DeliveryStatus.SENT}
    parts = [email] if not email.is_multipart() else email.get_payload()
    body = "\n".join(str(p.get_payload(decode=True), "utf-8") for p in parts)  # type: ignore[union-attr]
    assert "ValueError" in got.body["message"]  # the type always
    assert "ValueError" in body
    assert (MARKED in got.body["message"]) is allowed
    assert (MARKED in body) is allowed
    assert (MARKED in json.dumps(got.body) + email.as_string()) is allowed  # nowhere else


def test_refusing_channels_back_off_and_dead_letter_without_holding_up_others(
    world: World,
) -> None:
    with webhook() as bad, webhook() as good:
        bad.status = 500
        world.setup.add_channel(COMPANY, "bad", bad.url())
        world.setup.add_channel(COMPANY, "gone", f"json://127.0.0.1:{refused_port()}/hook")
        world.setup.add_channel(COMPANY, "good", good.url())
        to = ["channel:bad", "channel:gone", "channel:good"]
        world.setup.add_rule(COMPANY, "all", on="failed", to=to)
        world.enqueue("boom")
        world.run()
        service = world.delivery(max_attempts=3, backoff_base=1.0)
        start = world.clock.now()
        service.run_once()
        # The good channel got its message in the first round, beside two refusals.
        assert len(good.received) == 1
        assert len(bad.received) == 1
        by = {d.recipient: d for d in world.deliveries()}
        assert by["channel:good"].status is DeliveryStatus.SENT
        for name in ("channel:bad", "channel:gone"):
            assert by[name].status is DeliveryStatus.PENDING
            assert by[name].attempts == 1
            assert by[name].next_at == start + timedelta(seconds=1)
            assert by[name].last_error
        service.run_once()  # not due yet: the back-off holds
        assert len(bad.received) == 1
        first_error = by["channel:bad"].last_error or ""
        first = by["channel:bad"].outbox_id
        assert "500" in first_error
        # The same channel now refuses differently: its port is closed.
        bad.close()
        world.enqueue("boom", description="meanwhile")
        world.run()
        world.clock.advance(seconds=1)
        service.run_once()
        service.run_once()  # the second failure's outbox entry, expanded then sent
        by = {d.recipient: d for d in world.deliveries() if d.outbox_id == first}
        assert by["channel:bad"].attempts == 2
        assert by["channel:bad"].next_at == world.clock.now() + timedelta(seconds=2)  # doubled
        assert by["channel:bad"].last_error != first_error  # connection refused, not 500
        # Nothing else is held up meanwhile: the good channel got the second failure too.
        assert len(good.received) == 2
        world.clock.advance(seconds=2)
        service.run_once()
        world.clock.advance(seconds=3600)
        service.run_once()  # dead letters are not tried again
        assert len(bad.received) == 1  # the rest were refused at the door
        assert len(good.received) == 2
    dead = {d.recipient: d for d in world.deliveries("dead") if d.outbox_id == first}
    assert set(dead) == {"channel:bad", "channel:gone"}
    assert all(d.attempts == 3 for d in dead.values())
    last = dead["channel:bad"].last_error or ""
    assert "Connection error" not in first_error  # the last error is the last, visible
    assert "Connection error" in last
    assert dead["channel:gone"].last_error
    # Sent again by hand, it starts over.
    world.setup.retry_delivery(COMPANY, dead["channel:gone"].id)
    [again] = list(world.deliveries("pending"))
    assert again.attempts == 0


def test_an_operation_without_a_user_notifies_the_admins(world: World) -> None:
    security = world.app.security
    security.add_user("ann")
    security.add_user("bob")
    world.setup.add_admin(COMPANY, "ann")
    world.enqueue("boom", description="No one's")  # the library: no user
    world.enqueue("boom", description="Bob's", user="bob")
    world.run()
    world.delivery().run_once()
    world.delivery().run_once()
    store = world.app.store
    assert [n.title for n in store.list_notifications(COMPANY, "ann")] == ["No one's"]
    # Bob's own failure reached bob (the inbox's trigger), and not the admins.
    assert [n.title for n in store.list_notifications(COMPANY, "bob")] == ["Bob's"]
    [d] = world.deliveries()
    assert (d.rule_name, d.recipient, d.status) == ("default", "inbox:ann", DeliveryStatus.SENT)


def test_no_admins_and_no_user_notifies_no_one_but_loses_nothing(world: World) -> None:
    world.enqueue("boom")
    world.run()
    assert world.app.store.pending_outbox() != []  # written with the failure
    world.delivery().run_once()
    assert world.app.store.pending_outbox() == []
    assert world.deliveries() == []


def test_every_event_is_notified(world: World) -> None:
    with webhook() as hook:
        world.setup.add_channel(COMPANY, "hook", hook.url())
        for event in CHANGES:
            world.setup.add_rule(COMPANY, f"on-{event.value}", on=event.value, to=["channel:hook"])
        world.enqueue("ok", description="succeeds")
        world.enqueue("boom", description="fails")
        world.enqueue("flaky", description="retries")
        cancelled = world.enqueue("ok", description="is cancelled", on_hold=True)
        world.run()
        world.app.service.cancel(cancelled)
        world.enqueue("ok", description="stalls")
        session = active_session(world.clock.now())
        world.app.store.register_session(session)
        world.app.store.claim(ClaimParams(session.id, ("default",), 1, world.clock.now()))
        world.clock.advance(timedelta(minutes=11))  # past the default stall_after (10 min)
        assert world.app.store.flag_stalled(world.clock.now()) != []
        world.delivery().run_once()
        titles = sorted(b["title"] for b in hook.bodies())
    assert titles == sorted(
        [
            f"succeeds succeeded ({COMPANY})",
            f"fails failed ({COMPANY})",
            f"retries failed an attempt and will be retried ({COMPANY})",
            f"is cancelled was cancelled ({COMPANY})",
            f"stalls has stalled ({COMPANY})",
        ]
    )
    assert {d.event for d in world.deliveries()} == set(CHANGES)
    assert len(set(hook.keys())) == 5


CHANGES = [e for e in Event if not e.watched]


def claim(world: World, limit: int = 10) -> list[ClaimedRun]:
    session = active_session(world.clock.now(), ("default", "slow"))
    world.app.store.register_session(session)
    params = ClaimParams(session.id, ("default", "slow"), limit, world.clock.now())
    return world.app.store.claim(params)


def test_conditions_on_the_clock_are_notified_once(world: World) -> None:
    clock = world.clock

    @world.app.task(name="tick")
    def tick() -> None:
        clock.advance(seconds=10)  # each run takes ten seconds of the frozen clock

    for _ in range(5):
        world.enqueue("tick")
    world.run()  # five runs of ten seconds: the task's usual is 10 s
    with webhook() as hook:
        setup = world.setup
        setup.add_channel(COMPANY, "hook", hook.url())
        to = ["channel:hook"]
        setup.add_rule(COMPANY, "slow-30", on="running_long", to=to, threshold=30, task="ok")
        setup.add_rule(COMPANY, "unusual", on="running_long", to=to, task="tick")
        setup.add_rule(COMPANY, "parked", on="waiting_long", to=to, threshold=10)
        setup.add_rule(COMPANY, "half", on="milestone", to=to, threshold=50)
        long_one = world.enqueue("ok", description="long one")
        world.enqueue("tick", description="unusual one")
        world.enqueue("ok", description="parked one", queue="nobody")
        world.app.task(name="half")(lambda: None)
        world.enqueue("half", description="halfway one", queue="slow")
        claimed = {c.operation.description: c for c in claim(world)}
        assert set(claimed) == {"long one", "unusual one", "halfway one"}
        half = claimed["halfway one"]
        world.app.store.flush_progress([
            ProgressUpdate(half.operation.id, half.lease_token, clock.now(),
                           json.dumps({"completed": 60, "total": 100}), moved=True)
        ])  # fmt: skip
        watcher = NotificationWatch(world.app.store, clock)
        delivery = world.delivery()

        def told() -> list[str]:
            watcher.run_once()
            delivery.run_once()
            return sorted(b["title"].rsplit(" (", 1)[0] for b in hook.bodies())

        assert told() == ["halfway one reached a milestone"]
        clock.advance(seconds=9)
        assert told() == ["halfway one reached a milestone"]  # 9 s: not past the usual 10
        clock.advance(seconds=2)
        assert told() == ["halfway one reached a milestone", "unusual one is taking long"]
        clock.advance(seconds=600)
        assert "parked one has waited long to start" in told()
        assert "long one is taking long" not in told()
        clock.advance(seconds=1200)
        assert told() == [
            "halfway one reached a milestone",
            "long one is taking long",
            "parked one has waited long to start",
            "unusual one is taking long",
        ]
        clock.advance(seconds=3600)
        assert len(told()) == 4  # each condition once per attempt
    by_rule = {d.rule_name: d for d in world.deliveries()}
    assert by_rule["slow-30"].operation_id == long_one
    assert set(by_rule) == {"slow-30", "unusual", "parked", "half"}


def test_thresholds_are_checked_by_event(world: World) -> None:
    setup = world.setup
    for on, threshold in [("milestone", None), ("milestone", 150), ("waiting_long", None),
                          ("failed", 5), ("running_long", -1)]:  # fmt: skip
        with pytest.raises(ValidationError) as caught:
            setup.add_rule(COMPANY, "r", on=on, to=["admins"], threshold=threshold)
        assert caught.value.field == "threshold"
    assert [r.name for r in setup.list_rules(COMPANY)] == ["default"]


def test_rules_filter_by_task_and_user(world: World) -> None:
    for name in ("ann", "carl", "dan"):
        world.app.security.add_user(name)
    world.app.task(name="other")(lambda: None)
    world.setup.add_rule(COMPANY, "ok-to-ann", on="succeeded", to=["user:ann"], task="ok")
    world.setup.add_rule(COMPANY, "carls-to-dan", on="succeeded", to=["user:dan"], user="carl")
    world.enqueue("ok", description="plain")
    world.enqueue("other", description="quiet")
    world.enqueue("other", description="carl's", user="carl")
    world.run()
    world.delivery().run_once()
    world.delivery().run_once()
    inbox = world.app.store.list_notifications
    assert [n.title for n in inbox(COMPANY, "ann")] == ["plain"]
    assert [n.title for n in inbox(COMPANY, "dan")] == ["carl's"]


def test_past_the_rate_limit_the_rest_goes_as_one_digest(world: World) -> None:
    with webhook() as hook:
        world.setup.add_channel(COMPANY, "hook", hook.url(), rate_limit=3, rate_window=60)
        world.setup.add_rule(COMPANY, "all", on="succeeded", to=["channel:hook"])
        for i in range(6):
            world.enqueue("ok", description=f"job {i}")
        world.run()
        service = world.delivery()
        service.run_once()
        # Two alone, then one digest of the other four: three messages, the limit.
        assert len(hook.received) == 3
        digest = hook.bodies()[-1]
        assert digest["title"] == "4 notifications (digest)"
        assert all(f"job {i}" in digest["message"] for i in range(2, 6))
        for i in range(3):
            world.enqueue("ok", description=f"late {i}")
        world.run()
        service.run_once()
        assert len(hook.received) == 3  # the window is full: held back
        held = world.deliveries("pending")
        assert len(held) == 3
        assert all(d.attempts == 0 for d in held)
        world.clock.advance(seconds=61)
        service.run_once()
        assert len(hook.received) == 6
    statuses = [d.status for d in world.deliveries()]
    assert statuses.count(DeliveryStatus.DIGESTED) == 4
    assert statuses.count(DeliveryStatus.SENT) == 5


def test_a_channel_password_is_never_in_clear(
    world: World, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    secret = "s3cr3t-Pa55word"  # noqa: S105 (a test value, looked for everywhere)
    caplog.set_level(logging.DEBUG)
    with webhook() as hook:
        hook.status = 500  # so that errors are written, and must not name it
        url = hook.url(auth=f"robot:{secret}@")
        channel = world.setup.add_channel(COMPANY, "hook", url)
        world.setup.add_rule(COMPANY, "hooked", on="failed", to=["channel:hook"])
        assert world.setup.test_channel(COMPANY, "hook") is not None  # refused: 500
        world.enqueue("boom")
        world.run()
        world.delivery().run_once()
        assert "Authorization" in hook.received[-1].headers  # the secret was used...
    assert channel.url_masked == f"json://robot:****@127.0.0.1:{hook.port}/****"
    shown = [c.url_masked for c in world.setup.list_channels(COMPANY)]
    errors = [d.last_error or "" for d in world.deliveries()]
    audit = [str(e.details) for e in world.app.security.list_audit(company=COMPANY)]
    assert errors[0]
    for text in [*shown, *errors, *audit, caplog.text]:
        assert secret not in text
    assert secret.encode() not in database_bytes(world)


def database_bytes(world: World) -> bytes:
    """Everything the database holds, as bytes."""
    if world.url.startswith("sqlite"):
        path = Path(world.url.removeprefix("sqlite:///"))
        world.app.close()
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    with psycopg.connect(world.url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'longops%'"
            ).fetchall()
        ]
        text = ""
        for t in tables:
            for (row,) in conn.execute(f"SELECT t::text FROM {t} t").fetchall():
                text += row
    return text.encode()


def test_bad_input_is_refused_by_name_and_changes_nothing(world: World) -> None:
    setup = world.setup
    cases = [
        (lambda: setup.add_rule(COMPANY, "r", on="exploded", to=["admins"]), "on"),
        (lambda: setup.add_rule(COMPANY, "r", on="failed", to=[]), "to"),
        (lambda: setup.add_rule(COMPANY, "r", on="failed", to=["everyone"]), "to"),
        (lambda: setup.add_rule(COMPANY, "r", on="failed", to=["channel:nope"]), "to"),
        (lambda: setup.add_channel(COMPANY, "c", "not a url with pw"), "url"),
        (lambda: setup.add_channel(COMPANY, "c", "nosuchschema://x:pw@h/"), "url"),
        (lambda: setup.add_channel(COMPANY, "c", "json://h/", rate_limit=0), "rate_limit"),
        (lambda: setup.add_admin(COMPANY, "nobody"), "user"),
        (lambda: setup.add_rule("NOPE", "r", on="failed", to=["admins"]), "company"),
    ]
    for call, field in cases:
        with pytest.raises(ValidationError) as caught:
            call()
        assert caught.value.field == field
        assert "pw" not in str(caught.value)
    assert [r.name for r in setup.list_rules(COMPANY)] == ["default"]
    assert setup.list_channels(COMPANY) == []
    assert setup.list_admins(COMPANY) == []


def test_without_a_secret_key_channels_cannot_be_added(db_url: str) -> None:
    app = Longops(db_url, clock=FrozenClock())
    app.secret_key = None
    app.add_company(COMPANY)
    with pytest.raises(Exception, match="LONGOPS_SECRET_KEY"):
        app.notification_setup.add_channel(COMPANY, "c", "json://127.0.0.1:9/hook")
    assert app.notification_setup.list_channels(COMPANY) == []
    app.close()


def test_the_pruner_removes_finished_deliveries_and_keeps_pending_ones(world: World) -> None:
    with webhook() as good:
        world.setup.add_channel(COMPANY, "good", good.url())
        world.setup.add_channel(COMPANY, "gone", f"json://127.0.0.1:{refused_port()}/hook")
        world.setup.add_rule(COMPANY, "both", on="failed", to=["channel:good", "channel:gone"])
        world.enqueue("boom")
        world.run()
        world.delivery().run_once()
    assert sorted(d.status.value for d in world.deliveries()) == ["pending", "sent"]
    world.app.store.prune(world.clock.now() + timedelta(days=1))
    assert [d.recipient for d in world.deliveries()] == ["channel:gone"]  # still to send
    assert world.app.store.pending_outbox() == []


def test_a_person_mutes_a_rule_and_hears_nothing_more_from_it(world: World) -> None:
    security = world.app.security
    security.add_user("ann", grants=[(COMPANY, PermissionSet.VIEW)])
    security.add_user("bo", grants=[(COMPANY, PermissionSet.VIEW)])
    for name in ("ann", "bo"):
        world.setup.add_admin(COMPANY, name)
    ann = world.app.as_user("ann").notification_setup
    ann.mute_rule(COMPANY, "default")
    assert ann.muted_rules(COMPANY) == ["default"]
    world.enqueue("boom", description="first")
    world.run()
    world.delivery().run_once()
    world.delivery().run_once()
    inbox = world.app.store.list_notifications
    assert [n.title for n in inbox(COMPANY, "ann")] == []
    assert [n.title for n in inbox(COMPANY, "bo")] == ["first"]
    ann.mute_rule(COMPANY, "default", muted=False)
    world.enqueue("boom", description="second")
    world.run()
    world.delivery().run_once()
    world.delivery().run_once()
    assert [n.title for n in inbox(COMPANY, "ann")] == ["second"]
    with pytest.raises(NotFound):
        ann.mute_rule(COMPANY, "no-such-rule")
    with pytest.raises(ValidationError) as local:
        world.setup.mute_rule(COMPANY, "default")  # the local super actor is no person
    assert local.value.field == "user"


def test_a_worker_without_the_secret_key_says_so_once_and_delivers_nothing(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with webhook() as hook:
        world.setup.add_channel(COMPANY, "hook", hook.url())
        world.setup.add_rule(COMPANY, "hooked", on="failed", to=["channel:hook"])
        world.enqueue("boom")
        world.run()
        keyless = DeliveryService(world.app.store, world.clock, secrets=None, backoff_base=1.0)
        with caplog.at_level("ERROR", logger="longops.notify"):
            keyless.run_once()
            world.clock.advance(seconds=5)
            keyless.run_once()
        assert hook.received == []
    told = [r for r in caplog.records if getattr(r, "action", "") == "delivery_no_key"]
    assert len(told) == 1, [r.getMessage() for r in caplog.records]
    [d] = world.deliveries()
    assert d.status is not DeliveryStatus.SENT
    assert "LONGOPS_SECRET_KEY is not set on this worker" in (d.last_error or "")


def test_a_person_who_chose_also_email_gets_the_failure_by_email(world: World) -> None:
    security = world.app.security
    security.add_user("ann", grants=[(COMPANY, PermissionSet.VIEW)], email="ann@example.com")
    security.add_user("bo", grants=[(COMPANY, PermissionSet.VIEW)], email="bo@example.com")
    for name in ("ann", "bo"):
        world.setup.add_admin(COMPANY, name)
    # ann chooses "also email" herself; bo keeps the in-app inbox only.
    assert world.app.as_user("ann").security.set_contact("ann", notify_by_email=True) == (
        "ann@example.com",
        True,
    )
    with smtp_sink() as sink:
        url = f"mailto://127.0.0.1:{sink.port}?from=longops@example.com&to=ops@example.com"
        world.setup.add_channel(COMPANY, "people", url)
        world.setup.set_email_channel(COMPANY, "people")
        op_id = world.enqueue("boom", description="Close the month")  # no user: the admins
        world.run()
        world.delivery().run_once()
        world.delivery().run_once()
        [mail] = sink.messages
    assert mail["To"] == "ann@example.com"
    assert "Close the month" in mail["Subject"]
    parts = [mail] if not mail.is_multipart() else mail.get_payload()
    body = "\n".join(str(p.get_payload(decode=True), "utf-8") for p in parts)  # type: ignore[union-attr]
    assert f"{BASE_URL}/c/{COMPANY}/entries/{op_id}" in body
    by = {d.recipient: d for d in world.deliveries()}
    assert set(by) == {"inbox:ann", "inbox:bo", "email:ann"}  # no email:bo
    assert by["email:ann"].status is DeliveryStatus.SENT
    assert len({d.idem_key for d in by.values()}) == 3  # a key per recipient
    inbox = world.app.store.list_notifications
    assert [n.title for n in inbox(COMPANY, "bo")] == ["Close the month"]
    # Muting the rule stops her email too.
    world.app.as_user("ann").notification_setup.mute_rule(COMPANY, "default")
    with smtp_sink() as sink:
        url = f"mailto://127.0.0.1:{sink.port}?from=longops@example.com&to=ops@example.com"
        world.setup.add_channel(COMPANY, "people", url)
        world.enqueue("boom", description="again")
        world.run()
        world.delivery().run_once()
        world.delivery().run_once()
        assert sink.messages == []
    actions = [e.action for e in security.list_audit(company=COMPANY)]
    assert "mute_notification_rule" in actions
    assert "set_personal_email_channel" in actions


def test_an_email_address_is_personal_data_exported_and_forgotten(world: World) -> None:
    security = world.app.security
    security.add_user("ann", email="ann@example.com")
    security.set_contact("ann", notify_by_email=True)
    assert security.export_user("ann")["contact"] == {
        "email": "ann@example.com",
        "notify_by_email": True,
    }
    assert world.app.store.email_recipients() == {"ann": "ann@example.com"}
    security.forget_user("ann")
    assert world.app.store.email_recipients() == {}
    with pytest.raises(ValidationError) as bad:
        security.add_user("bo", email="not an address")
    assert bad.value.field == "email"
    assert world.app.store.get_user("bo") is None
    security.add_user("cy")
    with pytest.raises(ValidationError) as none:
        security.set_contact("cy", notify_by_email=True)
    assert none.value.field == "notify_by_email"
    world.setup.add_channel(COMPANY, "hook", "json://127.0.0.1:9/hook")
    with pytest.raises(ValidationError) as not_mail:
        world.setup.set_email_channel(COMPANY, "hook")
    assert not_mail.value.field == "name"
