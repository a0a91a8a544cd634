"""The pages' read models: a company's role centre (cues, runs per hour, the longest
running), facet counts per status, the actor's own running operations, category activity,
and the log entries (every attempt of a company). Counts stop at ``COUNT_CAP`` + 1.

Example::

    views = ReadModelService(store, clock, actor=alice)
    views.overview("CRONUS").failed
    views.list_attempts("CRONUS", outcome="error", limit=50)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from longops.core.access import ActorBound, acting, require_in
from longops.core.reads import OperationRef, find_operation, flag_inactive, narrow
from longops.domain.clock import Clock
from longops.domain.errors import ValidationError
from longops.domain.filters import OperationFilter
from longops.domain.operation import Operation, Outcome, _check_name
from longops.domain.read_models import (
    COUNT_CAP,
    CategoryActivity,
    HourBucket,
    LogEntry,
    Overview,
    StatusCounts,
)
from longops.domain.security import Action, Actor, Verdict, companies_for, decide
from longops.domain.status import Status
from longops.store.base import AttemptQuery, Store

CHART_BUCKETS = (60, 5)
"""Minutes per bar of the overview's chart: 24 hours by the hour, or 2 hours by 5 minutes."""


class ReadModelService(ActorBound):
    """What the pages show at a glance, for the bound actor."""

    def __init__(self, store: Store, clock: Clock, *, actor: Actor) -> None:
        self.store = store
        self.clock = clock
        self.actor = actor

    @acting
    def list_attempts(
        self,
        company: str,
        *,
        task: str | None = None,
        outcome: Outcome | str | Sequence[Outcome | str] | None = None,
        operation_id: OperationRef | None = None,
        started_from: datetime | None = None,
        started_to: datetime | None = None,
        before_entry_no: int | None = None,
        limit: int = 100,
    ) -> list[LogEntry]:
        """A company's log entries (every attempt of every operation), newest first, with
        filters; page on with ``before_entry_no`` = the last entry's ``attempt.id``.

        Example::

            page = views.list_attempts("CRONUS", outcome="error", limit=50)
            more = views.list_attempts("CRONUS", outcome="error",
                                         before_entry_no=page[-1].attempt.id)
        """
        who = self.actor
        require_in(who, Action.LIST_LOG_ENTRIES, company)
        if isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise ValidationError("limit", "must be between 1 and 1000", limit)
        for name, value in (("started_from", started_from), ("started_to", started_to)):
            if value is not None and value.tzinfo is None:
                raise ValidationError(name, "must be timezone-aware")
        oid = None
        if operation_id is not None:
            oid = find_operation(self.store, who, operation_id, company, Action.LIST_ATTEMPTS).id
        return self.store.list_company_attempts(
            AttemptQuery(
                company=company,
                companies=companies_for(who, Action.LIST_LOG_ENTRIES),
                task=task,
                outcomes=_outcomes(outcome),
                operation_id=oid,
                started_from=started_from,
                started_to=started_to,
                before_entry_no=before_entry_no,
                limit=limit,
            )
        )

    @acting
    def overview(self, company: str, *, bucket_minutes: int | None = None) -> Overview:
        """The company's role centre: cues (ready, in process, failed, my failures,
        stalled; capped at COUNT_CAP), runs finished and failed per hour over the last 24
        hours, and the five longest-running operations.

        Example::

            view = views.overview("CRONUS")
            view.failed, [b.failed for b in view.per_hour]
        """
        who = self.actor
        require_in(who, Action.LIST_OPERATIONS, company)
        visible = companies_for(who, Action.LIST_OPERATIONS)
        base = OperationFilter(company=company, companies=visible)
        cues = [
            replace(base, statuses=(Status.READY,)),
            replace(base, statuses=(Status.IN_PROCESS,)),
            replace(base, statuses=(Status.ERROR,)),
            replace(base, statuses=(Status.IN_PROCESS,), stalled=True),
        ]
        if who.user is not None:
            cues.append(replace(base, statuses=(Status.ERROR,), user=who.user))
        counts = self.store.count_capped(cues, COUNT_CAP + 1)
        ready, in_process, failed, stalled = counts[:4]
        mine = counts[4] if who.user is not None else 0
        if bucket_minutes is not None and bucket_minutes not in CHART_BUCKETS:
            raise ValidationError("bucket_minutes", "must be 60 or 5", bucket_minutes)
        per_hour = self._per_bucket(company, bucket_minutes or 60)
        busy = {i for i, b in enumerate(per_hour) if b.finished or b.failed}
        if bucket_minutes is None and busy and busy <= {22, 23}:
            # Every run of the last 24 hours ended in the last two hours: bars by the hour
            # would all stand in the last slots, so the chart shows the last 2 hours by 5
            # minutes instead (their window always holds those two hours).
            per_hour = self._per_bucket(company, 5)
        longest = self.store.list_running(company, companies=visible, limit=5)
        return Overview(
            company=company,
            ready=ready,
            in_process=in_process,
            failed=failed,
            my_failures=mine,
            stalled=stalled,
            per_hour=per_hour,
            longest_running=flag_inactive(self.store, longest),
        )

    def _per_bucket(self, company: str, bucket_minutes: int) -> list[HourBucket]:
        """24 buckets: the last 24 hours by the hour, or the last 2 hours by 5 minutes."""
        now = self.clock.now()
        step = timedelta(minutes=bucket_minutes)
        start = now.replace(second=0, microsecond=0)
        start -= timedelta(minutes=start.minute % bucket_minutes)
        since = start - step * 23
        found = {
            b: (f, e)
            for b, f, e in self.store.runs_per_hour(
                company, since, bucket_minutes * 24 // 60, bucket_seconds=bucket_minutes * 60
            )
        }
        return [
            HourBucket(since + step * i, *found.get(i, (0, 0)), minutes=bucket_minutes)
            for i in range(24)
        ]

    @acting
    def status_counts(
        self,
        company: str,
        *,
        query: OperationFilter | None = None,
    ) -> StatusCounts:
        """Facet counts: for each status, how many operations match ``query``'s filter with
        its status filter (and paging) replaced by that status. Each count stops at
        COUNT_CAP + 1, which reads "10,000+" (``domain.read_models.format_count``). A
        search (text or user prefix) is counted in one read of at most COUNT_CAP + 1
        matches; when it matches more, the counts are those matches' (lower bounds,
        ``lower_bounds`` set): counting each status would read every match once per
        status.

        Example::

            views.status_counts("CRONUS", query=OperationFilter(task="post_invoices"))
        """
        who = self.actor
        require_in(who, Action.COUNT_OPERATIONS, company)
        base = narrow(
            replace(
                query or OperationFilter(),
                company=company,
                statuses=(),
                after_entry_no=None,
                before_entry_no=None,
            ),
            companies_for(who, Action.COUNT_OPERATIONS),
        )
        if base.text is not None or base.user_prefix is not None:
            # A search: count what it matches in one read of at most COUNT_CAP + 1 (a
            # count per status would repeat the search six times, each reading every match
            # of a broad one: its index cannot tell the statuses apart).
            grouped = self.store.count_by_status(base, COUNT_CAP + 1)
            return StatusCounts(grouped, lower_bounds=sum(grouped.values()) > COUNT_CAP)
        statuses = list(Status)
        counts = self.store.count_capped(
            [replace(base, statuses=(s,)) for s in statuses], COUNT_CAP + 1
        )
        return StatusCounts(dict(zip(statuses, counts, strict=True)))

    @acting
    def running_for_user(self, company: str) -> list[Operation]:
        """The actor's own operations in process in the company, the oldest first (the
        pages' background indicator); none for an actor without a user name.

        Example::

            n = len(views.as_actor(alice).running_for_user("CRONUS"))
        """
        who = self.actor
        require_in(who, Action.LIST_OPERATIONS, company)
        if who.user is None:
            return []
        visible = companies_for(who, Action.LIST_OPERATIONS)
        return self.store.list_running(company, user=who.user, companies=visible, limit=100)

    @acting
    def category_activity(self, company: str) -> dict[str, CategoryActivity]:
        """How many operations of each category are running and waiting (ready) now, by
        category code (none, for a company the actor cannot see)."""
        _check_name("company", company)
        if decide(self.actor, Action.LIST_CATEGORIES, company=company) is Verdict.HIDDEN:
            return {}
        return {a.code: a for a in self.store.category_activity(company, COUNT_CAP + 1)}


def _outcomes(value: Outcome | str | Sequence[Outcome | str] | None) -> tuple[Outcome, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out = []
    for item in items:
        try:
            out.append(Outcome(item))
        except ValueError:
            raise ValidationError(
                "outcome", f"must be one of {', '.join(o.value for o in Outcome)}", item
            ) from None
    return tuple(out)
