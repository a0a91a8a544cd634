"""The notification watch: conditions that need a clock rather than a change.

A rule may watch an operation running longer than N minutes (or than its task usually
takes: the p95 of its recent successful runs), waiting in Ready past its start for longer
than N minutes, or reaching a progress milestone. Each round this service looks at the
companies' operations in process and ready (the oldest ``scan_limit`` of each, per
company), and writes each condition newly met to the outbox, once per rule, operation and
attempt (a unique key, so two watchers or a repeat look add nothing). The delivery service
sends it like any other notification, to that rule's recipients only.

Example::

    NotificationWatch(store, clock).run_once()
"""

from __future__ import annotations

from datetime import timedelta

from longops.domain.clock import Clock
from longops.domain.notify import Event, Rule, Watched, p95, watch
from longops.domain.status import Status
from longops.store.base import OperationQuery, Store

INTERVAL = timedelta(seconds=5)


class NotificationWatch:
    name = "notification_watch"

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        interval: timedelta = INTERVAL,
        scan_limit: int = 1000,
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.scan_limit = scan_limit

    def run_once(self) -> int:
        rules = self.store.list_watch_rules()
        if not rules:
            return 0
        now = self.clock.now()
        found: list[Watched] = []
        usual: dict[str, float | None] = {}
        by_company: dict[str, list[Rule]] = {}
        for rule in rules:
            by_company.setdefault(rule.company, []).append(rule)
        for company, company_rules in by_company.items():
            wanted = {r.on for r in company_rules}
            statuses = []
            if wanted & {Event.RUNNING_LONG, Event.MILESTONE}:
                statuses.append(Status.IN_PROCESS)
            if Event.WAITING_LONG in wanted:
                statuses.append(Status.READY)
            for status in statuses:
                query = OperationQuery(company=company, statuses=(status,), limit=self.scan_limit)
                for op in self.store.list_operations(query):
                    for rule in company_rules:
                        if rule.on is Event.RUNNING_LONG and rule.threshold is None:
                            if op.task not in usual:
                                usual[op.task] = p95(self.store.recent_durations(op.task))
                            hit = watch(rule, op, now, usual[op.task])
                        else:
                            hit = watch(rule, op, now)
                        if hit is not None:
                            found.append(hit)
        return self.store.insert_watched(found, now) if found else 0
