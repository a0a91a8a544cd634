"""``longops notifications``: rules, notified admins, channels, the delivery log, and a
delivery loop (``deliver``) for processes that only send.

Example::

    longops notifications channels add ops 'json://127.0.0.1:8080/hook' --company CRONUS
    longops notifications rules add --company CRONUS --on failed --to channel:ops --to admins
    longops notifications deliveries list --company CRONUS --status dead
"""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from longops.cli.context import state
from longops.cli.render import print_json, when

if TYPE_CHECKING:
    from longops.domain.notify import Channel, Delivery, Rule

app = typer.Typer(
    name="notifications",
    help="Notifications: rules, notified admins, outbound channels, deliveries.",
    no_args_is_help=True,
)
channels_cli = typer.Typer(help="Outbound channels (Apprise URLs), stored encrypted.")
rules_cli = typer.Typer(help="When to notify whom.")
admins_cli = typer.Typer(help="The company's notified admins.")
deliveries_cli = typer.Typer(help="The delivery log: sent, retrying, dead letters.")
for _sub, _name in (
    (channels_cli, "channels"),
    (rules_cli, "rules"),
    (admins_cli, "admins"),
    (deliveries_cli, "deliveries"),
):
    _sub.info.no_args_is_help = True
    app.add_typer(_sub, name=_name)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]
CompanyOpt = Annotated[
    str | None,
    typer.Option("--company", "-c", help="Company name (default: the actor's only company)."),
]


def _setup(ctx: typer.Context) -> Any:
    return state(ctx).front.notification_setup


def _company(ctx: typer.Context, given: str | None) -> str:
    return state(ctx).company(given)


@app.command("key")
def key(
    ctx: typer.Context,
) -> None:
    """Print a new key for LONGOPS_SECRET_KEY (channels' URLs are encrypted with it)."""
    from longops.notify.secrets import SecretBox

    state(ctx).out.print(SecretBox.generate_key())


# -- channels -------------------------------------------------------------------------------
@channels_cli.command("add")
def channels_add(
    ctx: typer.Context,
    name: str,
    url: str,
    company: CompanyOpt = None,
    rate_limit: Annotated[
        int | None, typer.Option(help="At most this many messages per window; then a digest.")
    ] = None,
    rate_window: Annotated[int, typer.Option(help="The rate limit's window, seconds.")] = 60,
) -> None:
    """Add (or replace) a channel: an Apprise URL such as mailtos://, json://, slack://."""
    c = _setup(ctx).add_channel(
        _company(ctx, company), name, url, rate_limit=rate_limit, rate_window=rate_window
    )
    state(ctx).out.print(f"channel {c.name}: {c.url_masked}")


@channels_cli.command("list")
def channels_list(ctx: typer.Context, company: CompanyOpt = None, as_json: JsonOpt = False) -> None:
    """List a company's channels (URLs masked)."""
    found = _setup(ctx).list_channels(_company(ctx, company))
    if as_json:
        print_json(state(ctx).out, [_channel(c) for c in found])
        return
    for c in found:
        limit = f"\tmax {c.rate_limit}/{c.rate_window}s" if c.rate_limit else ""
        state(ctx).out.print(f"{c.name}\t{c.url_masked}{limit}")


@channels_cli.command("remove")
def channels_remove(ctx: typer.Context, name: str, company: CompanyOpt = None) -> None:
    """Remove a channel."""
    _setup(ctx).remove_channel(_company(ctx, company), name)
    state(ctx).out.print(f"channel {name} removed")


@channels_cli.command("test")
def channels_test(ctx: typer.Context, name: str, company: CompanyOpt = None) -> None:
    """Send a test message to a channel now."""
    error = _setup(ctx).test_channel(_company(ctx, company), name)
    if error is not None:
        state(ctx).out.print(f"test to {name} failed: {error}")
        raise typer.Exit(1)
    state(ctx).out.print(f"test sent to {name}")


@channels_cli.command("email")
def channels_email(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A mailto:// or mailtos:// channel.")] = None,
    company: CompanyOpt = None,
    none: Annotated[bool, typer.Option("--none", help="No channel: in-app only.")] = False,
) -> None:
    """Choose the channel that emails people who chose "also email", to their address."""
    if (name is None) == (not none):
        state(ctx).out.print("give a channel's name, or --none")
        raise typer.Exit(2)
    _setup(ctx).set_email_channel(_company(ctx, company), None if none else name)
    state(ctx).out.print(f"people's email goes through {name}" if name else "no email to people")


def _channel(c: Channel) -> dict[str, Any]:
    return {
        "company": c.company,
        "name": c.name,
        "url": c.url_masked,
        "schema": c.url_schema,
        "rate_limit": c.rate_limit,
        "rate_window": c.rate_window,
    }


# -- rules ----------------------------------------------------------------------------------
@rules_cli.command("add")
def rules_add(
    ctx: typer.Context,
    on: Annotated[
        str,
        typer.Option(
            help="succeeded, failed, attempt_failed, cancelled, stalled, running_long, "
            "waiting_long or milestone."
        ),
    ],
    to: Annotated[
        list[str],
        typer.Option(help="owner, admins, owner_or_admins, user:NAME or channel:NAME (repeat)."),
    ],
    name: Annotated[str | None, typer.Option(help="The rule's name (default: made up).")] = None,
    company: CompanyOpt = None,
    task: Annotated[str | None, typer.Option(help="Only this task's operations.")] = None,
    category: Annotated[str | None, typer.Option(help="Only this category's.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue's.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's.")] = None,
    disabled: Annotated[bool, typer.Option(help="Add it switched off.")] = False,
    threshold: Annotated[
        float | None,
        typer.Option(help="Minutes (running_long, waiting_long) or a percentage (milestone)."),
    ] = None,
) -> None:
    """Add (or replace) a rule: on an event, for matching operations, notify recipients."""
    setup = _setup(ctx)
    where = _company(ctx, company)
    if name is None:
        taken = {r.name for r in setup.list_rules(where)}
        name = next(f"{on}-{n}" for n in range(1, len(taken) + 2) if f"{on}-{n}" not in taken)
    r = setup.add_rule(
        where,
        name,
        on=on,
        to=to,
        task=task,
        category=category,
        queue=queue,
        user=user,
        enabled=not disabled,
        threshold=threshold,
    )
    state(ctx).out.print(f"rule {r.name}: on {r.on.value} -> {', '.join(r.recipients)}")


@rules_cli.command("list")
def rules_list(ctx: typer.Context, company: CompanyOpt = None, as_json: JsonOpt = False) -> None:
    """List a company's rules."""
    found = _setup(ctx).list_rules(_company(ctx, company))
    if as_json:
        print_json(state(ctx).out, [_rule(r) for r in found])
        return
    for r in found:
        filters = " ".join(
            f"{k}={v}"
            for k, v in (("task", r.task), ("category", r.category), ("queue", r.queue))
            if v
        )
        state_text = "" if r.enabled else "\t(disabled)"
        state(ctx).out.print(
            f"{r.name}\ton {r.on.value}\t{filters}\t-> {', '.join(r.recipients)}{state_text}"
        )


@rules_cli.command("mute")
def rules_mute(ctx: typer.Context, name: str, company: CompanyOpt = None) -> None:
    """Stop this rule's notifications to you (the user of --as); others still get them."""
    _setup(ctx).mute_rule(_company(ctx, company), name)
    state(ctx).out.print(f"rule {name} muted for you")


@rules_cli.command("unmute")
def rules_unmute(ctx: typer.Context, name: str, company: CompanyOpt = None) -> None:
    """Hear from this rule again."""
    _setup(ctx).mute_rule(_company(ctx, company), name, muted=False)
    state(ctx).out.print(f"rule {name} no longer muted for you")


@rules_cli.command("remove")
def rules_remove(ctx: typer.Context, name: str, company: CompanyOpt = None) -> None:
    """Remove a rule."""
    _setup(ctx).remove_rule(_company(ctx, company), name)
    state(ctx).out.print(f"rule {name} removed")


def _rule(r: Rule) -> dict[str, Any]:
    return {"company": r.company, **r.to_json()}


# -- admins ---------------------------------------------------------------------------------
@admins_cli.command("add")
def admins_add(ctx: typer.Context, user: str, company: CompanyOpt = None) -> None:
    """Make a user one of the company's notified admins."""
    _setup(ctx).add_admin(_company(ctx, company), user)
    state(ctx).out.print(f"{user} is a notified admin")


@admins_cli.command("remove")
def admins_remove(ctx: typer.Context, user: str, company: CompanyOpt = None) -> None:
    """Remove a notified admin."""
    _setup(ctx).remove_admin(_company(ctx, company), user)
    state(ctx).out.print(f"{user} is no longer a notified admin")


@admins_cli.command("list")
def admins_list(ctx: typer.Context, company: CompanyOpt = None, as_json: JsonOpt = False) -> None:
    """List the company's notified admins."""
    found = _setup(ctx).list_admins(_company(ctx, company))
    if as_json:
        print_json(state(ctx).out, found)
        return
    for name in found:
        state(ctx).out.print(name)


# -- deliveries -----------------------------------------------------------------------------
@deliveries_cli.command("list")
def deliveries_list(
    ctx: typer.Context,
    company: CompanyOpt = None,
    status: Annotated[
        str | None, typer.Option(help="pending, sent, dead or digested (default: all).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The delivery log: each notification to each recipient, with tries and last error."""
    found = _setup(ctx).list_deliveries(_company(ctx, company), status=status, limit=limit)
    if as_json:
        print_json(state(ctx).out, [_delivery(d) for d in found])
        return
    for d in found:
        error = f"\t{d.last_error}" if d.last_error else ""
        state(ctx).out.print(
            f"{d.id}\t{d.status.value}\t{d.event.value}\t{d.recipient}\t"
            f"tries {d.attempts}\t{when(d.sent_at or d.next_at)}{error}"
        )


@deliveries_cli.command("retry")
def deliveries_retry(ctx: typer.Context, delivery_id: int, company: CompanyOpt = None) -> None:
    """Send a dead-lettered delivery again."""
    _setup(ctx).retry_delivery(_company(ctx, company), delivery_id)
    state(ctx).out.print(f"delivery {delivery_id} will be sent again")


def _delivery(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "company": d.company,
        "operation_id": str(d.operation_id),
        "event": d.event.value,
        "rule": d.rule_name,
        "recipient": d.recipient,
        "idempotency_key": str(d.idem_key),
        "status": d.status.value,
        "attempts": d.attempts,
        "next_at": d.next_at.isoformat(),
        "sent_at": None if d.sent_at is None else d.sent_at.isoformat(),
        "last_error": d.last_error,
    }


@app.command("deliver")
def deliver(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="One round, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between rounds.")] = 1.0,
    lease: Annotated[
        float, typer.Option(help="Seconds a claimed delivery is held before another may.")
    ] = 60.0,
    max_attempts: Annotated[int, typer.Option(help="Tries before a dead letter.")] = 5,
    backoff: Annotated[float, typer.Option(help="First retry delay, seconds (doubles).")] = 10.0,
) -> None:
    """Send notifications (workers do too; any number of processes may), until SIGTERM."""
    state(ctx).front.sessions.check_worker(None)  # as running a worker: SUPER
    service = state(ctx).app.delivery_service(
        interval=timedelta(seconds=interval),
        lease=timedelta(seconds=lease),
        max_attempts=max_attempts,
        backoff_base=backoff,
    )
    stop = threading.Event()
    # Put back whoever handled SIGTERM before, so a caller in the same process (a test, an
    # embedding program) is not left with a handler that only sets this loop's flag.
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while True:
            moved = service.run_once()
            if once or stop.is_set():
                break
            if not moved:
                stop.wait(interval)
            if stop.is_set():
                break
    finally:
        signal.signal(signal.SIGTERM, previous)
