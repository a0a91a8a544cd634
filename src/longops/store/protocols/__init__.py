"""The store's protocols, one per noun (River's driver interface is the model).

``store.base.Store`` is their union; callers type against ``Store`` (or, to say they need
less, against one noun's protocol).
"""

from __future__ import annotations

from longops.store.protocols.admin import AdminStore
from longops.store.protocols.apps import AppStore
from longops.store.protocols.maintenance import MaintenanceStore
from longops.store.protocols.notifications import NotificationStore
from longops.store.protocols.operations import OperationStore
from longops.store.protocols.read_models import ReadModelStore
from longops.store.protocols.runs import RunStore, ServiceStore, SessionStore
from longops.store.protocols.security import SecurityStore

NOUNS = (
    AdminStore,
    OperationStore,
    RunStore,
    SessionStore,
    ServiceStore,
    SecurityStore,
    ReadModelStore,
    NotificationStore,
    AppStore,
    MaintenanceStore,
)
"""Every noun's protocol, in the order ``Store`` unites them."""

__all__ = [
    "NOUNS",
    "AdminStore",
    "AppStore",
    "MaintenanceStore",
    "NotificationStore",
    "OperationStore",
    "ReadModelStore",
    "RunStore",
    "SecurityStore",
    "ServiceStore",
    "SessionStore",
]
