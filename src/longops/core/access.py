"""The enforcement point: every core service acts for one actor, under the permission table.

``ActorBound`` is the base of the core services: a service is made for an actor and
``as_actor`` gives the same service (sharing its caches) for another, so a method never
asks who is calling. ``acting`` scopes the store to the bound actor's companies for the
method's transactions (row-level security on PostgreSQL, when on). ``require`` turns
``domain.security.decide`` into the errors people see: ``PermissionDenied``, or the same
``NotFound`` a missing target gives.

Example::

    service = OperationService(store, registry, clock, actor=Actor.local())
    service.hold(op_id)                                  # as the local super actor
    alice = service.as_actor(Actor.for_user("alice", [("CRONUS", PermissionSet.USER)]))
    alice.hold(op_id)                                    # as alice
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from longops.domain.clock import Clock
from longops.domain.errors import PermissionDenied, ValidationError
from longops.domain.operation import _check_name
from longops.domain.security import (
    PERMISSIONS,
    Action,
    Actor,
    PermissionSet,
    Reach,
    Verdict,
    decide,
)
from longops.domain.users import AuditEntry
from longops.store.base import Store

P = ParamSpec("P")
R = TypeVar("R")
B = TypeVar("B", bound="ActorBound")


class ActorBound:
    """A core service bound to the actor it acts for."""

    store: Store
    clock: Clock
    actor: Actor

    def as_actor(self: B, actor: Actor) -> B:
        """The same service (sharing its caches), acting for ``actor``.

        Example::

            alice_view = service.as_actor(Actor.for_user("alice", grants))
        """
        bound = copy.copy(self)
        bound.actor = actor
        return bound

    def _audit_entry(
        self,
        actor: Actor,
        action: str,
        target: str,
        company: str | None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """The audit log's record of ``actor`` doing ``action`` now (written by the store in
        the same transaction as the change)."""
        return AuditEntry(
            at=self.clock.now(),
            actor=actor.user,
            front_end=actor.front_end,
            action=action,
            target=target,
            company=company,
            details=dict(details or {}),
        )


def acting(fn: Callable[Concatenate[B, P], R]) -> Callable[Concatenate[B, P], R]:
    """Run a core method with the store scoped to the service's actor."""

    @functools.wraps(fn)
    def run(self: B, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.store.scope(self.actor.scope()):
            return fn(self, *args, **kwargs)

    return run


def require(
    actor: Actor,
    action: Action,
    *,
    target: str,
    company: str | None = None,
    owner: str | None = None,
    hidden: Callable[[], Exception] | None = None,
) -> None:
    """Raise unless ``actor`` may do ``action``: PermissionDenied, or ``hidden()`` (the
    error a missing target gives) when the target is in a company the actor cannot see."""
    verdict = decide(actor, action, company=company, owner=owner)
    if verdict is Verdict.ALLOWED:
        return
    if verdict is Verdict.HIDDEN and hidden is not None:
        raise hidden()
    what = PERMISSIONS[action].what
    raise PermissionDenied(actor.name, what, target, _why(actor, action, company))


def require_in(actor: Actor, action: Action, company: str) -> None:
    """A company-wide action: refused, or (company unseen) the error of a missing company."""
    _check_name("company", company)
    require(
        actor,
        action,
        target=f"company {company}",
        company=company,
        hidden=lambda: no_company(company),
    )


def no_company(company: str) -> ValidationError:
    """The error of a company that does not exist, and of one the actor cannot see: the
    same words, so that nobody learns which companies exist by asking."""
    return ValidationError("company", "must be an existing company", company)


def _why(actor: Actor, action: Action, company: str | None) -> str:
    rule = PERMISSIONS[action]
    sets = [s for s, reach in rule.cells.items() if reach is Reach.ALL]
    # SUPER is global: it is named apart from the sets held in a company.
    local = [s.value for s in sets if s is not PermissionSet.SUPER]
    where = f" in {company}" if company is not None and rule.scope.value != "global" else ""
    needs = f"needs {' or '.join(local)}{where}, or SUPER" if local else "needs SUPER"
    held_own = [
        s.value
        for s in _held(actor, company)
        if rule.cells.get(s) is Reach.OWN and not actor.is_super
    ]
    if held_own:
        return f"with {held_own[0]} only one's own may be reached; {needs}"
    return needs


def _held(actor: Actor, company: str | None) -> frozenset[PermissionSet]:
    if company is None:
        return frozenset(s for _, s in actor.grants)
    return actor.sets_in(company)
