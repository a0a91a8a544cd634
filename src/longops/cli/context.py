"""What every ``longops`` command shares: the root options (``--app``, ``--database-url``,
``--as``, ``--token``) and the consoles, carried in Typer's context as a :class:`CliState`;
the options several groups take; and how a refused action becomes a message and an exit code.

Example::

    app = typer.Typer(name="queues", help="Pause and resume queues.", no_args_is_help=True)

    @app.command("pause")
    def queues_pause(ctx: typer.Context, name: str) -> None:
        cli = state(ctx)
        cli.front.companies.pause_queue(name)
        cli.out.print(f"queue {name} paused")

The application is loaded on first use and closed when the command ends, so ``--help`` and
usage errors never open a database, and a command run in-process (tests) leaves nothing open.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from longops.domain.errors import LongopsError, ValidationError

if TYPE_CHECKING:
    from longops.app import ActorView, Longops

NO_TASKS = "no tasks registered: pass --app module:attribute (or LONGOPS_APP)"

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]
UserOpt = Annotated[
    str | None,
    typer.Option(help="Run it on behalf of this user (default: the actor; SUPER only)."),
]
CompanyOpt = Annotated[
    str | None,
    typer.Option(
        "--company",
        "-c",
        help="Company name (default: the actor's only company, or 'default').",
    ),
]


def stdout_console() -> Console:
    """Standard output for people. Off a terminal (pipes, files, CI logs) nothing is wrapped
    at 80 columns: lines stay whole."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def stderr_console() -> Console:
    """Standard error: messages and refusals, never wrapped."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass(slots=True)
class CliState:
    """The root options of one command line, and what they lead to: the application
    (``--app``, ``--database-url``) and the actor's view of it (``--as``, ``--token``, or
    the local SUPER actor: whoever holds the database URL can do anything anyway)."""

    app_spec: str | None = None
    database_url: str | None = None
    as_user: str | None = None
    token: str | None = None
    out: Console = field(default_factory=stdout_console)
    err: Console = field(default_factory=stderr_console)
    _app: Longops | None = field(default=None, repr=False)
    _front: ActorView | None = field(default=None, repr=False)

    @property
    def app(self) -> Longops:
        """The application, loaded on first use."""
        if self._app is None:
            from longops.cli.loading import load_app

            self._app = load_app(self.app_spec, self.database_url)
        return self._app

    @property
    def front(self) -> ActorView:
        """The application as the command's actor sees it."""
        if self._front is None:
            from longops.domain.security import Actor, FrontEnd

            app = self.app
            if self.as_user is not None and self.token is not None:
                raise ValidationError("as", "give --as or --token, not both")
            if self.token is not None:
                self._front = app.authenticate(self.token, FrontEnd.CLI)
            elif self.as_user is not None:
                self._front = app.as_user(self.as_user, FrontEnd.CLI)
            else:
                self._front = app.as_actor(Actor.local(FrontEnd.CLI))
        return self._front

    def company(self, given: str | None) -> str:
        """The company a command acts in: the one given, else the actor's only company (a
        user who holds sets in one company need not name it), else 'default'."""
        if given is not None:
            return given
        actor = self.front.actor
        if not actor.is_super and len(actor.companies) == 1:
            [only] = actor.companies
            return only
        return "default"

    def needs_tasks(self) -> Longops:
        """The application, refusing one without tasks (``--app`` forgotten)."""
        app = self.app
        if len(app.registry) == 0:
            raise LongopsError(NO_TASKS)
        return app

    def close(self) -> None:
        """Close the application if the command opened it."""
        if self._app is not None:
            self._app.close()
        self._app = self._front = None


def state(ctx: typer.Context) -> CliState:
    """The command line's :class:`CliState`, set by the root command."""
    found = ctx.find_object(CliState)
    if found is None:  # a sub-app invoked without the root: options at their defaults
        found = ctx.ensure_object(CliState)
        ctx.call_on_close(found.close)
    return found


class LongopsGroup(TyperGroup):
    """The root group: a :class:`LongopsError` a command raises becomes a sentence on
    standard error and an exit code (2 for bad input, 1 for anything else refused), the
    same whether the command runs as a process or in-process."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LongopsError as exc:
            found = ctx.find_object(CliState)
            err = found.err if found is not None else stderr_console()
            # A refused action is a sentence that names who, what and why.
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(
                2 if isinstance(exc, ValidationError) else getattr(exc, "exit_code", 1)
            ) from None
