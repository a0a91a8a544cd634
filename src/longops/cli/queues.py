"""``longops queues``: pause and resume queues.

Example::

    longops queues pause exports
    longops queues list --json
"""

from __future__ import annotations

import typer

from longops.cli.context import JsonOpt, state
from longops.cli.render import print_json

app = typer.Typer(name="queues", help="Pause and resume queues.", no_args_is_help=True)


@app.command("pause")
def queues_pause(ctx: typer.Context, name: str) -> None:
    """Stop workers from claiming a queue's operations."""
    cli = state(ctx)
    cli.front.companies.pause_queue(name)
    cli.out.print(f"queue {name} paused")


@app.command("resume")
def queues_resume(ctx: typer.Context, name: str) -> None:
    """Let workers claim a queue's operations again."""
    cli = state(ctx)
    cli.front.companies.resume_queue(name)
    cli.out.print(f"queue {name} resumed")


@app.command("list")
def queues_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List paused queues (every other queue is being served)."""
    cli = state(ctx)
    paused = sorted(cli.front.companies.paused_queues())
    if as_json:
        print_json(cli.out, {"paused": paused})
        return
    cli.out.print("paused: " + (", ".join(paused) if paused else "none"))
