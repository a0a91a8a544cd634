"""The application services every front end uses, one per noun, each bound to one actor:
operations (enqueue, reads, actions), companies (with categories and queues), sessions,
the schema, the pages' read models, the inbox, notification setup and security.

``CoreServices.create`` makes them once per store (they share caches); ``as_actor`` gives
the same services acting for someone else.

Example::

    core = CoreServices.create(store, registry, clock, Actor.local())
    alice = core.as_actor(Actor.for_user("alice", [("CRONUS", PermissionSet.USER)]))
    alice.operations.enqueue(EnqueueRequest(task="post_invoices", company="CRONUS"))
    alice.read_models.overview("CRONUS")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from longops.core.companies import CompanyService, CompanyZones
from longops.core.enqueue import EnqueueRequest
from longops.core.maintenance import MaintenanceService
from longops.core.notify import InboxService, NotificationSetupService
from longops.core.operations import OperationService
from longops.core.read_models import ReadModelService
from longops.core.schema import SchemaService
from longops.core.security import SecurityService
from longops.core.sessions import SessionService
from longops.domain.clock import Clock
from longops.domain.limits import PayloadLimits
from longops.domain.security import Actor
from longops.store.base import Store
from longops.worker.registry import TaskRegistry


@dataclass(frozen=True, slots=True)
class CoreServices:
    """Every core service of one store, bound to the same actor."""

    operations: OperationService
    companies: CompanyService
    sessions: SessionService
    schema: SchemaService
    read_models: ReadModelService
    inbox: InboxService
    notification_setup: NotificationSetupService
    security: SecurityService
    maintenance: MaintenanceService

    @classmethod
    def create(
        cls,
        store: Store,
        registry: TaskRegistry,
        clock: Clock,
        actor: Actor,
        *,
        limits: PayloadLimits | None = None,
        secret_key: str | None = None,
        previous_keys: Sequence[str] = (),
    ) -> CoreServices:
        zones = CompanyZones(store)
        return cls(
            operations=OperationService(
                store, registry, clock, actor=actor, limits=limits, zones=zones
            ),
            companies=CompanyService(store, clock, actor=actor, zones=zones),
            sessions=SessionService(store, clock, actor=actor),
            schema=SchemaService(store, clock, actor=actor),
            read_models=ReadModelService(store, clock, actor=actor),
            inbox=InboxService(store, clock, actor=actor),
            notification_setup=NotificationSetupService(
                store, clock, actor=actor, secret_key=secret_key, previous_keys=previous_keys
            ),
            security=SecurityService(store, clock, actor=actor),
            maintenance=MaintenanceService(store, clock, actor=actor),
        )

    def as_actor(self, actor: Actor) -> CoreServices:
        """The same services (sharing their caches), acting for ``actor``."""
        return CoreServices(
            operations=self.operations.as_actor(actor),
            companies=self.companies.as_actor(actor),
            sessions=self.sessions.as_actor(actor),
            schema=self.schema.as_actor(actor),
            read_models=self.read_models.as_actor(actor),
            inbox=self.inbox.as_actor(actor),
            notification_setup=self.notification_setup.as_actor(actor),
            security=self.security.as_actor(actor),
            maintenance=self.maintenance.as_actor(actor),
        )


__all__ = [
    "CompanyService",
    "CoreServices",
    "EnqueueRequest",
    "InboxService",
    "MaintenanceService",
    "NotificationSetupService",
    "OperationService",
    "ReadModelService",
    "SchemaService",
    "SecurityService",
    "SessionService",
]
