"""The registered tasks as the front ends show them: each task's definition, an example of
its arguments to edit, and a hint per parameter (the pages' New operation form, the API's
task list). Reading task definitions needs no permission: they are the server's code.

Example::

    catalog = TaskCatalog(registry)
    [(t.name, catalog.example(t.name)) for t in catalog.tasks()]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from longops.worker.arguments import arguments_example, parameter_hints
from longops.worker.registry import TaskDef, TaskRegistry


class TaskCatalog:
    """The tasks of one registry, sorted by name."""

    def __init__(self, registry: TaskRegistry) -> None:
        self.registry = registry

    def tasks(self) -> list[TaskDef]:
        return sorted(self.registry, key=lambda t: t.name)

    def names(self) -> list[str]:
        return [t.name for t in self.tasks()]

    def example(self, name: str) -> str:
        """The task's arguments as JSON to start editing from; NotFound for an unknown task."""
        return arguments_example(self.registry.get(name))

    def required_gaps(
        self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> dict[str, str]:
        """Each required parameter ``args``/``kwargs`` leave out ("missing") or give as
        None or blank text ("blank"), in the task's order (the New operation form prefills
        ``{"batch": ""}`` for one to type).

        Example::

            catalog.required_gaps("demo.post_invoices", [], {})   # {'batch': 'missing'}
        """
        schema = self.registry.get(name).arguments_schema()
        given = dict(zip(schema["x-positional"], args, strict=False)) | dict(kwargs)
        gaps = {}
        for p in schema["required"]:
            if p not in given:
                gaps[p] = "missing"
            elif given[p] is None or (isinstance(given[p], str) and not given[p].strip()):
                gaps[p] = "blank"
        return gaps

    def hints(self, name: str) -> list[tuple[str, str]]:
        """Each parameter's name and what it takes, in words."""
        return parameter_hints(self.registry.get(name))


__all__ = ["TaskCatalog", "TaskDef"]
