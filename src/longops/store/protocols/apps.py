"""What a store keeps about apps (issue 15): the registry of apps and their tasks, the
operations of tasks no live worker has, and an app's uninstall, export and purge."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from longops.domain.apps import AppInfo, AppRecord
from longops.domain.operation import Operation
from longops.domain.users import AuditEntry


class AppStore(Protocol):
    """The app registry, ``no_worker_for_task``, and uninstalling an app."""

    def record_apps(self, apps: Sequence[AppInfo], at: datetime) -> None:
        """Record the apps a worker or server has and their tasks (added, never dropped)."""
        ...

    def list_apps(self) -> list[AppRecord]: ...
    def mark_app_uninstalled(
        self,
        name: str,
        at: datetime | None,
        purge_at: datetime | None,
        *,
        audit: AuditEntry | None = None,
    ) -> None: ...
    def mark_app_exported(self, name: str, at: datetime) -> None: ...
    def app_exported_at(self, name: str) -> datetime | None: ...
    def operations_of_tasks(
        self, tasks: Sequence[str], companies: Sequence[str] | None, *, after_entry: int = 0
    ) -> list[Operation]: ...
    def delete_unused_categories(self, company: str, codes: Sequence[str]) -> list[str]: ...
    def fail_unserved(self, now: datetime) -> list[uuid.UUID]:
        """Fail the ready operations whose task no live session has past its worker_wait."""
        ...

    def purge_uninstalled(self, now: datetime) -> int: ...
