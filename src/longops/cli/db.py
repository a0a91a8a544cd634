"""``longops db``: create, upgrade and inspect the database schema.

Example::

    longops db upgrade
    longops db status --json
"""

from __future__ import annotations

import typer

from longops.cli.context import JsonOpt, state
from longops.cli.render import print_json

app = typer.Typer(
    name="db", help="Create, upgrade and inspect the database schema.", no_args_is_help=True
)


@app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply pending migrations."""
    cli = state(ctx)
    applied = cli.front.schema.migrate()
    cli.out.print(f"applied {', '.join(applied)}" if applied else "schema is up to date")
    if getattr(cli.app.store, "row_level_security", False):
        cli.out.print("row-level security: enabled and forced on the company-owned tables")


@app.command("status")
def db_status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show each migration and whether it is applied (exit 1 unless all are)."""
    cli = state(ctx)
    states = cli.front.schema.migration_status()
    if as_json:
        print_json(
            cli.out, [{"version": s.version, "name": s.name, "state": s.state} for s in states]
        )
    else:
        for s in states:
            cli.out.print(f"{s.version:04d}_{s.name}: {s.state}")
    if any(s.state != "applied" for s in states):
        if not as_json and any(s.state == "pending" for s in states):
            cli.err.print("run `longops db upgrade` to apply the pending migrations")
        raise typer.Exit(1)


@app.command("sql")
def db_sql(ctx: typer.Context) -> None:
    """Print the whole schema as SQL, for teams that apply schema with their own tool."""
    cli = state(ctx)
    cli.out.file.write(cli.front.schema.migration_sql())
