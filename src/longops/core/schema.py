"""The database schema: pending migrations, their state, and the SQL they would run
(``longops db upgrade``, ``db status``, ``db sql``); SUPER only.

Example::

    SchemaService(store, clock, actor=Actor.local()).migrate()
"""

from __future__ import annotations

from collections.abc import Sequence

from longops.core.access import ActorBound, acting, require
from longops.domain.apps import AppInfo, SchemaCheck
from longops.domain.clock import Clock
from longops.domain.security import Action, Actor
from longops.store.base import Store
from longops.store.migrate import MigrationState
from longops.worker.apps import check_schema, require_schema


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

    @acting
    def check(self) -> SchemaCheck:
        """The schema guard's verdict on this database for this code (docs/apps.md)."""
        require(self.actor, Action.MAINTAIN_SCHEMA, target="")
        return check_schema(self.store)

    @acting
    def guard_start(self, apps: Sequence[AppInfo] = ()) -> SchemaCheck:
        """What a server does at start: refuse an older schema
        (:class:`~longops.worker.apps.SchemaTooOld`, exit code 78) and record its apps
        and their tasks.

        Example::

            app.schema.guard_start(app.app_infos())
        """
        require(self.actor, Action.MAINTAIN_SCHEMA, target="")
        check = require_schema(self.store)
        if apps:
            self.store.record_apps(apps, self.clock.now())
        return check


def readiness(store: Store) -> SchemaCheck:
    """The schema guard's verdict for a server's readiness probe (``/readyz``), asked on
    every probe, so a server notices a schema that changed under it: an older schema or an
    incompatible newer one makes it unready; a current or compatible newer one does not.
    No actor: a probe is anonymous, and the verdict names only version numbers.

    Example::

        readiness(app.store).may_claim      # True on a current schema
    """
    return check_schema(store)
