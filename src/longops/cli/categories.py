"""``longops categories``: serialisation groups per company.

Example::

    longops categories set POSTING --company CRONUS --max-concurrent 1
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from longops.cli.context import CompanyOpt, JsonOpt, state
from longops.cli.render import print_json

app = typer.Typer(
    name="categories",
    help="Categories: serialisation groups per company.",
    no_args_is_help=True,
)


@app.command("set")
def categories_set(
    ctx: typer.Context,
    code: str,
    company: CompanyOpt = None,
    max_concurrent: Annotated[
        int | None, typer.Option(help="Runs at once (a new category: 1).")
    ] = None,
    description: Annotated[str | None, typer.Option()] = None,
    paused: Annotated[bool | None, typer.Option("--paused/--running")] = None,
) -> None:
    """Create or update a category: only what is given changes."""
    cli = state(ctx)
    c = cli.front.companies.set_category(
        cli.company(company),
        code,
        max_concurrent=max_concurrent,
        description=description,
        paused=paused,
    )
    cli.out.print(f"{c.company}/{c.code}: max {c.max_concurrent}{' (paused)' if c.paused else ''}")


@app.command("list")
def categories_list(
    ctx: typer.Context, company: CompanyOpt = None, as_json: JsonOpt = False
) -> None:
    """List a company's categories."""
    cli = state(ctx)
    cats = cli.front.companies.list_categories(cli.company(company))
    if as_json:
        print_json(cli.out, [_cat(c) for c in cats])
        return
    for c in cats:
        cli.out.print(
            f"{c.code}\tmax {c.max_concurrent}\t{'paused' if c.paused else ''}\t{c.description}"
        )


def _cat(c: Any) -> dict[str, Any]:
    return {
        "company": c.company,
        "code": c.code,
        "description": c.description,
        "max_concurrent": c.max_concurrent,
        "paused": c.paused,
    }
