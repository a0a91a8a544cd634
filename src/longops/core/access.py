"""The enforcement point: every core method runs for an actor, under the permission table.

``ActorBound`` is the base of the core services: a service may be bound to a default actor
(``as_actor``), and every public method also takes ``actor=``. ``acting`` resolves the actor
and scopes the store to the actor's companies for the method's transactions (row-level
security on PostgreSQL, when on). ``require`` turns ``domain.security.decide`` into the
errors people see: ``PermissionDenied``, or the same ``NotFound`` a missing target gives.

Example::

    service = OperationService(store, registry, clock).as_actor(Actor.local())
    service.hold(op_id)                                  # as the bound actor
    service.hold(op_id, actor=Actor.for_user("alice", [("CRONUS", PermissionSet.USER)]))
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from longops.domain.clock import Clock
from longops.domain.errors import ConfigurationError, PermissionDenied
from longops.domain.security import PERMISSIONS, Actor, PermissionSet, Reach, Verdict, decide
from longops.domain.users import AuditEntry
from longops.store.base import Store

P = ParamSpec("P")
R = TypeVar("R")
B = TypeVar("B", bound="ActorBound")


class ActorBound:
    """A core service that acts for an actor: its bound one, or the one a call names."""

    store: Store
    clock: Clock
    actor: Actor | None = None

    def as_actor(self: B, actor: Actor) -> B:
        """The same service (sharing its caches), acting for ``actor`` by default.

        Example::

            alice_view = service.as_actor(Actor.for_user("alice", grants))
        """
        bound = copy.copy(self)
        bound.actor = actor
        return bound

    def _who(self, actor: Actor | None) -> Actor:
        who = actor if actor is not None else self.actor
        if who is None:
            raise ConfigurationError(
                "no actor: pass actor=... or use a service bound with as_actor(...)"
            )
        return who

    def _entry(
        self,
        actor: Actor,
        action: str,
        target: str,
        company: str | None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
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
    """Run a core method for its resolved actor, with the store scoped to that actor."""

    @functools.wraps(fn)
    def run(self: B, /, *args: P.args, **kwargs: P.kwargs) -> R:
        actor = self._who(cast("Actor | None", kwargs.get("actor")))
        kwargs["actor"] = actor
        with self.store.scope(actor.scope()):
            return fn(self, *args, **kwargs)

    return run


def require(
    actor: Actor,
    action: str,
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


def _why(actor: Actor, action: str, company: str | None) -> str:
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
