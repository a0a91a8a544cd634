"""longops: durable, observable long-running operations for Python.

Example::

    from longops import Longops

    app = Longops("sqlite:///longops.db")

    @app.task()
    def render_report(year: int) -> str: ...

    app.migrate()
    handle = app.enqueue(render_report, 2026)
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each name is imported when first used (PEP 562): ``import longops.cli`` (the command's
# start, ``longops --help``) and a process-isolation child need not load the application,
# its store drivers and telemetry up front.
_HOMES = {
    "Actor": "longops.domain.security",
    "Attempt": "longops.domain.operation",
    "BusinessCentralBackoff": "longops.domain.retry",
    "Category": "longops.domain.operation",
    "Clock": "longops.domain.clock",
    "ConfigurationError": "longops.domain.errors",
    "DatabaseBusy": "longops.domain.errors",
    "DatabaseFull": "longops.domain.errors",
    "EnqueueRequest": "longops.core.enqueue",
    "ExponentialBackoff": "longops.domain.retry",
    "FrontEnd": "longops.domain.security",
    "FrozenClock": "longops.domain.clock",
    "InvalidTransition": "longops.domain.errors",
    "Longops": "longops.app",
    "LongopsError": "longops.domain.errors",
    "NotFound": "longops.domain.errors",
    "Operation": "longops.domain.operation",
    "OperationCancelled": "longops.domain.errors",
    "OperationHandle": "longops.app",
    "Outcome": "longops.domain.operation",
    "PayloadLimits": "longops.domain.limits",
    "PermissionDenied": "longops.domain.errors",
    "PermissionSet": "longops.domain.security",
    "Priority": "longops.domain.operation",
    "Recurrence": "longops.domain.recurrence",
    "RunContext": "longops.worker.context",
    "Status": "longops.domain.status",
    "SystemClock": "longops.domain.clock",
    "ValidationError": "longops.domain.errors",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'longops' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
