"""``longops apps``: the installed apps, their tasks and who serves them; export and
uninstall (docs/apps.md). SUPER only: apps span companies."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from longops.cli.context import JsonOpt, state
from longops.cli.render import print_json
from longops.domain.errors import ValidationError

app = typer.Typer(
    name="apps", help="Apps (packages of tasks): list, export, uninstall.", no_args_is_help=True
)


@app.command("list")
def apps_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Each app workers and servers recorded: version, tasks, live sessions serving it."""
    cli = state(ctx)
    apps = cli.front.apps.list_apps()
    out = cli.out
    check = cli.front.schema.check()
    if not as_json:
        out.print(
            f"schema: database version {check.database_version}, this code's "
            f"{check.code_version} ({check.verdict.value})",
            highlight=False,
        )
    if as_json:
        print_json(
            out,
            [
                {
                    "name": a.name,
                    "version": a.version,
                    "tasks": [
                        {
                            "name": t.name,
                            "worker_wait_seconds": None
                            if t.worker_wait is None
                            else t.worker_wait.total_seconds(),
                        }
                        for t in a.tasks
                    ],
                    "seen_at": a.seen_at.isoformat(),
                    "uninstalled_at": None
                    if a.uninstalled_at is None
                    else a.uninstalled_at.isoformat(),
                    "served_by": list(a.served_by),
                    "serving": [
                        {
                            "session": s.id,
                            "code_version": s.code_version,
                            "missing_tasks": list(s.missing_tasks),
                        }
                        for s in a.serving
                    ],
                }
                for a in apps
            ],
        )
        return
    if not apps:
        out.print("no apps recorded yet: a worker records the apps it serves when it starts")
    for a in apps:
        gone = " (uninstalled)" if a.uninstalled_at is not None else ""
        out.print(f"{a.name} {a.version or '-'}{gone}", highlight=False)
        out.print(f"  tasks: {', '.join(t.name for t in a.tasks) or '-'}", highlight=False)
        if not a.serving:
            out.print("  served by: no live session", highlight=False)
            continue
        out.print("  served by:", highlight=False)
        for s in a.serving:
            # In a rolling deploy an older session lacks the newer tasks: it never claims them.
            lacks = f"; lacks {', '.join(s.missing_tasks)}" if s.missing_tasks else "; all tasks"
            out.print(f"    {s.id} ({s.code_version or 'code unknown'}{lacks})", highlight=False)


@app.command("export")
def apps_export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The app's name.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write the app's operations and their log entries as JSON Lines (audited)."""
    apps = state(ctx).front.apps
    if output is None:
        count = apps.export(name, sys.stdout)
    else:
        with output.open("w", encoding="utf-8") as f:
            count = apps.export(name, f)
    print(f"exported {count} operation(s) of app {name}", file=sys.stderr)


@app.command("uninstall")
def apps_uninstall(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The app's name.")],
    company: Annotated[
        list[str] | None, typer.Option("--company", "-c", help="Company (repeatable).")
    ] = None,
    all_companies: Annotated[bool, typer.Option("--all", help="Every company.")] = False,
    hold: Annotated[
        bool, typer.Option("--hold", help="Hold its ready operations (the default).")
    ] = False,
    cancel: Annotated[
        bool, typer.Option("--cancel", help="Cancel its ready and held operations.")
    ] = False,
    purge_after: Annotated[
        int | None,
        typer.Option(
            "--purge-after",
            help="Delete its history after this many days: ended operations created before "
            "the last `apps export` (needs one; --all).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Clean up after an app: stop its schedules, hold (or cancel) its ready operations,
    cancel its running ones, remove its unused categories; keep (or purge) its history."""
    if bool(company) == all_companies:
        raise ValidationError("company", "give --company C (repeatable) or --all")
    if hold and cancel:
        raise ValidationError("cancel", "--hold and --cancel exclude each other")
    cli = state(ctx)
    report = cli.front.apps.uninstall(
        name,
        companies=None if all_companies else list(company or ()),
        cancel=cancel,
        purge_after=None if purge_after is None else timedelta(days=purge_after),
    )
    out = cli.out
    if as_json:
        print_json(out, report.to_json())
        return
    out.print(
        f"app {name}: {len(report.held)} held, {len(report.cancelled)} cancelled, "
        f"{len(report.cancel_requested)} running asked to cancel, {report.kept} kept as history",
        highlight=False,
    )
    removed = ", ".join(report.categories_removed) or "none"
    out.print(f"categories removed: {removed}", highlight=False)
    if report.purge_at is not None:
        out.print(
            f"history purged from {report.purge_at} ({report.purged} operation(s) so far)",
            highlight=False,
        )
