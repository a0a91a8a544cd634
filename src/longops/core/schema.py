"""The database schema: pending migrations, their state, and the SQL they would run
(``longops db upgrade``, ``db status``, ``db sql``); SUPER only.

Example::

    SchemaService(store, clock, actor=Actor.local()).migrate()
"""

from __future__ import annotations

from longops.core.access import ActorBound, acting, require
from longops.domain.clock import Clock
from longops.domain.security import Action, Actor
from longops.store.base import Store
from longops.store.migrate import MigrationState


class SchemaService(ActorBound):
    """Schema migrations, for the bound actor."""

    def __init__(self, store: Store, clock: Clock, *, actor: Actor) -> None:
        self.store = store
        self.clock = clock
        self.actor = actor

    @acting
    def migrate(self) -> list[str]:
        """Apply pending schema migrations; returns their names."""
        require(self.actor, Action.MAINTAIN_SCHEMA, target="")
        return self.store.migrate()

    @acting
    def migration_status(self) -> list[MigrationState]:
        require(self.actor, Action.MAINTAIN_SCHEMA, target="")
        return self.store.migration_status()

    @acting
    def migration_sql(self) -> str:
        require(self.actor, Action.MAINTAIN_SCHEMA, target="")
        return self.store.migration_sql()
