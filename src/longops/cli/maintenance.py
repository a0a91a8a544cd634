"""``longops maintenance``: start, stop and show maintenance mode (no claims while it is on;
running work finishes within the drain timeout or is handed back, attempt not spent).

Example::

    longops maintenance start --reason "upgrade to 2.0" --drain-timeout 120
    longops db upgrade
    longops maintenance stop
"""

from __future__ import annotations

from typing import Annotated

import typer

from longops.cli.context import JsonOpt, state
from longops.cli.render import print_json
from longops.domain.maintenance import DEFAULT_DRAIN_TIMEOUT, MaintenanceMode

app = typer.Typer(
    name="maintenance",
    help="Maintenance mode: workers stop claiming (for upgrades); enqueueing goes on.",
    no_args_is_help=True,
)


def _show(ctx: typer.Context, mode: MaintenanceMode, as_json: bool) -> None:
    out = state(ctx).out
    if as_json:
        print_json(out, mode.to_json())
    else:
        out.print(describe(mode))


def describe(mode: MaintenanceMode) -> str:
    """One line saying where maintenance mode stands."""
    if not mode.active:
        return "maintenance mode: off"
    since = "" if mode.started_at is None else f" since {mode.started_at:%Y-%m-%d %H:%M:%S %Z}"
    why = f" ({mode.reason})" if mode.reason else ""
    deadline = mode.drain_deadline
    until = (
        ""
        if deadline is None
        else f"; running work is handed back at {deadline:%Y-%m-%d %H:%M:%S %Z} if not done"
    )
    return f"maintenance mode: on{since}{why}; no new claims{until}"


@app.command("start")
def start(
    ctx: typer.Context,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (shown on the pages and in the API).")
    ] = None,
    drain_timeout: Annotated[
        float,
        typer.Option(
            "--drain-timeout",
            help="Seconds running work may take to finish; then workers hand it back "
            "without spending an attempt.",
        ),
    ] = DEFAULT_DRAIN_TIMEOUT,
    as_json: JsonOpt = False,
) -> None:
    """Start maintenance mode: no worker claims until it stops (SUPER)."""
    mode = state(ctx).front.maintenance.start(reason=reason, drain_timeout=drain_timeout)
    _show(ctx, mode, as_json)


@app.command("stop")
def stop(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Stop maintenance mode: workers claim again at once (SUPER)."""
    mode = state(ctx).front.maintenance.stop()
    _show(ctx, mode, as_json)


@app.command("status")
def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show whether maintenance mode is on, why, and the drain deadline."""
    mode = state(ctx).front.maintenance.status()
    _show(ctx, mode, as_json)
