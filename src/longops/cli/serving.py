"""``longops serve`` and ``longops demo``: the pages and the REST API on uvicorn (the server
itself is :mod:`longops.cli.serve`, imported only when it runs), and the demo.

Example::

    longops --app billing.tasks:app serve --port 8000 --workers 4
    longops demo --terminal --for 60
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from longops.cli.context import state
from longops.domain.errors import ValidationError

app = typer.Typer()


@app.command()
def serve(
    ctx: typer.Context,
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
    from longops.telemetry.events import console_level

    console_level(level)  # per-operation events on the console only with --log-level debug
    cli = state(ctx)
    app = cli.app
    if pool_size is not None:
        app.configure_store(pool_size=pool_size)
    if workers:
        cli.needs_tasks()
    from longops.cli.serve import EarlySignals
    from longops.cli.serve import serve as run_server

    # Refused (an older schema, exit code 78) before announcing anything.
    app.schema.guard_start(app.app_infos())
    # A TERM sent the moment it says where it serves stops it cleanly (exit code 0).
    early = EarlySignals()

    def announce() -> None:
        # Once it accepts connections (every process of --processes): whoever reads the
        # line can connect at once.
        cli.err.print(
            f"longops on http://{host}:{port} ({app.store.dialect}): pages at /, "
            "the API at /v1, docs at /docs"
        )
        cli.err.file.flush()

    raise typer.Exit(
        run_server(
            app,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            processes=processes,
            app_spec=cli.app_spec,
            access_log=access_log,
            early=early,
            announce=announce,
        )
    )


@app.command()
def demo(
    ctx: typer.Context,
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

    cli = state(ctx)
    url = database_url or cli.database_url
    if terminal:
        raise typer.Exit(run_terminal_demo(cli.out, seconds=seconds or 60.0, database_url=url))
    raise typer.Exit(run_demo(cli.out, seconds=seconds, database_url=url, host=host, port=port))
