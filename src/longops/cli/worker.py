"""``longops worker``: run a worker session as a process of its own until SIGTERM.

Example::

    longops --app billing.tasks:app worker --concurrency 8 --queue default --queue exports
"""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from typing import Annotated

import typer

from longops.cli.context import state
from longops.domain.classification import LOGGED_BY_DEFAULT, DataClass
from longops.domain.errors import ValidationError
from longops.hosting import (
    EXIT_MEMORY,
    HEARTBEAT_INTERVAL,
    MEMORY_HAND_BACKS,
    RESCUER_INTERVAL,
    SESSION_TIMEOUT,
    parse_size,
    redact_logs,
    run_worker,
)

app = typer.Typer()


@app.command()
def worker(
    ctx: typer.Context,
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
        str | None,
        typer.Option(
            help="Resident memory after which a process-isolation child is replaced (e.g. "
            "512MiB; units as --max-memory, a bare number is bytes)."
        ),
    ] = None,
    max_memory: Annotated[
        str | None,
        typer.Option(
            help="Past this much resident memory (e.g. 512MiB, 2G) the worker hands its runs "
            f"back and exits with code {EXIT_MEMORY}, for its supervisor to start a fresh one."
        ),
    ] = None,
    memory_hand_backs: Annotated[
        int,
        typer.Option(
            help="An operation in flight at this many --max-memory exits in a row fails "
            "instead of being handed back again."
        ),
    ] = MEMORY_HAND_BACKS,
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
    child_limit = (
        None
        if max_memory_per_child is None
        else parse_size(max_memory_per_child, "--max-memory-per-child")
    )
    if not 0 <= health_port <= 65535:
        raise ValidationError("--health-port", "must be between 0 and 65535 (0: off)", health_port)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    from longops.telemetry.events import console_level

    console_level(level)  # per-operation events on the console only with --log-level debug
    redact_logs(classes)
    cli = state(ctx)
    app = cli.app
    if pool_size is not None:
        app.configure_store(pool_size=pool_size)
    app = cli.needs_tasks()
    # Refused (an older schema, exit code 78) before announcing anything.
    app.schema.guard_start(app.app_infos())
    w = app.worker(
        actor=cli.front.actor,
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
        max_memory_per_child=child_limit,
        log_classes=classes,
        max_memory=memory_limit,
        memory_hand_backs=memory_hand_backs,
    )
    # The signals drain it before it says it serves: a supervisor (or test) may send TERM
    # the moment it reads that line.
    w.install_signals()
    served = "all companies" if w.options.companies is None else ", ".join(w.options.companies)
    cli.err.print(
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
