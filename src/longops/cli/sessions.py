"""``longops sessions``: worker sessions and their events.

Example::

    longops sessions list --active
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from longops.cli.context import JsonOpt, state
from longops.cli.render import print_json
from longops.domain.errors import ValidationError

app = typer.Typer(name="sessions", help="Worker sessions and their events.", no_args_is_help=True)


@app.command("list")
def sessions_list(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Only live sessions.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List worker sessions, newest first."""
    cli = state(ctx)
    sessions = cli.front.sessions.list_sessions(active_only=active)
    if as_json:
        print_json(cli.out, [s.to_json() for s in sessions])
        return
    for s in sessions:
        cli.out.print(
            f"{s.id}  {s.state.value:8}  {s.host} pid {s.pid}  queues {','.join(s.queues)}  "
            f"heartbeat {s.last_heartbeat_at:%H:%M:%S}  code {s.code_version or '-'}  "
            f"schema {s.schema_version or '-'}"
            + (f"  stopped claiming: {s.claim_stopped}" if s.claim_stopped else "")
        )


@app.command("events")
def sessions_events(
    ctx: typer.Context,
    session_id: Annotated[str | None, typer.Argument()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Session events (logon, logoff, lost, drain started), newest first."""
    cli = state(ctx)
    sid = _session_id(session_id) if session_id else None
    events = cli.front.sessions.session_events(sid)
    if as_json:
        print_json(cli.out, [e.to_json() for e in events])
        return
    for e in events:
        cli.out.print(
            f"{e.at:%Y-%m-%d %H:%M:%S}  {e.type.value:17}  {e.session_id}  {e.comment or ''}"
        )


def _session_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValidationError("session_id", "must be a session id (a UUID)", text) from None
