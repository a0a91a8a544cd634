"""``longops users``: users, their permission sets per company, and (``users token``) API
tokens.

Example::

    longops users add alice --company CRONUS --permission-set JOBQUEUE-USER
    longops users grant alice --company FABRIKAM --permission-set JOBQUEUE-VIEW
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from longops.cli import tokens
from longops.cli.context import CliState, JsonOpt, state
from longops.cli.render import print_json
from longops.domain.errors import ValidationError
from longops.domain.security import PermissionSet

app = typer.Typer(
    name="users",
    help="Users, their permission sets per company, and API tokens.",
    no_args_is_help=True,
)

CompaniesOpt = Annotated[
    list[str] | None,
    typer.Option("--company", "-c", help="Company of the permission set at the same position."),
]
SetsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--permission-set",
        "-p",
        help="JOBQUEUE-VIEW, JOBQUEUE-USER or JOBQUEUE-ADMIN (each with a --company), "
        "or SUPER (global, no company). Repeatable.",
    ),
]


def _pairs(
    companies: list[str] | None, sets: list[str] | None
) -> tuple[list[tuple[str, PermissionSet]], bool]:
    """Pair each --permission-set with the --company at the same position; SUPER alone."""
    chosen = [PermissionSet.parse(s) for s in sets or ()]
    per_company = [s for s in chosen if s is not PermissionSet.SUPER]
    names = list(companies or ())
    if len(names) != len(per_company):
        raise ValidationError(
            "company",
            f"give one --company for each --permission-set other than SUPER "
            f"({len(per_company)} set(s), {len(names)} company(ies))",
        )
    return list(zip(names, per_company, strict=True)), PermissionSet.SUPER in chosen


@app.command("add")
def users_add(
    ctx: typer.Context,
    name: str,
    company: CompaniesOpt = None,
    permission_set: SetsOpt = None,
    display_name: Annotated[str | None, typer.Option(help="Shown to people.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    email: Annotated[str | None, typer.Option(help="Where notifications may email them.")] = None,
) -> None:
    """Add a user with permission sets, e.g. --company CRONUS --permission-set JOBQUEUE-USER."""
    cli = state(ctx)
    grants, is_super = _pairs(company, permission_set)
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    user = cli.front.security.add_user(
        name,
        display_name=display_name,
        password=password,
        grants=grants,
        is_super=is_super,
        email=email,
    )
    cli.out.print(f"user {user.name} added ({_sets(user.grants, user.is_super)})")


@app.command("set")
def users_set(
    ctx: typer.Context,
    name: str,
    email: Annotated[str | None, typer.Option(help="Their email address.")] = None,
    no_email: Annotated[bool, typer.Option("--no-email", help="Remove the address.")] = False,
    notify: Annotated[
        str | None, typer.Option(help="inbox (in the app only) or email (also by email).")
    ] = None,
) -> None:
    """Set a user's email address and how they are notified (a person their own)."""
    cli = state(ctx)
    if notify not in (None, "inbox", "email"):
        raise ValidationError("notify", "must be inbox or email", notify)
    address, by_email = cli.front.security.set_contact(
        name,
        email=email,
        clear_email=no_email,
        notify_by_email=None if notify is None else notify == "email",
    )
    how = "in the app and by email" if by_email else "in the app only"
    cli.out.print(f"user {name}: {address or 'no email address'}, notified {how}")


def _sets(grants: Any, is_super: bool) -> str:
    parts = [f"{s.value} in {c}" for c, s in grants] + (["SUPER"] if is_super else [])
    return ", ".join(parts) or "no permission sets"


@app.command("list")
def users_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List users with their permission sets."""
    cli = state(ctx)
    users = cli.front.security.list_users()
    if as_json:
        print_json(cli.out, [u.to_json() for u in users])
        return
    if not users:
        # Without users the command line acts as the local SUPER actor; say so, not nothing.
        cli.err.print(
            "no users yet (longops users add NAME ...); without --as or --token the "
            "command line acts as the local SUPER actor"
        )
        return
    for u in users:
        note = "" if u.active else "  (disabled)"
        cli.out.print(f"{u.name}\t{u.display_name}\t{_sets(u.grants, u.is_super)}{note}")


@app.command("grant")
def users_grant(
    ctx: typer.Context, name: str, company: CompaniesOpt = None, permission_set: SetsOpt = None
) -> None:
    """Give a user permission sets (same pairing as users add)."""
    _change_grants(state(ctx), name, company, permission_set, give=True)


@app.command("revoke")
def users_revoke(
    ctx: typer.Context, name: str, company: CompaniesOpt = None, permission_set: SetsOpt = None
) -> None:
    """Take permission sets away (same pairing as users add)."""
    _change_grants(state(ctx), name, company, permission_set, give=False)


def _change_grants(
    cli: CliState, name: str, companies: list[str] | None, sets: list[str] | None, *, give: bool
) -> None:
    grants, is_super = _pairs(companies, sets)
    security = cli.front.security
    change = security.grant if give else security.revoke
    for c, s in grants:
        change(name, s, c)
    if is_super:
        change(name, PermissionSet.SUPER)
    user = security.get_user(name)
    cli.out.print(f"user {user.name}: {_sets(user.grants, user.is_super)}")


@app.command("disable")
def users_disable(ctx: typer.Context, name: str) -> None:
    """Disable a user: their tokens stop working at once; their operations are flagged."""
    cli = state(ctx)
    cli.front.security.disable_user(name)
    cli.out.print(f"user {name} disabled")


@app.command("enable")
def users_enable(ctx: typer.Context, name: str) -> None:
    """Enable a disabled user again."""
    cli = state(ctx)
    cli.front.security.enable_user(name)
    cli.out.print(f"user {name} enabled")


@app.command("delete")
def users_delete(ctx: typer.Context, name: str) -> None:
    """Delete a user with their permission sets and tokens (their operations stay, flagged)."""
    cli = state(ctx)
    cli.front.security.delete_user(name)
    cli.out.print(f"user {name} deleted")


@app.command("export")
def users_export(ctx: typer.Context, name: str) -> None:
    """Print, as JSON, every row that identifies the user (personal data export)."""
    cli = state(ctx)
    print_json(cli.out, cli.front.security.export_user(name))


@app.command("forget")
def users_forget(ctx: typer.Context, name: str) -> None:
    """Delete the user and pseudonymise their name in history; the operations stay."""
    cli = state(ctx)
    pseudonym = cli.front.security.forget_user(name)
    cli.out.print(f"user {name} forgotten; history now names {pseudonym}")


app.add_typer(tokens.app)
