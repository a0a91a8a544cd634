"""``longops audit``: the audit log of operator actions.

Example::

    longops audit list --company CRONUS --limit 20
"""

from __future__ import annotations

from typing import Annotated

import typer

from longops.cli.context import JsonOpt, state
from longops.cli.render import audit_table, print_json

app = typer.Typer(name="audit", help="The audit log of operator actions.", no_args_is_help=True)


@app.command("list")
def audit_list(
    ctx: typer.Context,
    company: Annotated[str | None, typer.Option("--company", "-c")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first (1-1000).")] = 100,
    before: Annotated[int | None, typer.Option(help="Entries before this id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Operator actions (who, when, what, from which front end), newest first."""
    cli = state(ctx)
    entries = cli.front.security.list_audit(company=company, limit=limit, before_id=before)
    if as_json:
        print_json(cli.out, [e.to_json() for e in entries])
        return
    cli.out.print(audit_table(entries))
