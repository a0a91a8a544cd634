"""How a worker runs (:class:`WorkerOptions`, validated when made) and the session it
registers (:func:`active_session`).

Example::

    options = WorkerOptions(queues=("default",), concurrency=8)
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from longops.domain.apps import AppInfo
from longops.domain.classification import LOGGED_BY_DEFAULT, DataClass
from longops.domain.errors import ValidationError
from longops.domain.ids import new_id
from longops.domain.operation import Session, SessionState
from longops.worker.control import KILL_AFTER
from longops.worker.memory import MEMORY_HAND_BACKS, MIN_MEMORY
from longops.worker.timings import HEARTBEAT_INTERVAL, RESCUER_INTERVAL, SESSION_TIMEOUT


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How a worker runs. Times in seconds."""

    queues: tuple[str, ...] = ("default",)
    concurrency: int = 4
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    session_timeout: float = SESSION_TIMEOUT
    grace_period: float = 30.0
    poll_interval: float = 1.0
    claim_batch: int = 100
    rescuer_interval: float = RESCUER_INTERVAL
    retention: timedelta = timedelta(days=30)
    run_services: bool = True
    progress_interval: float = 1.0
    """At most one progress write per run per this many seconds (plus one per step)."""
    max_runs_per_child: int = 100
    max_memory_per_child: int | None = None
    """Bytes of resident memory after which a child process is replaced."""
    kill_after: float = KILL_AFTER
    """Seconds between SIGTERM and SIGKILL when a child process is stopped by force."""
    monitor_tick: float = 0.1
    companies: tuple[str, ...] | None = None
    """Serve only these companies' operations (None: every active company)."""
    log_classes: frozenset[DataClass] = LOGGED_BY_DEFAULT
    """Data classes the worker's own log lines may carry (error text is CustomerContent)."""
    stuck_after: float = 60.0
    """Seconds one round of a loop (beyond its own wait) may take before the loop counts as
    stuck: the heartbeat stops and the worker exits with ``EXIT_LOOP_DIED``."""
    max_memory: int | None = None
    """Bytes of the worker's own resident memory past which it hands its runs back and
    exits with ``EXIT_MEMORY`` (worker/memory.py; None: no limit)."""
    memory_check_interval: float = 1.0
    """Seconds between two reads of the worker's resident memory (with ``max_memory``)."""
    memory_hand_backs: int = MEMORY_HAND_BACKS
    """An operation in flight at this many memory exits in a row (``max_memory``) fails
    at the last instead of being handed back again (worker/memory.py)."""
    apps: tuple[AppInfo, ...] = ()
    """The apps whose tasks it serves, recorded at start (``longops apps list``)."""
    schema_check_interval: float = field(
        default_factory=lambda: float(os.environ.get("LONGOPS_SCHEMA_CHECK_INTERVAL", "30"))
    )
    """Seconds between two checks of the schema version (worker/apps.py;
    ``LONGOPS_SCHEMA_CHECK_INTERVAL``)."""

    def __post_init__(self) -> None:
        if not 0.01 <= self.progress_interval <= 3600:
            raise ValidationError(
                "progress_interval", "must be between 0.01 and 3600 seconds", self.progress_interval
            )
        if self.stuck_after <= 0:
            raise ValidationError("stuck_after", "must be more than 0 seconds", self.stuck_after)
        if self.max_runs_per_child < 1:
            raise ValidationError("max_runs_per_child", "must be at least 1")
        if self.max_memory is not None and self.max_memory < MIN_MEMORY:
            raise ValidationError("max_memory", "must be at least 16MiB", self.max_memory)
        if not 0.05 <= self.schema_check_interval <= 86_400:
            raise ValidationError("schema_check_interval", "must be between 0.05 and 86400 seconds")
        if not 0.01 <= self.memory_check_interval <= 3600:
            raise ValidationError("memory_check_interval", "must be between 0.01 and 3600 seconds")
        if not 1 <= self.memory_hand_backs <= 100:
            raise ValidationError(
                "memory_hand_backs", "must be between 1 and 100", self.memory_hand_backs
            )

        if not 1 <= self.concurrency <= 1000:
            raise ValidationError("concurrency", "must be between 1 and 1000", self.concurrency)
        if not self.queues:
            raise ValidationError("queues", "must name at least one queue")
        if self.companies is not None and not self.companies:
            raise ValidationError("companies", "must name at least one company (or none: all)")
        if self.retention < timedelta(hours=1):
            raise ValidationError("retention", "must be at least one hour")
        if self.heartbeat_interval <= 0 or self.session_timeout <= self.heartbeat_interval:
            raise ValidationError(
                "session_timeout", "must be longer than heartbeat_interval (both > 0)"
            )


def active_session(
    now: datetime,
    queues: tuple[str, ...] = ("default",),
    *,
    concurrency: int = 1,
    session_id: uuid.UUID | None = None,
    companies: tuple[str, ...] | None = None,
    tasks: tuple[str, ...] | None = None,
    code_version: str | None = None,
    schema_version: int | None = None,
) -> Session:
    """A new session of this process, active as of ``now``, ready to register.

    Example::

        store.register_session(active_session(clock.now(), ("default",), concurrency=4))
    """
    return Session(
        id=session_id or new_id(now),
        host=socket.gethostname(),
        pid=os.getpid(),
        queues=tuple(queues),
        concurrency=concurrency,
        state=SessionState.ACTIVE,
        started_at=now,
        last_heartbeat_at=now,
        ended_at=None,
        companies=None if companies is None else tuple(sorted(companies)),
        tasks=tasks,
        code_version=code_version,
        schema_version=schema_version,
    )
