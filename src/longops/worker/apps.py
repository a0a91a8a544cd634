"""A worker's apps and schema: what it records at start, and the guard it keeps.

At start the worker checks the database's schema against the one its code was written for
(``domain.apps.schema_verdict``): older refuses to start (:class:`SchemaTooOld`, exit code
``EXIT_SCHEMA_OLDER``); newer with a migration not declared compatible starts without
claiming. It then records its apps and their tasks (``longops apps list``; an uninstalled
app's tasks are found there). Every ``schema_check_interval`` seconds the guard checks again
(stopping or resuming the claim and saying why), fails the operations that waited past
their task's ``worker_wait`` with no worker that has the task, and purges the history of
apps uninstalled with a purge date that has passed.

Example::

    guard = AppGuard(store, clock, options, dispatcher)
    guard.check()            # SchemaTooOld on an older schema
"""

from __future__ import annotations

import logging
import threading
import uuid
from importlib import metadata
from typing import TYPE_CHECKING

from longops.domain.apps import (
    EXIT_SCHEMA_OLDER,
    AppInfo,
    SchemaCheck,
    SchemaVerdict,
    schema_verdict,
)
from longops.domain.clock import Clock
from longops.domain.errors import ConfigurationError
from longops.store.base import Store
from longops.store.migrate import load_migrations

if TYPE_CHECKING:
    # Only named here: the schema checks (and so every command line, through core) do
    # without the dispatcher's room (its executor, isolation, asyncio).
    from longops.worker.dispatcher import Dispatcher

log = logging.getLogger("longops.worker")


class SchemaTooOld(ConfigurationError):
    """The database lacks migrations this code needs; the message names both versions and
    the command to run."""

    exit_code = EXIT_SCHEMA_OLDER


def code_schema_version(dialect: str) -> int:
    """The schema version this code was written for: its newest migration."""
    return max(m.version for m in load_migrations(dialect))


def check_schema(store: Store) -> SchemaCheck:
    """The schema guard's verdict for ``store`` (see ``domain.apps.schema_verdict``).

    Example::

        check_schema(app.store).may_claim     # True on a current schema
    """
    return schema_verdict(code_schema_version(store.dialect), store.applied_migrations())


def require_schema(store: Store) -> SchemaCheck:
    """Raise :class:`SchemaTooOld` on an older schema; otherwise the verdict."""
    check = check_schema(store)
    if check.verdict is SchemaVerdict.OLDER:
        raise SchemaTooOld(check.message)
    return check


def code_version(apps: tuple[AppInfo, ...]) -> str:
    """``longops 0.1.0; billing 2.0, crm 1.1``: what a session records as its code."""
    labels = ", ".join(a.label for a in apps)
    try:
        mine = metadata.version("longops")
    except metadata.PackageNotFoundError:  # run from a source tree
        mine = "unknown"
    return f"longops {mine}" + (f"; {labels}" if labels else "")


class AppGuard:
    """The worker's periodic schema guard and app duties (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        dispatcher: Dispatcher,
        *,
        interval: float,
        stop: threading.Event,
    ) -> None:
        self.store = store
        self.clock = clock
        self.dispatcher = dispatcher
        self.interval = interval
        self._stop = stop
        self.last: SchemaCheck | None = None
        self.session_id: uuid.UUID | None = None
        """Set once the session is registered: where it records why it stopped claiming."""
        self._recorded: str | None = None

    def attach(self, session_id: uuid.UUID) -> None:
        """The session (a fresh row) this guard records on; records at once if it has
        stopped claiming already (an incompatible schema at start)."""
        self.session_id = session_id
        self._recorded = None
        self.record()

    def record(self) -> None:
        """Write on the session whether (and why) it stopped claiming, when that changed:
        ``longops sessions``, the Sessions page and the wait reasons read it."""
        held = self.dispatcher.held_by
        if self.session_id is None or held == self._recorded:
            return
        try:
            self.store.set_session_claim_stopped(self.session_id, held)
        except Exception:  # a schema that dropped the column: the log still says why
            log.warning("schema guard: could not record on the session", exc_info=True)
            return
        self._recorded = held

    def check(self) -> SchemaCheck:
        """Check the schema now and stop or resume claiming by the verdict."""
        check = require_schema(self.store)
        self._apply(check)
        return check

    def _apply(self, check: SchemaCheck) -> None:
        before = self.dispatcher.held_by
        if check.may_claim:
            self.dispatcher.held_by = None
            if before is not None:
                log.warning(
                    "schema guard: claiming again: %s",
                    check.message,
                    extra={"action": "schema_guard_resumed"},
                )
            elif check.verdict is SchemaVerdict.NEWER_COMPATIBLE and self.last != check:
                log.info("schema guard: %s", check.message, extra={"action": "schema_newer"})
        else:
            self.dispatcher.held_by = check.message
            if before != check.message:
                log.critical(
                    "schema guard: %s", check.message, extra={"action": "schema_guard_stopped"}
                )
        self.last = check

    def step(self) -> None:
        if self._stop.wait(self.interval):
            return
        check = check_schema(self.store)
        if check.verdict is SchemaVerdict.OLDER:
            # Migrations rolled back under a running worker: claim nothing, say why.
            self.dispatcher.held_by = check.message
            log.critical(
                "schema guard: %s", check.message, extra={"action": "schema_guard_stopped"}
            )
        else:
            self._apply(check)
        self.record()
        if self.dispatcher.held_by is not None:
            return  # a worker that may not claim writes nothing else either
        now = self.clock.now()
        failed = self.store.fail_unserved(now)
        if failed:
            log.warning(
                "%d operation(s) failed: no live worker session had their task within its "
                "worker_wait",
                len(failed),
                extra={"action": "no_worker_for_task", "count": len(failed)},
            )
        self.store.purge_uninstalled(now)
