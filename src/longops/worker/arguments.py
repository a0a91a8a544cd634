"""A task's arguments: the JSON schema its signature publishes, and the check at enqueue
that what is sent fits it, so a bad argument is refused (naming it) instead of failing
when the operation runs. Every front end enqueues through core, which calls
:func:`check_types`; the REST API publishes :func:`arguments_schema`, and the pages' New
operation form shows :func:`parameter_hints` and prefills :func:`arguments_example`.

The check covers the annotations the schema describes: ``int``, ``float``, ``str``,
``bool``, ``None``, ``Literal``, lists and dicts of those, unions (``Optional``); any
other annotation, or none, accepts anything. A bool is not an integer; an integer is a
number. Omitted parameters take their defaults unchecked, and a parameter whose default
is ``None`` also accepts ``None``.

Example::

    def post(month: str, lines: int = 0) -> None: ...

    check_types(post, inspect.signature(post), ("2026-11",), {"lines": "lots"})
    # ValidationError: kwargs.lines: must be an integer (got 'lots')
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter

from longops.domain.errors import ValidationError

if typing.TYPE_CHECKING:
    from longops.worker.registry import TaskDef

_UNCHECKED = object()
"""A hint the check does not cover: anything fits."""


def _hints(fn: Callable[..., Any]) -> Mapping[str, Any]:
    try:
        return _cached_hints(fn)
    except TypeError:  # a callable that cannot be a dict key (enqueue is a hot path)
        return _read_hints(fn)


@functools.lru_cache(maxsize=1024)
def _cached_hints(fn: Callable[..., Any]) -> Mapping[str, Any]:
    return _read_hints(fn)


def _read_hints(fn: Callable[..., Any]) -> Mapping[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # an annotation that does not resolve: nothing is checked
        return {}


def _words(hint: Any) -> str | None:
    """What a value of ``hint`` is, in words (None: a hint the check does not cover)."""
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if hint is type(None) or hint is None:
        return "null"
    origin = typing.get_origin(hint)
    if hint is list or origin is list:
        return "a list"
    if hint is dict or origin is dict:
        return "an object"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(hint))
    if origin is typing.Union or origin is types.UnionType:
        parts = [_words(h) for h in typing.get_args(hint)]
        if any(p is None for p in parts):
            return None
        return " or ".join(p for p in parts if p is not None)
    return None


def _problem(value: Any, hint: Any, where: str) -> tuple[str, str, Any] | None:
    """(field, rule, value) of the first part of ``value`` that does not fit ``hint``."""
    words = _words(hint)
    if words is None:
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        others = [h for h in typing.get_args(hint) if h is not type(None)]
        if value is not None and len(others) == 1:  # Optional[X]: say what is wrong in X
            return _problem(value, others[0], where)
        for choice in typing.get_args(hint):
            if _problem(value, choice, where) is None:
                return None
        return where, f"must be {words}", value
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        fits = any(value == a and type(value) is type(a) for a in allowed)
        return None if fits else (where, f"must be {words}", value)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is str:
        ok = isinstance(value, str)
    elif hint is type(None) or hint is None:
        ok = value is None
    elif hint is list or origin is list:
        if not isinstance(value, list | tuple):
            return where, "must be a list", value
        [item] = typing.get_args(hint) or (Any,)
        for i, element in enumerate(value):
            found = _problem(element, item, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    else:  # a dict
        if not isinstance(value, dict):
            return where, "must be an object", value
        key, item = typing.get_args(hint) or (Any, Any)
        for k, element in value.items():
            found = _problem(k, key, f"{where} key") or _problem(element, item, f"{where}.{k}")
            if found is not None:
                return found
        return None
    return None if ok else (where, f"must be {words}", value)


_PLAIN_FITS: dict[Any, Callable[[Any], bool]] = {
    int: lambda v: type(v) is int,
    float: lambda v: type(v) is float or type(v) is int,
    str: lambda v: type(v) is str,
    bool: lambda v: type(v) is bool,
}
"""A plain hint's test for values that surely fit it (exact types: what it does not pass
goes to ``_problem``, which decides, and says why)."""


def _shown(value: Any) -> Any:
    # Only plain, short values go into the message: arguments may be customer content.
    if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 40):
        return value
    return None


def check_types(
    fn: Callable[..., Any],
    signature: inspect.Signature,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> None:
    """Refuse an argument whose type does not fit the annotation of its parameter, naming
    it as sent: ``args[1]`` (positions counted without ``ctx``) or ``kwargs.n``."""
    hints = _hints(fn)
    if not hints:
        return
    position = 0
    for param in signature.parameters.values():
        hint = hints.get(param.name, _UNCHECKED)
        given: list[tuple[str, Any]] = []
        if param.kind is param.VAR_POSITIONAL:
            given = [(f"args[{i}]", v) for i, v in enumerate(args[position:], position)]
            position = len(args)
        elif param.kind is param.VAR_KEYWORD:
            named = {p.name for p in signature.parameters.values()}
            given = [(f"kwargs.{k}", v) for k, v in kwargs.items() if k not in named]
        elif param.kind is not param.KEYWORD_ONLY and position < len(args):
            given = [(f"args[{position}]", args[position])]
            position += 1
        elif param.name in kwargs:
            given = [(f"kwargs.{param.name}", kwargs[param.name])]
        if hint is _UNCHECKED:
            continue
        for where, value in given:
            if value is None and param.default is None:
                continue
            plain = _PLAIN_FITS.get(hint)
            if plain is not None and plain(value):
                continue  # the common case, decided without building _problem's words
            found = _problem(value, hint, where)
            if found is not None:
                field, rule, bad = found
                raise ValidationError(field, rule, _shown(bad))


def arguments_schema(fn: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    """A JSON schema of a task's arguments, from its signature and type hints (what the
    REST API publishes for each task).

    Example::

        arguments_schema(post, inspect.signature(post))["properties"]["lines"]
        # {'type': 'integer', 'default': 0}
    """
    hints = _hints(fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    positional: list[str] = []
    extra = False
    for param in signature.parameters.values():
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


# -- for people about to type arguments (the pages' New operation form) ----------------------
_BLANK = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}


def arguments_example(task: TaskDef) -> str:
    """The task's named arguments as a JSON object to edit: each default, or a blank of the
    parameter's type for one without ('' for a string, 0 for a number); '' when the task
    takes none. Positional-only parameters cannot be named, so those give a JSON list.

    Example::

        arguments_example(registry.get("demo.post_invoices"))   # '{"batch": "", "invoices": 10}'
    """
    schema = task.arguments_schema()
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
    schema = task.arguments_schema()
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
