"""``longops maintenance``: start, stop and show maintenance mode (no claims while it is on;
running work finishes within the drain timeout or is handed back, attempt not spent).

Example::

    longops maintenance start --reason "upgrade to 2.0" --drain-timeout 120
    longops db upgrade
    longops maintenance stop
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from longops.cli.render import print_json
from longops.domain.maintenance import DEFAULT_DRAIN_TIMEOUT, MaintenanceMode

maintenance_cli = typer.Typer(
    help="Maintenance mode: workers stop claiming (for upgrades); enqueueing goes on.",
    no_args_is_help=True,
)


class _Context:
    """The root command's state (the actor's front) and output, set by :func:`register`;
    this module imports nothing of ``main``, which may run as ``__main__``."""

    state: Any = None
    out: Console = Console()


_ctx = _Context()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]


def register(cli: typer.Typer, state: Any, out: Console) -> None:
    """Add ``longops maintenance`` to ``cli``."""
    _ctx.state, _ctx.out = state, out
    cli.add_typer(maintenance_cli, name="maintenance")


def _service() -> Any:
    return _ctx.state.front.maintenance


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


@maintenance_cli.command("start")
def start(
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
    mode = _service().start(reason=reason, drain_timeout=drain_timeout)
    if as_json:
        print_json(_ctx.out, mode.to_json())
        return
    _ctx.out.print(describe(mode))


@maintenance_cli.command("stop")
def stop(as_json: JsonOpt = False) -> None:
    """Stop maintenance mode: workers claim again at once (SUPER)."""
    mode = _service().stop()
    if as_json:
        print_json(_ctx.out, mode.to_json())
        return
    _ctx.out.print(describe(mode))


@maintenance_cli.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Show whether maintenance mode is on, why, and the drain deadline."""
    mode = _service().status()
    if as_json:
        print_json(_ctx.out, mode.to_json())
        return
    _ctx.out.print(describe(mode))
