"""``longops users token``: API tokens, created (shown once), listed and revoked.

Example::

    longops users token create alice --name ci --expires 90d
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

import typer

from longops.cli.context import JsonOpt, state
from longops.cli.render import print_json
from longops.domain.errors import ValidationError

DEFAULT_EXPIRES = "90d"
"""Core's default token lifetime as ``--expires`` writes it (a unit test keeps them equal;
written out so that ``longops --help`` need not load core)."""

app = typer.Typer(
    name="token", help="API tokens: create (shown once), list, revoke.", no_args_is_help=True
)


@app.command("create")
def tokens_create(
    ctx: typer.Context,
    user: str,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "default",
    expires: Annotated[
        str,
        typer.Option(
            help="A lifetime (30d, 12h, 90m), a date or time (2027-01-31), or 'never'.",
        ),
    ] = DEFAULT_EXPIRES,
) -> None:
    """Create an API token. It is printed once, as the last line, and never shown again."""
    cli = state(ctx)
    token, text = cli.front.security.create_token(user, name=name, expires=_expires(expires))
    until = (
        "never expires"
        if token.expires_at is None
        else f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    cli.err.print(f"token {token.name} of {token.user} ({token.id}), {until}; store it now:")
    cli.out.file.write(f"{text}\n")


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


@app.command("list")
def tokens_list(ctx: typer.Context, user: str, as_json: JsonOpt = False) -> None:
    """List a user's tokens (never their text)."""
    cli = state(ctx)
    found = cli.front.security.list_tokens(user)
    if as_json:
        print_json(cli.out, [t.to_json() for t in found])
        return
    for t in found:
        now = cli.app.clock.now()
        status = (
            "revoked"
            if t.revoked_at
            else ("expired" if t.expires_at is not None and t.expires_at <= now else "active")
        )
        expires = "never" if t.expires_at is None else f"{t.expires_at:%Y-%m-%d %H:%M}"
        used = "never" if t.last_used_at is None else f"{t.last_used_at:%Y-%m-%d %H:%M}"
        cli.out.print(f"{t.name}\t{t.id}\t{status}\texpires {expires}\tlast used {used}")


@app.command("revoke")
def tokens_revoke(ctx: typer.Context, user: str, token: str) -> None:
    """Revoke a token, named by its name or id: it stops working at once."""
    cli = state(ctx)
    revoked = cli.front.security.revoke_token(user, token)
    cli.out.print(f"token {revoked.name} of {revoked.user} revoked")
