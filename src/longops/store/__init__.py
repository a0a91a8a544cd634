"""Storage: the only place with SQL. ``open_store(url)`` picks the dialect from the URL."""

from __future__ import annotations

from longops.store.base import (
    ClaimedRun,
    ClaimParams,
    OperationQuery,
    RunResult,
    Store,
    StoreOptions,
    Wakeups,
    open_store,
)

__all__ = [
    "ClaimParams",
    "ClaimedRun",
    "OperationQuery",
    "RunResult",
    "Store",
    "StoreOptions",
    "Wakeups",
    "open_store",
]
