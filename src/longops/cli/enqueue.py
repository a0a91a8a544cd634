"""``longops enqueue`` and ``longops tasks``: create an operation of a registered task, and
list the tasks the application registers.

Example::

    longops --app billing.tasks:app enqueue post_invoices --args '["2026-01"]' --company CRONUS
    longops --app billing.tasks:app tasks --json
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any

import typer

from longops.cli.context import NO_TASKS, CompanyOpt, JsonOpt, state
from longops.cli.render import print_json
from longops.domain.errors import ValidationError

app = typer.Typer()


@app.command()
def enqueue(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Registered task name.")],
    args: Annotated[str, typer.Option("--args", help="JSON array of positional arguments.")] = "[]",
    kwargs: Annotated[
        str, typer.Option("--kwargs", help="JSON object of keyword arguments.")
    ] = "{}",
    company: CompanyOpt = None,
    description: Annotated[str | None, typer.Option()] = None,
    queue: Annotated[str | None, typer.Option()] = None,
    category: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[str | None, typer.Option(help="high, normal or low.")] = None,
    delay: Annotated[float | None, typer.Option(help="Seconds before it may start.")] = None,
    max_attempts: Annotated[int | None, typer.Option()] = None,
    rerun_delay: Annotated[int | None, typer.Option(help="Seconds (0-3600).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds.")] = None,
    recurrence: Annotated[
        str | None,
        typer.Option(help="'every 15m', 'cron:0 9 * * 1-5', 'formula:<1M+CM>' or JSON."),
    ] = None,
    dedup_key: Annotated[str | None, typer.Option()] = None,
    user: Annotated[
        str | None, typer.Option(help="Who it runs on behalf of (default: the actor; SUPER only).")
    ] = None,
    on_hold: Annotated[bool, typer.Option("--on-hold", help="Create it On Hold.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an operation. Prints its id as the last line (or the operation with --json)."""
    parsed_args = _json_arg("args", args, list)
    parsed_kwargs = _json_arg("kwargs", kwargs, dict)
    from longops.core.enqueue import EnqueueRequest

    cli = state(ctx)
    cli.needs_tasks()
    op = cli.front.service.enqueue(
        EnqueueRequest(
            task=task,
            args=parsed_args,
            kwargs=parsed_kwargs,
            company=cli.company(company),
            description=description,
            queue=queue,
            category=category,
            priority=priority,
            delay=delay,
            max_attempts=max_attempts,
            rerun_delay=rerun_delay,
            timeout=timeout,
            recurrence=recurrence,
            dedup_key=dedup_key,
            user=user,
            on_hold=on_hold,
        )
    )
    if as_json:
        print_json(cli.out, op.to_json())
    else:
        cli.out.print(f"{op.status.caption}: {op.task} (entry {op.entry_no})", style="dim")
        cli.out.file.write(f"{op.id}\n")


def _json_arg(name: str, text: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(name, f"must be valid JSON: {exc.msg}") from exc
    if not isinstance(value, kind):
        raise ValidationError(name, f"must be a JSON {'array' if kind is list else 'object'}")
    return value


@app.command("tasks")
def tasks_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the tasks the application (--app) registers."""
    cli = state(ctx)
    tasks = list(cli.app.registry)
    if as_json:
        print_json(
            cli.out,
            [
                {
                    "name": t.name,
                    "signature": _signature(t),
                    "queue": t.queue,
                    "category": t.category,
                    "max_attempts": t.max_attempts,
                    "isolation": t.isolation,
                    "timeout_seconds": t.timeout.total_seconds(),
                    "cancel_grace_seconds": t.cancel_grace.total_seconds(),
                    "description": t.description,
                }
                for t in tasks
            ],
        )
        return
    if not tasks:
        cli.err.print(NO_TASKS)
    for t in tasks:
        extra = f" [category {t.category}]" if t.category else ""
        if t.isolation == "process":
            extra += " [process]"
        cli.out.print(
            f"{t.name}{_signature(t)}  queue {t.queue}{extra}  {t.description or ''}",
            markup=False,
        )


def _signature(task: Any) -> str:
    """The task's parameters as written: string annotations (``from __future__ import
    annotations``) are shown as the source has them, not quoted."""
    parts: list[str] = []
    star_done = False
    for p in task.signature.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        if p.kind is p.VAR_POSITIONAL:
            star_done = True
        text = prefix + p.name
        if p.annotation is not p.empty:
            ann = p.annotation
            text += f": {ann if isinstance(ann, str) else inspect.formatannotation(ann)}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    return f"({', '.join(parts)})"
