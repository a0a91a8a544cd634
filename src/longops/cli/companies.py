"""``longops companies``: the business context operations run in.

Example::

    longops companies add CRONUS --time-zone Europe/Berlin --max-in-process 4
"""

from __future__ import annotations

from types import EllipsisType
from typing import Annotated

import typer

from longops.cli.context import JsonOpt, state
from longops.cli.render import print_json
from longops.domain.errors import ValidationError

app = typer.Typer(
    name="companies",
    help="Companies: the business context operations run in.",
    no_args_is_help=True,
)


@app.command("add")
def companies_add(
    ctx: typer.Context,
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
    cli = state(ctx)
    if no_limit and max_in_process is not None:
        raise ValidationError("max_in_process", "cannot be given with --no-limit")
    limit: int | EllipsisType | None = (
        None if no_limit else (... if max_in_process is None else max_in_process)
    )
    c = cli.front.companies.add_company(
        name, display_name=display_name, time_zone=time_zone, max_in_process=limit
    )
    shown = "" if c.max_in_process is None else f", at most {c.max_in_process} in process"
    cli.out.print(f"company {c.name} ({c.display_name}, {c.time_zone}{shown})")


@app.command("disable")
def companies_disable(ctx: typer.Context, name: str) -> None:
    """Disable a company: no new operations, and its ready ones wait until it is added again."""
    cli = state(ctx)
    c = cli.front.companies.disable_company(name)
    cli.out.print(f"company {c.name} disabled")


@app.command("list")
def companies_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the companies the actor holds a permission set in (SUPER: all)."""
    cli = state(ctx)
    companies = cli.front.companies.list_companies()
    if as_json:
        print_json(cli.out, [c.to_json() for c in companies])
        return
    for c in companies:
        state_note = "" if c.active else "  (disabled)"
        limit = "" if c.max_in_process is None else f"\tmax {c.max_in_process} in process"
        cli.out.print(f"{c.name}\t{c.display_name}\t{c.time_zone}{limit}{state_note}")
