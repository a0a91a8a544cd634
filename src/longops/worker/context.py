"""The run context handed to task code that asks for it (a first parameter named ``ctx``).

Example::

    @app.task()
    def sync_catalogue(ctx: RunContext, source: str) -> int:
        ctx.logger.info("syncing %s for %s", source, ctx.company)
        for page in pages(source):
            ctx.check_cancelled()
            ...
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import MutableMapping
from typing import Any

from longops.domain.errors import OperationCancelled


class _OperationAdapter(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


class RunContext:
    """What a running task may know and ask: who, where, which attempt, and whether to stop."""

    def __init__(
        self,
        *,
        operation_id: uuid.UUID,
        company: str,
        user: str | None,
        attempt: int,
        task: str,
        cancel_event: threading.Event | None = None,
    ) -> None:
        self.operation_id = operation_id
        self.company = company
        self.user = user
        self.attempt = attempt
        self.task = task
        self._cancel = cancel_event or threading.Event()
        self.logger: logging.LoggerAdapter[logging.Logger] = _OperationAdapter(
            logging.getLogger(f"longops.task.{task}"),
            {"operation_id": str(operation_id), "attempt": attempt, "action": "task_log"},
        )

    @property
    def cancelled(self) -> bool:
        """True once the operation has been asked to stop."""
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise :class:`OperationCancelled` if the operation has been asked to stop."""
        if self._cancel.is_set():
            raise OperationCancelled("cancel requested")
