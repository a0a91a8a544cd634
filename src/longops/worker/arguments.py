"""What a task's arguments look like, for people about to type them: a JSON schema from the
task's signature and type hints, and a JSON example built from it.

The REST API publishes the schema as ``argumentsSchema`` (GET tasks); the pages' New
operation form shows the parameters and prefills the example.

Example::

    arguments_schema(registry.get("demo.render_report"))
    # {"type": "object", "properties": {"pages": {"type": "integer", "default": 8}, ...},
    #  "required": [], "additionalProperties": False, "x-positional": ["pages", ...]}
    arguments_example(registry.get("demo.post_invoices"))   # '{"batch": "", "invoices": 10}'
"""

from __future__ import annotations

import contextlib
import inspect
import json
import typing
from typing import Any

from pydantic import TypeAdapter

from longops.worker.registry import TaskDef


def arguments_schema(task: TaskDef) -> dict[str, Any]:
    """A JSON schema of the task's arguments, from its signature and type hints."""
    try:
        hints = typing.get_type_hints(task.fn)
    except Exception:  # an annotation that does not resolve: describe the names only
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    positional: list[str] = []
    extra = False
    for param in task.signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            extra = True
            continue
        if param.kind is param.VAR_POSITIONAL:
            continue
        schema: dict[str, Any] = {}
        if param.name in hints:
            try:
                schema = TypeAdapter(hints[param.name]).json_schema()
            except Exception:
                schema = {}
        if param.default is not inspect.Parameter.empty:
            # A default JSON cannot carry is simply not shown.
            with contextlib.suppress(Exception):
                schema["default"] = TypeAdapter(type(param.default)).dump_python(
                    param.default, mode="json"
                )
        else:
            required.append(param.name)
        properties[param.name] = schema
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            positional.append(param.name)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": extra,
        "x-positional": positional,
    }


_BLANK = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}


def arguments_example(task: TaskDef) -> str:
    """The task's named arguments as a JSON object to edit: each default, or a blank of the
    parameter's type for one without ('' for a string, 0 for a number); '' when the task
    takes none. Positional-only parameters cannot be named, so those give a JSON list."""
    schema = arguments_schema(task)
    values: dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        values[name] = prop["default"] if "default" in prop else _BLANK.get(prop.get("type", ""))
    if not values:
        return ""
    kinds = [p.kind for p in task.signature.parameters.values()]
    if inspect.Parameter.POSITIONAL_ONLY in kinds:
        return json.dumps(list(values.values()))
    return json.dumps(values)


def parameter_hints(task: TaskDef) -> list[tuple[str, str]]:
    """Per parameter: its name and a few words ('integer, default 8', 'string, required')."""
    schema = arguments_schema(task)
    out = []
    for name, prop in schema["properties"].items():
        kind = prop.get("type") or " or ".join(_types(prop))
        words = [kind] if kind else []
        if name in schema["required"]:
            words.append("required")
        elif "default" in prop:
            words.append(f"default {json.dumps(prop['default'])}")
        out.append((name, ", ".join(words) or "any JSON value"))
    return out


def _types(prop: dict[str, Any]) -> list[str]:
    return [str(t["type"]) for t in prop.get("anyOf", []) if "type" in t]
