"""The app registry (issue 15) as both dialects store it: apps and their tasks, the
operations of tasks no live worker has, and an app's uninstall, export and purge."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from longops.domain.apps import AppInfo, AppRecord, AppTask, ServingSession
from longops.domain.operation import Operation
from longops.domain.users import AuditEntry
from longops.store._sql.core import SqlCore


class AppsSql(SqlCore):
    def record_apps(self, apps: Sequence[AppInfo], at: datetime) -> None:
        """Record the apps a worker or server has and their tasks. Tasks are added, never
        dropped: in a rolling deploy an older worker starting again must not forget the
        tasks the newer version added (an uninstall finds their operations by them). An
        app seen again is no longer uninstalled."""
        with self._tx() as cur:
            for app in apps:
                name = {"app": app.name}
                cur.execute(
                    self.q["upsert_app"],
                    {**name, "version": app.version, "at": self.enc_ts(at)},
                )
                for task in app.tasks:
                    wait = task.worker_wait
                    cur.execute(
                        self.q["insert_app_task"],
                        {
                            **name,
                            "task": task.name,
                            "wait": None if wait is None else wait.total_seconds(),
                        },
                    )

    def list_apps(self) -> list[AppRecord]:
        """Every recorded app with its tasks and the live sessions having any of them."""
        apps = self._all("list_apps")
        tasks = self._all("list_app_tasks")
        live_rows = self._all("list_sessions", {"active_only": self.enc_bool(True)})
        live = [self.session(r) for r in live_rows]
        out = []
        for a in apps:
            mine = tuple(
                AppTask(
                    t["task"],
                    None
                    if t["worker_wait_seconds"] is None
                    else timedelta(seconds=float(t["worker_wait_seconds"])),
                )
                for t in tasks
                if t["app"] == a["name"]
            )
            names = {t.name for t in mine}
            serving = tuple(
                ServingSession(str(s.id), s.code_version, tuple(sorted(names - set(s.tasks))))
                for s in live
                if s.tasks is not None and names & set(s.tasks)
            )
            out.append(
                AppRecord(
                    a["name"],
                    a["version"],
                    mine,
                    self.dec_ts(a["seen_at"]),
                    self.dec_ts_opt(a["uninstalled_at"]),
                    tuple(s.id for s in serving),
                    serving,
                )
            )
        return out

    def mark_app_uninstalled(
        self,
        name: str,
        at: datetime | None,
        purge_at: datetime | None,
        *,
        audit: AuditEntry | None = None,
    ) -> None:
        with self._tx() as cur:
            cur.execute(
                self.q["mark_app_uninstalled"],
                {"app": name, "at": self.enc_ts(at), "purge_at": self.enc_ts(purge_at)},
            )
            self._audit(cur, audit)

    def mark_app_exported(self, name: str, at: datetime) -> None:
        with self._tx() as cur:
            cur.execute(self.q["mark_app_exported"], {"app": name, "at": self.enc_ts(at)})

    def app_exported_at(self, name: str) -> datetime | None:
        r = self._one("get_app", {"app": name})
        return None if r is None else self.dec_ts_opt(r["exported_at"])

    def operations_of_tasks(
        self, tasks: Sequence[str], companies: Sequence[str] | None, *, after_entry: int = 0
    ) -> list[Operation]:
        """Up to 1,000 operations of ``tasks`` (in ``companies``; None: all) after entry
        number ``after_entry``, in entry order (page on with the last one's)."""
        rows = self._all(
            "operations_of_tasks",
            {
                "tasks": self.enc_list(list(tasks)),
                "companies": self.enc_companies(companies),
                "after": after_entry,
            },
        )
        return [self.operation(r) for r in rows]

    def delete_unused_categories(self, company: str, codes: Sequence[str]) -> list[str]:
        """Delete those of ``company``'s categories no active operation uses; their codes."""
        with self._tx() as cur:
            cur.execute(
                self.q["delete_unused_categories"],
                {"company": company, "codes": self.enc_list(list(codes))},
            )
            return sorted(r["code"] for r in cur.fetchall())

    def fail_unserved(self, now: datetime) -> list[uuid.UUID]:
        """Fail the ready operations whose task no live session has and that waited past
        their task's ``worker_wait`` (status ``error``, reason ``no_worker_for_task``)."""
        with self._tx() as cur:
            cur.execute(self.q["fail_unserved"], {"now": self.enc_ts(now)})
            return [self.dec_uuid(r["id"]) for r in cur.fetchall()]

    def purge_uninstalled(self, now: datetime) -> int:
        """Delete the finished, failed and cancelled operations (with their history) of
        apps uninstalled with a purge date that has passed; how many."""
        params = {"now": self.enc_ts(now)}
        with self._tx() as cur:
            # SQLite has no data-modifying CTEs: the history goes first, statement by statement.
            for name in ("purge_uninstalled_events", "purge_uninstalled_attempts"):
                if name in self.q:
                    cur.execute(self.q[name], params)
            cur.execute(self.q["purge_uninstalled"], params)
            return len(cur.fetchall())
