"""The ``longops`` command: run workers, enqueue, inspect and act on operations, manage the
schema, users and permission sets, and try it all with ``longops demo``.

Every command acts for an actor through ``core``: ``--as USER`` (that user's permission
sets), ``--token`` (the token's user), or else the local SUPER actor, because whoever holds
the database URL can do anything anyway.

Every read command takes ``--json``; an operation's JSON always has a top-level ``status``.
Errors go to standard error with exit code 2 for bad input and 1 for everything else
(including a refused action).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import EllipsisType
from typing import Annotated, Any

import typer
from rich.console import Console

from longops.app import ActorView, Longops
from longops.cli import maintenance as maintenance_cli
from longops.cli.loading import load_app
from longops.cli.notify import register as register_notifications
from longops.cli.render import (
    attempts_table,
    audit_table,
    eta_text,
    operations_table,
    print_json,
    progress_lines,
    rate_text,
    status_label,
    when,
)
from longops.core.enqueue import EnqueueRequest
from longops.core.security import DEFAULT_TOKEN_LIFETIME
from longops.domain.classification import LOGGED_BY_DEFAULT, DataClass
from longops.domain.errors import LongopsError, ValidationError
from longops.domain.filters import OperationFilter
from longops.domain.security import Actor, FrontEnd, PermissionSet
from longops.domain.status import Status
from longops.hosting import (
    EXIT_MEMORY,
    HEARTBEAT_INTERVAL,
    RESCUER_INTERVAL,
    SESSION_TIMEOUT,
    parse_size,
    redact_logs,
    run_worker,
)
from longops.telemetry.events import console_level

ROOT_HELP = (
    "Track long-running operations: run workers, enqueue work, watch and act on it.\n\n"
    "Every command acts for someone. With --as USER (or --token) it acts under that user's "
    "permission sets; without, it acts as the local SUPER actor, because it holds the "
    "database URL and could do anything anyway."
)

cli = typer.Typer(
    name="longops",
    help=ROOT_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ops_cli = typer.Typer(
    help="Inspect and act on operations (job queue entries).", no_args_is_help=True
)
db_cli = typer.Typer(help="Create, upgrade and inspect the database schema.", no_args_is_help=True)
cat_cli = typer.Typer(help="Categories: serialisation groups per company.", no_args_is_help=True)
queue_cli = typer.Typer(help="Pause and resume queues.", no_args_is_help=True)
sessions_cli = typer.Typer(help="Worker sessions and their events.", no_args_is_help=True)
companies_cli = typer.Typer(
    help="Companies: the business context operations run in.", no_args_is_help=True
)
users_cli = typer.Typer(
    help="Users, their permission sets per company, and API tokens.", no_args_is_help=True
)
tokens_cli = typer.Typer(
    help="API tokens: create (shown once), list, revoke.", no_args_is_help=True
)
audit_cli = typer.Typer(help="The audit log of operator actions.", no_args_is_help=True)
users_cli.add_typer(tokens_cli, name="token")
cli.add_typer(ops_cli, name="ops")
cli.add_typer(db_cli, name="db")
cli.add_typer(cat_cli, name="categories")
cli.add_typer(queue_cli, name="queues")
cli.add_typer(sessions_cli, name="sessions")
cli.add_typer(companies_cli, name="companies")
cli.add_typer(users_cli, name="users")
cli.add_typer(audit_cli, name="audit")

# Off a terminal (pipes, files, CI logs) nothing is wrapped at 80 columns: lines stay whole.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class State:
    app_spec: str | None = None
    database_url: str | None = None
    as_user: str | None = None
    token: str | None = None
    _app: Longops | None = None
    _front: ActorView | None = None

    @property
    def app(self) -> Longops:
        if self._app is None:
            self._app = load_app(self.app_spec, self.database_url)
        return self._app

    @property
    def front(self) -> ActorView:
        """The application as the command's actor sees it (see ROOT_HELP)."""
        if self._front is None:
            app = self.app
            if self.as_user is not None and self.token is not None:
                raise ValidationError("as", "give --as or --token, not both")
            if self.token is not None:
                self._front = app.authenticate(self.token, FrontEnd.CLI)
            elif self.as_user is not None:
                self._front = app.as_user(self.as_user, FrontEnd.CLI)
            else:
                self._front = app.as_actor(Actor.local(FrontEnd.CLI))
        return self._front


state = State()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]
UserOpt = Annotated[
    str | None,
    typer.Option(help="Run it on behalf of this user (default: the actor; SUPER only)."),
]
CompanyOpt = Annotated[
    str | None,
    typer.Option(
        "--company",
        "-c",
        help="Company name (default: the actor's only company, or 'default').",
    ),
]


def _company(given: str | None) -> str:
    """The company a command acts in: the one given, else the actor's only company (a
    user who holds sets in one company need not name it), else 'default'."""
    if given is not None:
        return given
    actor = state.front.actor
    if not actor.is_super and len(actor.companies) == 1:
        [only] = actor.companies
        return only
    return "default"


@cli.callback()
def _root(
    app: Annotated[
        str | None,
        typer.Option("--app", envvar="LONGOPS_APP", help="Your application as module:attribute."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="LONGOPS_DATABASE_URL",
            help="sqlite:///file.db or postgresql://... (default sqlite:///longops.db).",
        ),
    ] = None,
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            envvar="LONGOPS_AS",
            help="Act as this user, under their permission sets. Without --as (or --token) "
            "the command acts as the local SUPER actor: it holds the database URL.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="LONGOPS_TOKEN", help="Act as the user this API token belongs to."
        ),
    ] = None,
) -> None:
    state.app_spec = app
    state.database_url = database_url
    state.as_user = as_user
    state.token = token
    state._app = None
    state._front = None


# -- worker -------------------------------------------------------------------------------------
@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-n", help="Runs at once.")] = 4,
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Queue to serve (repeatable).")
    ] = None,
    company: Annotated[
        list[str] | None,
        typer.Option("--company", "-c", help="Serve only this company (repeatable; default all)."),
    ] = None,
    heartbeat_interval: Annotated[
        float, typer.Option(help="Seconds between heartbeats.")
    ] = HEARTBEAT_INTERVAL,
    session_timeout: Annotated[
        float, typer.Option(help="Seconds of silence before a session is declared lost.")
    ] = SESSION_TIMEOUT,
    grace_period: Annotated[
        float, typer.Option(help="Seconds a drain waits for running work (SIGTERM).")
    ] = 30.0,
    rescuer_interval: Annotated[
        float, typer.Option(help="Seconds between rescuer runs.")
    ] = RESCUER_INTERVAL,
    poll_interval: Annotated[float, typer.Option(help="Longest idle wait, in seconds.")] = 1.0,
    retention_days: Annotated[
        float, typer.Option(help="Days finished and cancelled operations are kept.")
    ] = 30.0,
    progress_interval: Annotated[
        float, typer.Option(help="Seconds between progress writes per operation (at most).")
    ] = 1.0,
    max_runs_per_child: Annotated[
        int, typer.Option(help="Runs after which a process-isolation child is replaced.")
    ] = 100,
    max_memory_per_child: Annotated[
        int | None,
        typer.Option(help="MiB of resident memory after which a child is replaced."),
    ] = None,
    max_memory: Annotated[
        str | None,
        typer.Option(
            help="Past this much resident memory (e.g. 512MiB, 2G) the worker hands its runs "
            f"back and exits with code {EXIT_MEMORY}, for its supervisor to start a fresh one."
        ),
    ] = None,
    health_port: Annotated[
        int,
        typer.Option(help="Serve /livez and /readyz on this TCP port for supervisors (0: off)."),
    ] = 0,
    health_host: Annotated[
        str, typer.Option(help="Address the health endpoint binds (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    pool_size: Annotated[
        int | None,
        typer.Option(
            help="PostgreSQL: most pooled connections (default LONGOPS_POOL_SIZE, 8); the "
            "worker also holds 2 LISTEN connections."
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error (to standard error).")
    ] = "info",
    log_class: Annotated[
        list[str] | None,
        typer.Option(
            help="A data class the logs may also carry, e.g. CustomerContent to see error "
            "text while debugging (repeatable; default: SystemMetadata, "
            "OrganizationIdentifiableInformation, EndUserPseudonymousIdentifiers)."
        ),
    ] = None,
) -> None:
    """Run a worker session until SIGTERM/SIGINT (a second signal stops at once)."""
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise ValidationError("log_level", "must be debug, info, warning or error", log_level)
    classes = LOGGED_BY_DEFAULT | {_data_class(c) for c in log_class or ()}
    memory_limit = None if max_memory is None else parse_size(max_memory, "--max-memory")
    if not 0 <= health_port <= 65535:
        raise ValidationError("--health-port", "must be between 0 and 65535 (0: off)", health_port)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    console_level(level)  # per-operation events on the console only with --log-level debug
    redact_logs(classes)
    app = state.app
    if pool_size is not None:
        app.configure_store(pool_size=pool_size)
    if len(app.registry) == 0:
        raise LongopsError("no tasks registered: pass --app module:attribute (or LONGOPS_APP)")
    w = app.worker(
        actor=state.front.actor,
        companies=tuple(company) if company else None,
        queues=tuple(queue or ("default",)),
        concurrency=concurrency,
        heartbeat_interval=heartbeat_interval,
        session_timeout=session_timeout,
        grace_period=grace_period,
        rescuer_interval=rescuer_interval,
        poll_interval=poll_interval,
        retention=timedelta(days=retention_days),
        progress_interval=progress_interval,
        max_runs_per_child=max_runs_per_child,
        max_memory_per_child=None if max_memory_per_child is None else max_memory_per_child * 2**20,
        log_classes=classes,
        max_memory=memory_limit,
    )
    served = "all companies" if w.options.companies is None else ", ".join(w.options.companies)
    err.print(
        f"longops worker {w.session_id} serving {', '.join(w.options.queues)} "
        f"({served}) with {concurrency} slots on {app.store.dialect}"
    )
    code = run_worker(w, health_host=health_host, health_port=health_port)
    raise typer.Exit(code)


def _data_class(text: str) -> DataClass:
    for member in DataClass:
        if text.strip().lower() == member.value.lower():
            return member
    raise ValidationError(
        "log_class", f"must be one of {', '.join(c.value for c in DataClass)}", text
    )


# -- enqueue ------------------------------------------------------------------------------------
@cli.command()
def enqueue(
    task: Annotated[str, typer.Argument(help="Registered task name.")],
    args: Annotated[str, typer.Option("--args", help="JSON array of positional arguments.")] = "[]",
    kwargs: Annotated[
        str, typer.Option("--kwargs", help="JSON object of keyword arguments.")
    ] = "{}",
    company: CompanyOpt = None,
    description: Annotated[str | None, typer.Option()] = None,
    queue: Annotated[str | None, typer.Option()] = None,
    category: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[str | None, typer.Option(help="high, normal or low.")] = None,
    delay: Annotated[float | None, typer.Option(help="Seconds before it may start.")] = None,
    max_attempts: Annotated[int | None, typer.Option()] = None,
    rerun_delay: Annotated[int | None, typer.Option(help="Seconds (0-3600).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds.")] = None,
    recurrence: Annotated[
        str | None,
        typer.Option(help="'every 15m', 'cron:0 9 * * 1-5', 'formula:<1M+CM>' or JSON."),
    ] = None,
    dedup_key: Annotated[str | None, typer.Option()] = None,
    user: Annotated[
        str | None, typer.Option(help="Who it runs on behalf of (default: the actor; SUPER only).")
    ] = None,
    on_hold: Annotated[bool, typer.Option("--on-hold", help="Create it On Hold.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an operation. Prints its id as the last line (or the operation with --json)."""
    parsed_args = _json_arg("args", args, list)
    parsed_kwargs = _json_arg("kwargs", kwargs, dict)
    app = state.app
    if len(app.registry) == 0:
        raise LongopsError("no tasks registered: pass --app module:attribute (or LONGOPS_APP)")
    op = state.front.service.enqueue(
        EnqueueRequest(
            task=task,
            args=parsed_args,
            kwargs=parsed_kwargs,
            company=_company(company),
            description=description,
            queue=queue,
            category=category,
            priority=priority,
            delay=delay,
            max_attempts=max_attempts,
            rerun_delay=rerun_delay,
            timeout=timeout,
            recurrence=recurrence,
            dedup_key=dedup_key,
            user=user,
            on_hold=on_hold,
        )
    )
    if as_json:
        print_json(out, op.to_json())
    else:
        out.print(f"{op.status.caption}: {op.task} (entry {op.entry_no})", style="dim")
        out.file.write(f"{op.id}\n")


def _json_arg(name: str, text: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(name, f"must be valid JSON: {exc.msg}") from exc
    if not isinstance(value, kind):
        raise ValidationError(name, f"must be a JSON {'array' if kind is list else 'object'}")
    return value


# -- ops ----------------------------------------------------------------------------------------
@ops_cli.command("list")
def ops_list(
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
    statuses = tuple(_status(s) for s in status or ())
    ops = state.front.service.list_operations(
        OperationFilter(
            company=company,
            statuses=statuses,
            task=task,
            category=category,
            limit=limit,
            after_entry_no=after,
        )
    )
    service = state.front.service
    if as_json:
        print_json(out, service.describe(ops))
    else:
        out.print(
            operations_table(
                ops,
                waits=service.wait_reasons(ops),
                progress=service.estimated(ops),
                now=state.app.clock.now(),
            )
        )


def _status(text: str) -> Status:
    try:
        return Status(text.strip().lower().replace(" ", "_").replace("-", "_"))
    except ValueError:
        raise ValidationError(
            "status", f"must be one of {', '.join(s.value for s in Status)}", text
        ) from None


@ops_cli.command("show")
def ops_show(operation_id: str, as_json: JsonOpt = False) -> None:
    """Show one operation (by id or entry number) with its attempts (log entries)."""
    service = state.front.service
    op = service.get(operation_id)
    attempts = service.attempts(op.id)
    if as_json:
        [data] = service.describe([op])
        data["attempts"] = [a.to_json() for a in attempts]
        print_json(out, data)
        return
    now = state.app.clock.now()
    waits = service.wait_reasons([op])
    reading = service.estimated([op]).get(op.id)
    out.print(operations_table([op], title=f"Operation {op.id}", waits=waits, now=now))
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


def _action(name: str, operation_id: str, **kwargs: Any) -> None:
    op = getattr(state.front.service, name)(operation_id, **kwargs)
    out.print(f"{op.id} {op.status.caption}")


@ops_cli.command("events")
def ops_events(
    operation_id: str,
    after: Annotated[int | None, typer.Option(help="Only events after this event id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """An operation's timeline: attempts started and ended, progress, checkpoints, cancel
    requests, timeouts, stalls and people's actions, oldest first."""
    events = state.front.service.events(operation_id, after_id=after)
    if as_json:
        print_json(out, [e.to_json() for e in events])
        return
    for e in events:
        detail = ", ".join(f"{k}={v}" for k, v in e.data.items() if v not in (None, "", {}))
        run = f" run {e.run_no}" if e.run_no else ""
        out.print(f"{e.id:>8}  {when(e.at)}  {e.type.value:16}{run}  {detail}", markup=False)


@ops_cli.command("hold")
def ops_hold(operation_id: str) -> None:
    """Set On Hold (not while running: cancel instead)."""
    _action("hold", operation_id)


@ops_cli.command("ready")
def ops_ready(operation_id: str, user: UserOpt = None) -> None:
    """Set Status to Ready: attempts reset, start recomputed."""
    _action("set_ready", operation_id, user=user)


@ops_cli.command("restart")
def ops_restart(operation_id: str, user: UserOpt = None) -> None:
    """Restart a finished, failed or cancelled operation."""
    _action("restart", operation_id, user=user)


@ops_cli.command("run-now")
def ops_run_now(operation_id: str, user: UserOpt = None) -> None:
    """Run as soon as a worker is free, ignoring the schedule."""
    _action("run_now", operation_id, user=user)


@ops_cli.command("cancel")
def ops_cancel(
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
    op = state.front.service.cancel(operation_id, reason=reason, by=by, force=force)
    label = "Cancelling" if op.status is Status.IN_PROCESS else op.status.caption
    out.print(f"{op.id} {label}")


WATCH_EXIT = {Status.FINISHED: 0, Status.ERROR: 3, Status.CANCELLED: 4}
WATCH_TIMED_OUT = 5


@ops_cli.command("watch")
def ops_watch(
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
    if not 0.05 <= interval <= 60:
        raise ValidationError("interval", "must be between 0.05 and 60 seconds", interval)
    if timeout is not None and not 0 < timeout <= 7 * 86400:  # (also refuses nan)
        raise ValidationError("timeout", "must be above 0 and at most 7 days (seconds)", timeout)
    service = state.front.service
    op = service.get(operation_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    if out.is_terminal:
        op = _watch_live(op.id, interval, deadline)
    else:
        op = _watch_lines(op.id, interval, deadline)
    if not op.done:
        err.print(f"still {status_label(op)} after {timeout:g} s")
        raise typer.Exit(WATCH_TIMED_OUT)
    summary = f"{op.id} {op.status.caption}"
    if op.status is Status.ERROR and op.last_error:
        summary += f": {op.last_error}"
    if op.status is Status.CANCELLED and op.cancel_mode:
        summary += f" ({op.cancel_mode.value})"
    out.print(summary, markup=False)
    raise typer.Exit(WATCH_EXIT[op.status])


def _watch_state(op_id: Any) -> tuple[Any, str, float | None, dict[str, str]]:
    service = state.front.service
    op = service.get(op_id)
    reading = service.estimated([op]).get(op.id)
    now = state.app.clock.now()
    description = status_label(op)
    if reading is not None and reading.step_label:
        description += f" · {reading.step_label}"
    elif op.status.value == "ready":
        waits = service.wait_reasons([op])
        if op.id in waits:
            description += f" · {waits[op.id].code.value}"
    running = op.status is Status.IN_PROCESS
    fields = {
        "message": (reading.message or "") if reading else "",
        "rate": rate_text(reading) if running else "",
        "eta": eta_text(reading, now) if running else "",
    }
    return op, description, None if reading is None else reading.percent, fields


def _watch_live(op_id: Any, interval: float, deadline: float | None) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
        TextColumn("{task.fields[message]}"),
    )
    with Progress(*columns, console=out, transient=False) as bar:
        op, description, _, fields = _watch_state(op_id)
        task = bar.add_task(
            description, total=100, message=fields["message"], rate=fields["rate"], eta=""
        )
        while True:
            op, description, percent, fields = _watch_state(op_id)
            bar.update(
                task,
                description=description,
                completed=100.0 if op.status is Status.FINISHED else (percent or 0.0),
                message=fields["message"],
                rate=fields["rate"],
                eta=fields["eta"],
            )
            if op.done or (deadline is not None and time.monotonic() >= deadline):
                bar.refresh()
                return op
            time.sleep(interval)


def _watch_lines(op_id: Any, interval: float, deadline: float | None) -> Any:
    last = None
    while True:
        op, description, percent, fields = _watch_state(op_id)
        shown = f"{percent:.0f}%" if percent is not None else ""
        parts = (description, shown, fields["message"], fields["rate"], fields["eta"])
        line = "  ".join(part for part in parts if part)
        if line != last:
            out.print(line, markup=False)
            last = line
        if op.done or (deadline is not None and time.monotonic() >= deadline):
            return op
        time.sleep(interval)


@ops_cli.command("delete")
def ops_delete(operation_id: str) -> None:
    """Delete an operation (refused while it is in process)."""
    state.front.service.delete(operation_id)
    out.print(f"{operation_id} deleted")


@ops_cli.command("remove-failed")
def ops_remove_failed(company: CompanyOpt = None) -> None:
    """Delete non-recurring operations in error whose last run ended at least 30 s ago."""
    n = state.front.service.remove_failed(_company(company))
    out.print(f"{n} failed operation(s) removed")


# -- db -----------------------------------------------------------------------------------------
@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    applied = state.front.schema.migrate()
    out.print(f"applied {', '.join(applied)}" if applied else "schema is up to date")
    if getattr(state.app.store, "row_level_security", False):
        out.print("row-level security: enabled and forced on the company-owned tables")


@db_cli.command("status")
def db_status(as_json: JsonOpt = False) -> None:
    """Show each migration and whether it is applied (exit 1 unless all are)."""
    states = state.front.schema.migration_status()
    if as_json:
        print_json(out, [{"version": s.version, "name": s.name, "state": s.state} for s in states])
    else:
        for s in states:
            out.print(f"{s.version:04d}_{s.name}: {s.state}")
    if any(s.state != "applied" for s in states):
        if not as_json and any(s.state == "pending" for s in states):
            err.print("run `longops db upgrade` to apply the pending migrations")
        raise typer.Exit(1)


@db_cli.command("sql")
def db_sql() -> None:
    """Print the whole schema as SQL, for teams that apply schema with their own tool."""
    out.file.write(state.front.schema.migration_sql())


# -- categories, queues, sessions ---------------------------------------------------------------
@cat_cli.command("set")
def categories_set(
    code: str,
    company: CompanyOpt = None,
    max_concurrent: Annotated[
        int | None, typer.Option(help="Runs at once (a new category: 1).")
    ] = None,
    description: Annotated[str | None, typer.Option()] = None,
    paused: Annotated[bool | None, typer.Option("--paused/--running")] = None,
) -> None:
    """Create or update a category: only what is given changes."""
    c = state.front.companies.set_category(
        _company(company),
        code,
        max_concurrent=max_concurrent,
        description=description,
        paused=paused,
    )
    out.print(f"{c.company}/{c.code}: max {c.max_concurrent}{' (paused)' if c.paused else ''}")


@cat_cli.command("list")
def categories_list(company: CompanyOpt = None, as_json: JsonOpt = False) -> None:
    """List a company's categories."""
    cats = state.front.companies.list_categories(_company(company))
    if as_json:
        print_json(out, [_cat(c) for c in cats])
        return
    for c in cats:
        out.print(
            f"{c.code}\tmax {c.max_concurrent}\t{'paused' if c.paused else ''}\t{c.description}"
        )


def _cat(c: Any) -> dict[str, Any]:
    return {
        "company": c.company,
        "code": c.code,
        "description": c.description,
        "max_concurrent": c.max_concurrent,
        "paused": c.paused,
    }


@queue_cli.command("pause")
def queues_pause(name: str) -> None:
    """Stop workers from claiming a queue's operations."""
    state.front.companies.pause_queue(name)
    out.print(f"queue {name} paused")


@queue_cli.command("resume")
def queues_resume(name: str) -> None:
    """Let workers claim a queue's operations again."""
    state.front.companies.resume_queue(name)
    out.print(f"queue {name} resumed")


@queue_cli.command("list")
def queues_list(as_json: JsonOpt = False) -> None:
    """List paused queues (every other queue is being served)."""
    paused = sorted(state.front.companies.paused_queues())
    if as_json:
        print_json(out, {"paused": paused})
        return
    out.print("paused: " + (", ".join(paused) if paused else "none"))


@sessions_cli.command("list")
def sessions_list(
    active: Annotated[bool, typer.Option("--active", help="Only live sessions.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List worker sessions, newest first."""
    sessions = state.front.sessions.list_sessions(active_only=active)
    if as_json:
        print_json(out, [s.to_json() for s in sessions])
        return
    for s in sessions:
        out.print(
            f"{s.id}  {s.state.value:8}  {s.host} pid {s.pid}  queues {','.join(s.queues)}  "
            f"heartbeat {s.last_heartbeat_at:%H:%M:%S}"
        )


@sessions_cli.command("events")
def sessions_events(
    session_id: Annotated[str | None, typer.Argument()] = None, as_json: JsonOpt = False
) -> None:
    """Session events (logon, logoff, lost, drain started), newest first."""
    sid = _session_id(session_id) if session_id else None
    events = state.front.sessions.session_events(sid)
    if as_json:
        print_json(out, [e.to_json() for e in events])
        return
    for e in events:
        out.print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.type.value:17}  {e.session_id}  {e.comment or ''}")


@companies_cli.command("add")
def companies_add(
    name: str,
    display_name: Annotated[str | None, typer.Option(help="Shown to people.")] = None,
    time_zone: Annotated[
        str | None, typer.Option(help="IANA zone recurrence is evaluated in (new: UTC).")
    ] = None,
    max_in_process: Annotated[
        int | None,
        typer.Option(help="At most this many of its operations run at once."),
    ] = None,
    no_limit: Annotated[
        bool, typer.Option("--no-limit", help="Remove the limit on operations in process.")
    ] = False,
) -> None:
    """Create a company, or change what is given of it (a disabled company becomes active
    again)."""
    if no_limit and max_in_process is not None:
        raise ValidationError("max_in_process", "cannot be given with --no-limit")
    limit: int | EllipsisType | None = (
        None if no_limit else (... if max_in_process is None else max_in_process)
    )
    c = state.front.companies.add_company(
        name, display_name=display_name, time_zone=time_zone, max_in_process=limit
    )
    shown = "" if c.max_in_process is None else f", at most {c.max_in_process} in process"
    out.print(f"company {c.name} ({c.display_name}, {c.time_zone}{shown})")


@companies_cli.command("disable")
def companies_disable(name: str) -> None:
    """Disable a company: no new operations, and its ready ones wait until it is added again."""
    c = state.front.companies.disable_company(name)
    out.print(f"company {c.name} disabled")


@companies_cli.command("list")
def companies_list(as_json: JsonOpt = False) -> None:
    """List the companies the actor holds a permission set in (SUPER: all)."""
    companies = state.front.companies.list_companies()
    if as_json:
        print_json(out, [c.to_json() for c in companies])
        return
    for c in companies:
        state_note = "" if c.active else "  (disabled)"
        limit = "" if c.max_in_process is None else f"\tmax {c.max_in_process} in process"
        out.print(f"{c.name}\t{c.display_name}\t{c.time_zone}{limit}{state_note}")


# -- users, tokens, audit -----------------------------------------------------------------------
CompaniesOpt = Annotated[
    list[str] | None,
    typer.Option("--company", "-c", help="Company of the permission set at the same position."),
]
SetsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--permission-set",
        "-p",
        help="JOBQUEUE-VIEW, JOBQUEUE-USER or JOBQUEUE-ADMIN (each with a --company), "
        "or SUPER (global, no company). Repeatable.",
    ),
]


def _pairs(
    companies: list[str] | None, sets: list[str] | None
) -> tuple[list[tuple[str, PermissionSet]], bool]:
    """Pair each --permission-set with the --company at the same position; SUPER alone."""
    chosen = [PermissionSet.parse(s) for s in sets or ()]
    per_company = [s for s in chosen if s is not PermissionSet.SUPER]
    names = list(companies or ())
    if len(names) != len(per_company):
        raise ValidationError(
            "company",
            f"give one --company for each --permission-set other than SUPER "
            f"({len(per_company)} set(s), {len(names)} company(ies))",
        )
    return list(zip(names, per_company, strict=True)), PermissionSet.SUPER in chosen


@users_cli.command("add")
def users_add(
    name: str,
    company: CompaniesOpt = None,
    permission_set: SetsOpt = None,
    display_name: Annotated[str | None, typer.Option(help="Shown to people.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    email: Annotated[str | None, typer.Option(help="Where notifications may email them.")] = None,
) -> None:
    """Add a user with permission sets, e.g. --company CRONUS --permission-set JOBQUEUE-USER."""
    grants, is_super = _pairs(company, permission_set)
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    user = state.front.security.add_user(
        name,
        display_name=display_name,
        password=password,
        grants=grants,
        is_super=is_super,
        email=email,
    )
    out.print(f"user {user.name} added ({_sets(user.grants, user.is_super)})")


@users_cli.command("set")
def users_set(
    name: str,
    email: Annotated[str | None, typer.Option(help="Their email address.")] = None,
    no_email: Annotated[bool, typer.Option("--no-email", help="Remove the address.")] = False,
    notify: Annotated[
        str | None, typer.Option(help="inbox (in the app only) or email (also by email).")
    ] = None,
) -> None:
    """Set a user's email address and how they are notified (a person their own)."""
    if notify not in (None, "inbox", "email"):
        raise ValidationError("notify", "must be inbox or email", notify)
    address, by_email = state.front.security.set_contact(
        name,
        email=email,
        clear_email=no_email,
        notify_by_email=None if notify is None else notify == "email",
    )
    how = "in the app and by email" if by_email else "in the app only"
    out.print(f"user {name}: {address or 'no email address'}, notified {how}")


def _sets(grants: Any, is_super: bool) -> str:
    parts = [f"{s.value} in {c}" for c, s in grants] + (["SUPER"] if is_super else [])
    return ", ".join(parts) or "no permission sets"


@users_cli.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List users with their permission sets."""
    users = state.front.security.list_users()
    if as_json:
        print_json(out, [u.to_json() for u in users])
        return
    if not users:
        # Without users the command line acts as the local SUPER actor; say so, not nothing.
        err.print(
            "no users yet (longops users add NAME ...); without --as or --token the "
            "command line acts as the local SUPER actor"
        )
        return
    for u in users:
        note = "" if u.active else "  (disabled)"
        out.print(f"{u.name}\t{u.display_name}\t{_sets(u.grants, u.is_super)}{note}")


@users_cli.command("grant")
def users_grant(name: str, company: CompaniesOpt = None, permission_set: SetsOpt = None) -> None:
    """Give a user permission sets (same pairing as users add)."""
    _change_grants(name, company, permission_set, give=True)


@users_cli.command("revoke")
def users_revoke(name: str, company: CompaniesOpt = None, permission_set: SetsOpt = None) -> None:
    """Take permission sets away (same pairing as users add)."""
    _change_grants(name, company, permission_set, give=False)


def _change_grants(
    name: str, companies: list[str] | None, sets: list[str] | None, *, give: bool
) -> None:
    grants, is_super = _pairs(companies, sets)
    security = state.front.security
    change = security.grant if give else security.revoke
    for c, s in grants:
        change(name, s, c)
    if is_super:
        change(name, PermissionSet.SUPER)
    user = security.get_user(name)
    out.print(f"user {user.name}: {_sets(user.grants, user.is_super)}")


@users_cli.command("disable")
def users_disable(name: str) -> None:
    """Disable a user: their tokens stop working at once; their operations are flagged."""
    state.front.security.disable_user(name)
    out.print(f"user {name} disabled")


@users_cli.command("enable")
def users_enable(name: str) -> None:
    """Enable a disabled user again."""
    state.front.security.enable_user(name)
    out.print(f"user {name} enabled")


@users_cli.command("delete")
def users_delete(name: str) -> None:
    """Delete a user with their permission sets and tokens (their operations stay, flagged)."""
    state.front.security.delete_user(name)
    out.print(f"user {name} deleted")


@users_cli.command("export")
def users_export(name: str) -> None:
    """Print, as JSON, every row that identifies the user (personal data export)."""
    print_json(out, state.front.security.export_user(name))


@users_cli.command("forget")
def users_forget(name: str) -> None:
    """Delete the user and pseudonymise their name in history; the operations stay."""
    pseudonym = state.front.security.forget_user(name)
    out.print(f"user {name} forgotten; history now names {pseudonym}")


@tokens_cli.command("create")
def tokens_create(
    user: str,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "default",
    expires: Annotated[
        str,
        typer.Option(
            help="A lifetime (30d, 12h, 90m), a date or time (2027-01-31), or 'never'.",
        ),
    ] = f"{DEFAULT_TOKEN_LIFETIME.days}d",
) -> None:
    """Create an API token. It is printed once, as the last line, and never shown again."""
    token, text = state.front.security.create_token(user, name=name, expires=_expires(expires))
    until = (
        "never expires"
        if token.expires_at is None
        else f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    err.print(f"token {token.name} of {token.user} ({token.id}), {until}; store it now:")
    out.file.write(f"{text}\n")


_LIFETIME = re.compile(r"^([0-9]+)\s*([dhm])$")


def _expires(text: str) -> datetime | timedelta | None:
    value = text.strip().lower()
    if value == "never":
        return None
    match = _LIFETIME.match(value)
    if match:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
        return timedelta(**{unit: int(match.group(1))})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            "expires", "must be a lifetime such as 30d, 12h or 90m, a date, or 'never'", text
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=datetime.now().astimezone().tzinfo)


@tokens_cli.command("list")
def tokens_list(user: str, as_json: JsonOpt = False) -> None:
    """List a user's tokens (never their text)."""
    tokens = state.front.security.list_tokens(user)
    if as_json:
        print_json(out, [t.to_json() for t in tokens])
        return
    for t in tokens:
        now = state.app.clock.now()
        status = (
            "revoked"
            if t.revoked_at
            else ("expired" if t.expires_at is not None and t.expires_at <= now else "active")
        )
        expires = "never" if t.expires_at is None else f"{t.expires_at:%Y-%m-%d %H:%M}"
        used = "never" if t.last_used_at is None else f"{t.last_used_at:%Y-%m-%d %H:%M}"
        out.print(f"{t.name}\t{t.id}\t{status}\texpires {expires}\tlast used {used}")


@tokens_cli.command("revoke")
def tokens_revoke(user: str, token: str) -> None:
    """Revoke a token, named by its name or id: it stops working at once."""
    revoked = state.front.security.revoke_token(user, token)
    out.print(f"token {revoked.name} of {revoked.user} revoked")


@audit_cli.command("list")
def audit_list(
    company: Annotated[str | None, typer.Option("--company", "-c")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first (1-1000).")] = 100,
    before: Annotated[int | None, typer.Option(help="Entries before this id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Operator actions (who, when, what, from which front end), newest first."""
    entries = state.front.security.list_audit(company=company, limit=limit, before_id=before)
    if as_json:
        print_json(out, [e.to_json() for e in entries])
        return
    out.print(audit_table(entries))


def _session_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValidationError("session_id", "must be a session id (a UUID)", text) from None


@cli.command("tasks")
def tasks_list(as_json: JsonOpt = False) -> None:
    """List the tasks the application (--app) registers."""
    tasks = list(state.app.registry)
    if as_json:
        print_json(
            out,
            [
                {
                    "name": t.name,
                    "signature": _signature(t),
                    "queue": t.queue,
                    "category": t.category,
                    "max_attempts": t.max_attempts,
                    "isolation": t.isolation,
                    "timeout_seconds": t.timeout.total_seconds(),
                    "cancel_grace_seconds": t.cancel_grace.total_seconds(),
                    "description": t.description,
                }
                for t in tasks
            ],
        )
        return
    if not tasks:
        err.print("no tasks registered: pass --app module:attribute (or LONGOPS_APP)")
    for t in tasks:
        extra = f" [category {t.category}]" if t.category else ""
        if t.isolation == "process":
            extra += " [process]"
        out.print(
            f"{t.name}{_signature(t)}  queue {t.queue}{extra}  {t.description or ''}",
            markup=False,
        )


def _signature(task: Any) -> str:
    """The task's parameters as written: string annotations (``from __future__ import
    annotations``) are shown as the source has them, not quoted."""
    import inspect

    parts: list[str] = []
    star_done = False
    for p in task.signature.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        if p.kind is p.VAR_POSITIONAL:
            star_done = True
        text = prefix + p.name
        if p.annotation is not p.empty:
            ann = p.annotation
            text += f": {ann if isinstance(ann, str) else inspect.formatannotation(ann)}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    return f"({', '.join(parts)})"


# -- serve --------------------------------------------------------------------------------------
@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            help="Also run a worker session with this many slots in this process (0: none).",
        ),
    ] = 0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    pool_size: Annotated[
        int | None,
        typer.Option(help="PostgreSQL: most pooled connections (default LONGOPS_POOL_SIZE, 8)."),
    ] = None,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            "-p",
            help="Server processes on the port (one per CPU core suits a busy API).",
        ),
    ] = 1,
    access_log: Annotated[
        bool,
        typer.Option("--access-log/--no-access-log", help="Log a line per request (default: off)."),
    ] = False,
) -> None:
    """Serve the pages (at /) and the REST API (OpenAPI at /v1/openapi.json, docs at /docs)
    until SIGTERM."""
    if not 1 <= processes <= 64:
        raise ValidationError("processes", "must be between 1 and 64", processes)
    if not 1 <= port <= 65535:
        raise ValidationError("port", "must be between 1 and 65535", port)
    if not 0 <= workers <= 1000:
        raise ValidationError("workers", "must be between 0 and 1000", workers)
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise ValidationError("log_level", "must be debug, info, warning or error", log_level)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    console_level(level)  # per-operation events on the console only with --log-level debug
    app = state.app
    if pool_size is not None:
        app.configure_store(pool_size=pool_size)
    if workers and len(app.registry) == 0:
        raise LongopsError("no tasks registered: pass --app module:attribute (or LONGOPS_APP)")
    from longops.cli.serve import serve as run_server

    err.print(
        f"longops on http://{host}:{port} ({app.store.dialect}): pages at /, "
        "the API at /v1, docs at /docs"
    )
    raise typer.Exit(
        run_server(
            app,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            processes=processes,
            app_spec=state.app_spec,
            access_log=access_log,
        )
    )


# -- demo ---------------------------------------------------------------------------------------
@cli.command()
def demo(
    seconds: Annotated[
        float | None,
        typer.Option(
            "--for", help="Stop after this many seconds (default: the pages run until Ctrl-C)."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Where to run it (default: a fresh SQLite file)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address the pages listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the pages listen on.")] = 8000,
    terminal: Annotated[
        bool,
        typer.Option(
            "--terminal", help="No pages: a live table in the terminal until the demo settles."
        ),
    ] = False,
) -> None:
    """Try longops: the pages at http://127.0.0.1:8000 with a worker on a fresh SQLite file,
    two companies, demo users (their sign-in is printed) and operations in every state."""
    if seconds is not None and seconds <= 0:
        raise ValidationError("for", "must be a positive number of seconds", seconds)
    if not 1 <= port <= 65535:
        raise ValidationError("port", "must be between 1 and 65535", port)
    from longops.cli.demo import run_demo, run_terminal_demo

    url = database_url or state.database_url
    if terminal:
        raise typer.Exit(run_terminal_demo(out, seconds=seconds or 60.0, database_url=url))
    raise typer.Exit(run_demo(out, seconds=seconds, database_url=url, host=host, port=port))


register_notifications(cli, state, out, _company)
maintenance_cli.register(cli, state, out)


def main() -> None:
    """Console entry point: turns longops errors into a message and an exit code.

    Usage errors are typer's own (exit 2); bad input we detect is a ValidationError (exit 2);
    anything else longops refuses exits 1.
    """
    try:
        cli()
    except LongopsError as exc:
        # A refused action is a sentence that names who, what and why (exit 1).
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(2 if isinstance(exc, ValidationError) else 1)


if __name__ == "__main__":
    main()
