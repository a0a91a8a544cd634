"""longops: durable, observable long-running operations for Python.

Example::

    from longops import Longops

    app = Longops("sqlite:///longops.db")

    @app.task()
    def render_report(year: int) -> str: ...

    app.migrate()
    handle = app.enqueue(render_report, 2026)
"""

from longops.app import Longops, OperationHandle
from longops.core.enqueue import EnqueueRequest
from longops.domain.clock import Clock, FrozenClock, SystemClock
from longops.domain.errors import (
    ConfigurationError,
    DatabaseBusy,
    DatabaseFull,
    InvalidTransition,
    LongopsError,
    NotFound,
    OperationCancelled,
    PermissionDenied,
    ValidationError,
)
from longops.domain.limits import PayloadLimits
from longops.domain.operation import Attempt, Category, Operation, Outcome, Priority
from longops.domain.recurrence import Recurrence
from longops.domain.retry import BusinessCentralBackoff, ExponentialBackoff
from longops.domain.security import Actor, FrontEnd, PermissionSet
from longops.domain.status import Status
from longops.worker.context import RunContext

__all__ = [
    "Actor",
    "Attempt",
    "BusinessCentralBackoff",
    "Category",
    "Clock",
    "ConfigurationError",
    "DatabaseBusy",
    "DatabaseFull",
    "EnqueueRequest",
    "ExponentialBackoff",
    "FrontEnd",
    "FrozenClock",
    "InvalidTransition",
    "Longops",
    "LongopsError",
    "NotFound",
    "Operation",
    "OperationCancelled",
    "OperationHandle",
    "Outcome",
    "PayloadLimits",
    "PermissionDenied",
    "PermissionSet",
    "Priority",
    "Recurrence",
    "RunContext",
    "Status",
    "SystemClock",
    "ValidationError",
]
__version__ = "0.1.0"
