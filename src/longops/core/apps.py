"""Apps as the database knows them: list, export and uninstall (SUPER only).

An app's tasks are read from the registry workers and servers write at start
(``longops_app_tasks``), so an app whose package is already gone can still be cleaned up.
Uninstalling stops its schedules, holds (default) or cancels its ready operations, asks
its running ones to stop through the normal cancel ladder, removes its categories no
operation uses any more, and keeps the history (or purges it, after an export, once
``purge_after`` has passed: workers purge it). Every step is in the audit log.

Example::

    apps = AppService(store, clock, actor=Actor.local(), operations=core.operations)
    apps.export("billing", open("billing.jsonl", "w"))
    report = apps.uninstall("billing", companies=None, cancel=False)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TextIO

from longops.core.access import ActorBound, acting, require
from longops.core.operations import OperationService
from longops.domain.apps import AppRecord
from longops.domain.clock import Clock
from longops.domain.errors import InvalidTransition, NotFound, ValidationError
from longops.domain.operation import Operation
from longops.domain.security import Action, Actor
from longops.domain.status import Status
from longops.store.base import Store


@dataclass(slots=True)
class UninstallReport:
    """What ``uninstall`` did, by operation id (as text)."""

    app: str
    held: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    cancel_requested: list[str] = field(default_factory=list)
    """Running operations asked to stop (the cancel ladder ends them)."""
    categories_removed: list[str] = field(default_factory=list)
    """``company/code`` of each category removed."""
    kept: int = 0
    """Finished, failed and cancelled operations kept as history."""
    purged: int = 0
    """Operations deleted with their history (``purge_after`` of 0 days)."""
    purge_at: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "app": self.app,
            "held": self.held,
            "cancelled": self.cancelled,
            "cancel_requested": self.cancel_requested,
            "categories_removed": self.categories_removed,
            "kept": self.kept,
            "purged": self.purged,
            "purge_at": self.purge_at,
        }


class AppService(ActorBound):
    """Apps, for the bound actor (SUPER: they span companies)."""

    def __init__(
        self, store: Store, clock: Clock, *, actor: Actor, operations: OperationService
    ) -> None:
        self.store = store
        self.clock = clock
        self.actor = actor
        self.operations = operations

    @acting
    def list_apps(self) -> list[AppRecord]:
        """Every app a worker or server recorded, with its tasks and the live sessions
        that have any of them."""
        require(self.actor, Action.LIST_SESSIONS, target="")
        return self.store.list_apps()

    def _app(self, name: str) -> AppRecord:
        for app in self.store.list_apps():
            if app.name == name:
                return app
        raise NotFound("app", name)

    def _operations(self, app: AppRecord, companies: list[str] | None) -> Iterator[Operation]:
        tasks = [t.name for t in app.tasks]
        after = 0
        while True:
            page = self.store.operations_of_tasks(tasks, companies, after_entry=after)
            yield from page
            if len(page) < 1000:
                return
            after = page[-1].entry_no

    @acting
    def export(self, name: str, out: TextIO) -> int:
        """Write the app's operations, each followed by its log entries, as JSON Lines
        (``{"kind": "operation", ...}``, ``{"kind": "event", ...}``: its timeline); returns
        the number of operations. Audited; an uninstall's purge deletes only operations
        created before the export began.

        Example::

            with open("billing.jsonl", "w") as f:
                apps.export("billing", f)
        """
        require(self.actor, Action.MAINTAIN_SCHEMA, target="")
        app = self._app(name)
        # The export's high-water mark, taken before it reads: a purge deletes only
        # operations created at or before it (those enqueued later were never written).
        began = self.clock.now()
        count = 0
        for op in self._operations(app, None):
            out.write(json.dumps({"kind": "operation", "app": name, **op.to_json()}) + "\n")
            for event in self.store.list_events(op.id, limit=100_000):
                out.write(json.dumps({"kind": "event", **event.to_json()}) + "\n")
            count += 1
        out.flush()
        self.store.mark_app_exported(name, began)
        self.store.record_audit(
            self._audit_entry(self.actor, "export_app", f"app {name}", None, {"operations": count})
        )
        return count

    @acting
    def uninstall(
        self,
        name: str,
        *,
        companies: list[str] | None,
        cancel: bool = False,
        purge_after: timedelta | None = None,
    ) -> UninstallReport:
        """Clean up after app ``name`` in ``companies`` (None: all): see the module
        docstring. ``cancel``: cancel its ready and held operations instead of holding
        them. ``purge_after``: that long from now, delete its finished, failed and
        cancelled operations created before its last export began (needs an export)."""
        who = self.actor
        require(who, Action.MAINTAIN_SCHEMA, target="")
        if companies is not None and not companies:
            raise ValidationError("company", "name at least one company, or all")
        if purge_after is not None:
            if purge_after < timedelta(0):
                raise ValidationError("purge_after", "must be 0 days or more")
            if companies is not None:
                raise ValidationError("purge_after", "purges every company's history: use --all")
            if self.store.app_exported_at(name) is None:
                raise ValidationError(
                    "purge_after", f"export app {name} first (`longops apps export {name}`)"
                )
        app = self._app(name)
        report = UninstallReport(name)
        categories: set[tuple[str, str]] = set()
        for op in self._operations(app, companies):
            if op.category is not None:
                categories.add((op.company, op.category))
            ref = str(op.id)
            try:
                if op.status is Status.IN_PROCESS:
                    self.operations.cancel(op.id, reason=f"app {name} uninstalled")
                    report.cancel_requested.append(ref)
                elif op.status is Status.READY and not cancel:
                    self.operations.hold(op.id)  # its schedule, if recurring, stops too
                    report.held.append(ref)
                elif op.status in (Status.READY, Status.ON_HOLD) and cancel:
                    self.operations.cancel(op.id, reason=f"app {name} uninstalled")
                    report.cancelled.append(ref)
                else:
                    report.kept += 1
            except InvalidTransition:
                # It moved on between the read and the action (claimed, finished): what it
                # became is handled as history or by its own run's end.
                report.kept += 1
        now = self.clock.now()
        purge_at = None if purge_after is None else now + purge_after
        report.purge_at = None if purge_at is None else purge_at.isoformat()
        audit = self._audit_entry(
            who,
            "uninstall_app",
            f"app {name}",
            companies[0] if companies is not None and len(companies) == 1 else None,
            {
                "companies": companies,
                "held": len(report.held),
                "cancelled": len(report.cancelled),
                "cancel_requested": len(report.cancel_requested),
                "purge_at": report.purge_at,
            },
        )
        self.store.mark_app_uninstalled(
            name, now if companies is None else None, purge_at, audit=audit
        )
        if purge_at is not None and purge_at <= now:
            # --purge-after 0: the history goes now (workers purge later dates).
            report.purged = self.store.purge_uninstalled(now)
        # A category stays while any operation names it (its history included): removed
        # here are those no operation uses any more.
        by_company: dict[str, list[str]] = {}
        for company, code in categories:
            by_company.setdefault(company, []).append(code)
        for company, codes in sorted(by_company.items()):
            for code in self.store.delete_unused_categories(company, codes):
                report.categories_removed.append(f"{company}/{code}")
        if report.categories_removed:
            self.store.record_audit(
                self._audit_entry(
                    who,
                    "remove_app_categories",
                    f"app {name}",
                    None,
                    {"categories": report.categories_removed},
                )
            )
        return report
