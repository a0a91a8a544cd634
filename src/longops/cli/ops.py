"""``longops ops``: inspect and act on operations (job queue entries).

Example::

    longops ops list --status error --company CRONUS
    longops ops show 42 --json
    longops ops watch 42 --timeout 600
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from longops.cli.context import CliState, CompanyOpt, JsonOpt, UserOpt, state
from longops.cli.render import (
    attempts_table,
    operations_table,
    print_json,
    progress_lines,
    status_label,
    when,
)
from longops.cli.watch import follow
from longops.domain.errors import ValidationError
from longops.domain.filters import OperationFilter
from longops.domain.status import Status

app = typer.Typer(
    name="ops", help="Inspect and act on operations (job queue entries).", no_args_is_help=True
)


@app.command("list")
def ops_list(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="Filter (repeatable).")
    ] = None,
    company: Annotated[str | None, typer.Option("--company", "-c")] = None,
    task: Annotated[str | None, typer.Option()] = None,
    category: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1-1000).")] = 100,
    after: Annotated[int | None, typer.Option(help="Entries after this entry number.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List operations in entry order."""
    cli = state(ctx)
    statuses = tuple(_status(s) for s in status or ())
    service = cli.front.service
    ops = service.list_operations(
        OperationFilter(
            company=company,
            statuses=statuses,
            task=task,
            category=category,
            limit=limit,
            after_entry_no=after,
        )
    )
    if as_json:
        print_json(cli.out, service.describe(ops))
    else:
        cli.out.print(
            operations_table(
                ops,
                waits=service.wait_reasons(ops),
                progress=service.estimated(ops),
                now=cli.app.clock.now(),
            )
        )


def _status(text: str) -> Status:
    try:
        return Status(text.strip().lower().replace(" ", "_").replace("-", "_"))
    except ValueError:
        raise ValidationError(
            "status", f"must be one of {', '.join(s.value for s in Status)}", text
        ) from None


@app.command("show")
def ops_show(ctx: typer.Context, operation_id: str, as_json: JsonOpt = False) -> None:
    """Show one operation (by id or entry number) with its attempts (log entries)."""
    cli = state(ctx)
    out = cli.out
    service = cli.front.service
    op = service.get(operation_id)
    attempts = service.attempts(op.id)
    if as_json:
        [data] = service.describe([op])
        data["attempts"] = [a.to_json() for a in attempts]
        print_json(out, data)
        return
    now = cli.app.clock.now()
    waits = service.wait_reasons([op])
    reading = service.estimated([op]).get(op.id)
    # One reading for the row and the lines below it: the ETA read with the task's past
    # runs (the stored reading's own ETA would give a second, different one).
    out.print(
        operations_table(
            [op], title=f"Operation {op.id}", waits=waits, progress={op.id: reading}, now=now
        )
    )
    for line in progress_lines(op, reading, now):
        out.print(line, markup=False)
    if op.id in waits:
        out.print(f"Waiting: {waits[op.id].code.value} ({waits[op.id].message})", markup=False)
    cancellation = op.cancellation_json()
    if cancellation:
        who = cancellation["requested_by"] or "someone"
        forced = " (force)" if cancellation["force"] else ""
        line = f"Cancel requested{forced} by {who}"
        if cancellation["reason"]:
            line += f": {cancellation['reason']}"
        if cancellation["mode"]:
            line += f"; ended {cancellation['mode']}"
        if cancellation["took_seconds"] is not None:
            line += f" after {cancellation['took_seconds']:.1f} s"
        if cancellation["overdue_at"]:
            line += "; OVERDUE: the code ignores it and cannot be killed"
        out.print(line, markup=False)
    if op.checkpoint_at is not None:
        out.print(f"Checkpoint saved {op.checkpoint_at:%Y-%m-%d %H:%M:%S}", markup=False)
    out.print(attempts_table(attempts))
    last = attempts[-1] if attempts else None
    if last and last.traceback:
        out.print("[bold]Last traceback[/]")
        out.print(last.traceback, markup=False)


def _action(cli: CliState, name: str, operation_id: str, **kwargs: Any) -> None:
    op = getattr(cli.front.service, name)(operation_id, **kwargs)
    cli.out.print(f"{op.id} {op.status.caption}")


@app.command("events")
def ops_events(
    ctx: typer.Context,
    operation_id: str,
    after: Annotated[int | None, typer.Option(help="Only events after this event id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """An operation's timeline: attempts started and ended, progress, checkpoints, cancel
    requests, timeouts, stalls and people's actions, oldest first."""
    cli = state(ctx)
    events = cli.front.service.events(operation_id, after_id=after)
    if as_json:
        print_json(cli.out, [e.to_json() for e in events])
        return
    for e in events:
        detail = ", ".join(f"{k}={v}" for k, v in e.data.items() if v not in (None, "", {}))
        run = f" run {e.run_no}" if e.run_no else ""
        cli.out.print(f"{e.id:>8}  {when(e.at)}  {e.type.value:16}{run}  {detail}", markup=False)


@app.command("hold")
def ops_hold(ctx: typer.Context, operation_id: str) -> None:
    """Set On Hold (not while running: cancel instead)."""
    _action(state(ctx), "hold", operation_id)


@app.command("ready")
def ops_ready(ctx: typer.Context, operation_id: str, user: UserOpt = None) -> None:
    """Set Status to Ready: attempts reset, start recomputed."""
    _action(state(ctx), "set_ready", operation_id, user=user)


@app.command("restart")
def ops_restart(ctx: typer.Context, operation_id: str, user: UserOpt = None) -> None:
    """Restart a finished, failed or cancelled operation."""
    _action(state(ctx), "restart", operation_id, user=user)


@app.command("run-now")
def ops_run_now(ctx: typer.Context, operation_id: str, user: UserOpt = None) -> None:
    """Run as soon as a worker is free, ignoring the schedule."""
    _action(state(ctx), "run_now", operation_id, user=user)


@app.command("cancel")
def ops_cancel(
    ctx: typer.Context,
    operation_id: str,
    reason: Annotated[str | None, typer.Option(help="Why; recorded with the request.")] = None,
    by: Annotated[str | None, typer.Option(help="Who asks (default: the actor).")] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Skip the grace period: stop running code by force at once (admins)."
        ),
    ] = False,
) -> None:
    """Cancel: at once if not running; a running operation is asked to stop, and stopped
    by force if it does not within its task's grace period."""
    cli = state(ctx)
    op = cli.front.service.cancel(operation_id, reason=reason, by=by, force=force)
    label = "Cancelling" if op.status is Status.IN_PROCESS else op.status.caption
    cli.out.print(f"{op.id} {label}")


WATCH_EXIT = {Status.FINISHED: 0, Status.ERROR: 3, Status.CANCELLED: 4}
WATCH_TIMED_OUT = 5


@app.command("watch")
def ops_watch(
    ctx: typer.Context,
    operation_id: str,
    interval: Annotated[float, typer.Option(help="Seconds between reads.")] = 0.25,
    timeout: Annotated[
        float | None, typer.Option(help="Give up after this many seconds (exit 5).")
    ] = None,
) -> None:
    """Follow an operation live until it ends: a progress bar with percent, step, message,
    rate and ETA on a terminal, a line per change otherwise.

    Exit code: 0 finished, 3 error, 4 cancelled, 5 still running after --timeout
    (1 and 2 as for every command: refused, bad input).
    """
    cli = state(ctx)
    if not 0.05 <= interval <= 60:
        raise ValidationError("interval", "must be between 0.05 and 60 seconds", interval)
    if timeout is not None and not 0 < timeout <= 7 * 86400:  # (also refuses nan)
        raise ValidationError("timeout", "must be above 0 and at most 7 days (seconds)", timeout)
    op = cli.front.service.get(operation_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    op = follow(cli, op.id, interval, deadline)
    if not op.done:
        cli.err.print(f"still {status_label(op)} after {timeout:g} s")
        raise typer.Exit(WATCH_TIMED_OUT)
    summary = f"{op.id} {op.status.caption}"
    if op.status is Status.ERROR and op.last_error:
        summary += f": {op.last_error}"
    if op.status is Status.CANCELLED and op.cancel_mode:
        summary += f" ({op.cancel_mode.value})"
    cli.out.print(summary, markup=False)
    raise typer.Exit(WATCH_EXIT[op.status])


@app.command("delete")
def ops_delete(ctx: typer.Context, operation_id: str) -> None:
    """Delete an operation (refused while it is in process)."""
    cli = state(ctx)
    cli.front.service.delete(operation_id)
    cli.out.print(f"{operation_id} deleted")


@app.command("remove-failed")
def ops_remove_failed(ctx: typer.Context, company: CompanyOpt = None) -> None:
    """Delete non-recurring operations in error whose last run ended at least 30 s ago."""
    cli = state(ctx)
    n = cli.front.service.remove_failed(cli.company(company))
    cli.out.print(f"{n} failed operation(s) removed")
