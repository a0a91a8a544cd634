"""The ``longops`` command: run workers, enqueue, inspect and act on operations, manage the
schema, users and permission sets, and try it all with ``longops demo``.

Every command acts for an actor through ``core``: ``--as USER`` (that user's permission
sets), ``--token`` (the token's user), or else the local SUPER actor, because whoever holds
the database URL can do anything anyway.

Every read command takes ``--json``; an operation's JSON always has a top-level ``status``.
Errors go to standard error with exit code 2 for bad input and 1 for everything else
(including a refused action).

This module only assembles: each command group is a module of ``longops.cli`` with a Typer
``app`` (named: a group, ``longops ops ...``; unnamed: top-level commands), listed in
:data:`PARTS` in the order ``--help`` shows them. The root options reach the commands as a
:class:`~longops.cli.context.CliState` in Typer's context.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from longops.cli.context import CliState, LongopsGroup

ROOT_HELP = (
    "Track long-running operations: run workers, enqueue work, watch and act on it.\n\n"
    "Every command acts for someone. With --as USER (or --token) it acts under that user's "
    "permission sets; without, it acts as the local SUPER actor, because it holds the "
    "database URL and could do anything anyway."
)

PARTS = (
    "worker",  # worker
    "enqueue",  # enqueue, tasks
    "serving",  # serve, demo
    "ops",
    "db",
    "categories",
    "queues",
    "sessions",
    "companies",
    "users",  # users, users token
    "audit",
    "notify",  # notifications
    "apps",
    "maintenance",
)
"""The modules of ``longops.cli`` whose ``app`` the command is made of, in help order."""

cli = typer.Typer(
    name="longops",
    help=ROOT_HELP,
    cls=LongopsGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for _part in PARTS:
    cli.add_typer(importlib.import_module(f"longops.cli.{_part}").app)


@cli.callback()
def _root(
    ctx: typer.Context,
    app: Annotated[
        list[str] | None,
        typer.Option(
            "--app",
            envvar="LONGOPS_APP",
            help="Your application as module:attribute (repeatable; default: every app "
            "installed under the entry-point group longops.apps).",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="LONGOPS_DATABASE_URL",
            help="sqlite:///file.db or postgresql://... (default sqlite:///longops.db).",
        ),
    ] = None,
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            envvar="LONGOPS_AS",
            help="Act as this user, under their permission sets. Without --as (or --token) "
            "the command acts as the local SUPER actor: it holds the database URL.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="LONGOPS_TOKEN", help="Act as the user this API token belongs to."
        ),
    ] = None,
) -> None:
    given = CliState(
        app_spec=",".join(app) if app else None,
        database_url=database_url,
        as_user=as_user,
        token=token,
    )
    ctx.obj = given
    ctx.call_on_close(given.close)


def main() -> None:
    """Console entry point.

    Usage errors are typer's own (exit 2); bad input we detect is a ValidationError (exit 2);
    anything else longops refuses exits 1 (:class:`~longops.cli.context.LongopsGroup`).
    """
    cli()


if __name__ == "__main__":
    main()
