"""Apps (packages of tasks) and the schema guard's rule.

An *app* is a :class:`~longops.Longops` object a package declares under the entry-point
group ``longops.apps``; a worker serves the tasks of every app it loaded, and its session
records them, so the claim takes only operations it can run and an operation whose task no
live session has waits with ``no_worker_for_task``.

The schema guard compares the schema version the code was written for (its newest
migration) with the database's: an older database is refused; a newer one is run on only
when every newer migration was declared compatible with older code (``-- longops:
compatible``, an *expand* step).

Example::

    check = schema_verdict(11, {n: ("m", frozenset({"compatible"})) for n in range(1, 13)})
    check.verdict, check.may_claim       # (SchemaVerdict.NEWER_COMPATIBLE, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

APP_ENTRY_POINT_GROUP = "longops.apps"
"""The entry-point group packages declare their apps under:
``billing = "billing.jobs:app"`` in ``[project.entry-points."longops.apps"]``."""

EXIT_SCHEMA_OLDER = 78
"""A worker's or server's exit code when the database's schema is older than its code
(``EX_CONFIG``): nothing is started until ``longops db upgrade`` has run."""


@dataclass(frozen=True, slots=True)
class AppTask:
    """One task of an app as the database records it."""

    name: str
    worker_wait: timedelta | None = None
    """How long an operation of it may wait for a worker that has it before it fails with
    ``no_worker_for_task`` (None: as long as it takes)."""


@dataclass(frozen=True, slots=True)
class AppInfo:
    """An app: its name (the entry point's), its package's version and its tasks."""

    name: str
    version: str | None = None
    tasks: tuple[AppTask, ...] = ()

    @property
    def label(self) -> str:
        return self.name if self.version is None else f"{self.name} {self.version}"


@dataclass(frozen=True, slots=True)
class ServingSession:
    """A live session serving an app, as ``longops apps list`` shows it: in a rolling
    deploy an older worker serves only some of the app's tasks.

    Example::

        ServingSession("0190...", "longops 0.1.0; billing 1.0", missing_tasks=("new_in_v2",))
    """

    id: str
    code_version: str | None
    missing_tasks: tuple[str, ...] = ()
    """The app's recorded tasks this session does not have (it never claims them)."""


@dataclass(frozen=True, slots=True)
class AppRecord:
    """An app as the database knows it (``longops apps list``)."""

    name: str
    version: str | None
    tasks: tuple[AppTask, ...]
    seen_at: datetime
    """When a worker or server that had it last started."""
    uninstalled_at: datetime | None = None
    served_by: tuple[str, ...] = field(default_factory=tuple)
    """The live sessions that have at least one of its tasks (their ids)."""
    serving: tuple[ServingSession, ...] = field(default_factory=tuple)
    """The same sessions with their code version and the app's tasks each lacks."""


class SchemaVerdict(StrEnum):
    CURRENT = "current"
    OLDER = "older"
    """The database lacks migrations this code needs: refuse to start."""
    NEWER_COMPATIBLE = "newer_compatible"
    """Newer migrations, each declared compatible with older code: run."""
    NEWER_INCOMPATIBLE = "newer_incompatible"
    """A newer migration that older code may not run on: stop claiming."""


@dataclass(frozen=True, slots=True)
class SchemaCheck:
    verdict: SchemaVerdict
    code_version: int
    database_version: int
    message: str

    @property
    def may_claim(self) -> bool:
        return self.verdict in (SchemaVerdict.CURRENT, SchemaVerdict.NEWER_COMPATIBLE)


def schema_verdict(
    code_version: int, applied: Mapping[int, tuple[str, frozenset[str]]]
) -> SchemaCheck:
    """What code written for schema ``code_version`` may do on a database whose applied
    migrations are ``applied`` (version -> (name, flags)).

    Example::

        schema_verdict(12, {1: ("initial", frozenset())}).verdict   # SchemaVerdict.OLDER
    """
    db = max(applied, default=0)
    missing = [v for v in range(1, code_version + 1) if v not in applied]
    if missing:
        return SchemaCheck(
            SchemaVerdict.OLDER,
            code_version,
            db,
            f"the database schema is at version {db} but this code needs version "
            f"{code_version} (missing {', '.join(f'{v:04d}' for v in missing)}): run "
            "`longops db upgrade` first",
        )
    newer = sorted(v for v in applied if v > code_version)
    if not newer:
        return SchemaCheck(
            SchemaVerdict.CURRENT, code_version, db, f"schema version {db} is current"
        )
    blocking = [v for v in newer if "compatible" not in applied[v][1]]
    if blocking:
        names = ", ".join(f"{v:04d}_{applied[v][0]}" for v in blocking)
        return SchemaCheck(
            SchemaVerdict.NEWER_INCOMPATIBLE,
            code_version,
            db,
            f"the database schema is at version {db}, newer than this code's {code_version}, "
            f"and migration {names} is not declared compatible with older code: this worker "
            "stops claiming; deploy the code of version "
            f"{db} (or newer) and stop this one",
        )
    return SchemaCheck(
        SchemaVerdict.NEWER_COMPATIBLE,
        code_version,
        db,
        f"the database schema is at version {db}, newer than this code's {code_version}; "
        "every newer migration is declared compatible with older code",
    )
