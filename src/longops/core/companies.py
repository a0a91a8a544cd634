"""Companies, their categories, and queues: the set-up an operation runs within.

``CompanyZones`` remembers which companies and categories exist and each company's time
zone (enqueue asks on every call); every service that changes a company forgets it there.

Example::

    companies = CompanyService(store, clock, actor=Actor.local())
    companies.add_company("CRONUS-UK", time_zone="Europe/London", max_in_process=20)
    companies.set_category("CRONUS-UK", "POSTING", max_concurrent=1)
    companies.pause_queue("reports")
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from types import EllipsisType
from zoneinfo import ZoneInfo

from longops.core.access import ActorBound, acting, no_company, require, require_in
from longops.domain.clock import Clock
from longops.domain.errors import Conflict, NotFound, ValidationError
from longops.domain.filters import OperationFilter
from longops.domain.operation import DEFAULT_COMPANY, Category, Company, Operation, _check_name
from longops.domain.read_models import COUNT_CAP, format_count
from longops.domain.security import Action, Actor, Verdict, companies_for, decide
from longops.store.base import Store

FRESH_FOR = 5.0
"""Seconds a remembered company (exists, active, its zone) and category stay trusted. A
change made through this process's services is seen at once (they call ``forget``); one made
by another process (the CLI disabling a company under a running server) within this bound."""


class CompanyZones:
    """Which companies and categories exist, and each company's time zone, read at most once
    per ``fresh_for`` seconds: enqueue is a hot path. Shared by every service of one store.

    Example::

        zones = CompanyZones(store)
        zones.zone_to_enqueue("CRONUS", "POSTING")   # reads the company and the category
        zones.zone_to_enqueue("CRONUS", "POSTING")   # remembered for FRESH_FOR seconds
    """

    def __init__(
        self,
        store: Store,
        *,
        fresh_for: float = FRESH_FOR,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.fresh_for = fresh_for
        self.monotonic = monotonic
        self._known: dict[tuple[str, str | None], tuple[ZoneInfo, float]] = {}
        self._lock = threading.Lock()

    def zone_to_enqueue(self, company: str, category: str | None) -> ZoneInfo:
        """The time zone of ``company``, after checking that it exists and is active and
        that ``category`` (when given) is one of its categories; else ValidationError."""
        key = (company, category)
        now = self.monotonic()
        with self._lock:
            known = self._known.get(key)
        if known is not None and now < known[1]:
            return known[0]
        _check_name("company", company)
        found = self.store.get_company(company)
        if found is None:
            raise no_company(company)
        if not found.active:
            raise ValidationError("company", "is disabled", company)
        if category is not None:
            _check_name("category", category)
            if self.store.get_category(company, category) is None:
                raise ValidationError(
                    "category", f"must be an existing category of company {company}", category
                )
        zone = ZoneInfo(found.time_zone)
        with self._lock:
            self._known[key] = (zone, now + self.fresh_for)
        return zone

    def zone_of(self, op: Operation) -> ZoneInfo:
        """The time zone of the operation's company, disabled or not (reads need it too)."""
        try:
            return self.zone_to_enqueue(op.company, None)
        except ValidationError:
            found = self.store.get_company(op.company)
            return ZoneInfo(found.time_zone if found else "UTC")

    def forget(self, company: str) -> None:
        with self._lock:
            for key in [k for k in self._known if k[0] == company]:
                del self._known[key]


class CompanyService(ActorBound):
    """Companies, categories and queues, for the bound actor."""

    def __init__(
        self, store: Store, clock: Clock, *, actor: Actor, zones: CompanyZones | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.actor = actor
        self.zones = zones or CompanyZones(store)

    # -- companies ---------------------------------------------------------------------------
    @acting
    def add_company(
        self,
        name: str,
        *,
        display_name: str | None = None,
        time_zone: str | None = None,
        max_in_process: int | EllipsisType | None = ...,
    ) -> Company:
        """Create a company (or change it; a disabled company becomes active again). What
        is not given keeps its value (a new company: UTC, no cap).

        ``max_in_process`` caps how many of its operations run at once (None: no cap).

        Example::

            companies.add_company("CRONUS-UK", time_zone="Europe/London", max_in_process=20)
        """
        who = self.actor
        require(who, Action.ADD_COMPANY, target=f"company {name}")
        _check_name("company", name)
        current = self.store.get_company(name)
        if time_zone is None:
            time_zone = current.time_zone if current else "UTC"
        if display_name is None and current is not None:
            display_name = current.display_name
        if isinstance(max_in_process, EllipsisType):
            max_in_process = current.max_in_process if current else None
        try:
            ZoneInfo(time_zone)
        except (ValueError, KeyError, OSError):
            raise ValidationError(
                "time_zone", "must be an IANA time zone such as Europe/Amsterdam", time_zone
            ) from None
        if display_name is not None and len(display_name) > 250:
            raise ValidationError("display_name", "must be at most 250 characters")
        if max_in_process is not None and (
            isinstance(max_in_process, bool) or not 1 <= max_in_process <= 100_000
        ):
            raise ValidationError(
                "max_in_process", "must be between 1 and 100000 (or none)", max_in_process
            )
        company = Company(name, display_name or name, time_zone, True, max_in_process)
        audit = self._audit_entry(who, "add_company", f"company {name}", name, company.to_json())
        saved = self.store.upsert_company(company, audit=audit)
        self.zones.forget(name)
        return saved

    @acting
    def disable_company(self, name: str) -> Company:
        """Disable a company: it takes no new operations and its ready ones are not claimed
        until it is added again."""
        who = self.actor
        require(who, Action.DISABLE_COMPANY, target=f"company {name}")
        _check_name("company", name)
        found = self.store.get_company(name)
        if found is None:
            raise NotFound("company", name)
        audit = self._audit_entry(who, "disable_company", f"company {name}", name)
        saved = self.store.upsert_company(dataclasses.replace(found, active=False), audit=audit)
        self.zones.forget(name)
        return saved

    @acting
    def list_companies(self) -> list[Company]:
        """The companies the actor holds a permission set in (SUPER: all)."""
        return self.store.list_companies(companies_for(self.actor, Action.LIST_COMPANIES))

    # -- categories --------------------------------------------------------------------------
    @acting
    def set_category(
        self,
        company: str,
        code: str,
        *,
        max_concurrent: int | None = None,
        description: str | None = None,
        paused: bool | None = None,
    ) -> Category:
        """Create or update a category (Business Central: job queue category); pausing and
        resuming a category is this too (``paused``). What is not given keeps its value (a
        new category: one at a time, no description, running)."""
        who = self.actor
        require_in(who, Action.SET_CATEGORY, company)
        _check_name("category", code)
        current = self.store.get_category(company, code)
        if max_concurrent is None:
            max_concurrent = current.max_concurrent if current else 1
        if description is None:
            description = current.description if current else ""
        if paused is None:
            paused = current.paused if current else False
        if isinstance(max_concurrent, bool) or not 1 <= max_concurrent <= 1000:
            raise ValidationError("max_concurrent", "must be between 1 and 1000", max_concurrent)
        if len(description) > 250:
            raise ValidationError("description", "must be at most 250 characters")
        self.zones.zone_to_enqueue(company, None)
        category = Category(company, code, description, max_concurrent, paused)
        details = {"max_concurrent": max_concurrent, "paused": paused}
        audit = self._audit_entry(who, "set_category", f"category {code}", company, details)
        return self.store.upsert_category(category, audit=audit)

    @acting
    def delete_category(self, company: str, code: str) -> None:
        """Delete a category no operation names (operations keep their category, so one
        in use stays: Conflict, saying how many use it). Whoever may set categories may."""
        who = self.actor
        require_in(who, Action.SET_CATEGORY, company)
        _check_name("category", code)
        if self.store.get_category(company, code) is None:
            raise NotFound("category", code)
        if not self.store.delete_unused_categories(company, [code]):
            [used] = self.store.count_capped(
                [OperationFilter(company=company, category=code)], COUNT_CAP + 1
            )
            raise Conflict(
                "CategoryInUse",
                f"Category {code} is used by {format_count(used)} "
                f"operation{'' if used == 1 else 's'}: it can be deleted once none names it "
                "(delete them, or wait until they are cleaned up).",
            )
        self.store.record_audit(
            self._audit_entry(who, "delete_category", f"category {code}", company, {})
        )

    @acting
    def list_categories(self, company: str = DEFAULT_COMPANY) -> list[Category]:
        """A company's categories (none, for a company the actor cannot see)."""
        _check_name("company", company)
        if decide(self.actor, Action.LIST_CATEGORIES, company=company) is Verdict.HIDDEN:
            return []  # as for a company that does not exist
        return self.store.list_categories(company)

    # -- queues ------------------------------------------------------------------------------
    @acting
    def pause_queue(self, name: str) -> None:
        """Stop claims from a queue, in every company (so SUPER only)."""
        self._set_queue_paused(name, True)

    @acting
    def resume_queue(self, name: str) -> None:
        self._set_queue_paused(name, False)

    def _set_queue_paused(self, name: str, paused: bool) -> None:
        require(self.actor, Action.PAUSE_QUEUE, target=f"queue {name}")
        _check_name("queue", name)
        action = "pause_queue" if paused else "resume_queue"
        audit = self._audit_entry(self.actor, action, f"queue {name}", None)
        self.store.set_queue_paused(name, paused, self.clock.now(), audit=audit)

    @acting
    def paused_queues(self) -> frozenset[str]:
        require(self.actor, Action.LIST_PAUSED_QUEUES, target="")
        return self.store.paused_queues()
