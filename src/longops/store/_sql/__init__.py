"""What the SQLite and PostgreSQL stores share, one module per noun (see ``store/README.md``).

A dialect supplies the connection handling (``_tx``), value encoders and decoders, and the
few methods whose mechanics differ (the claim, bulk insert, finishing runs, wake-ups).
"""

from __future__ import annotations

from longops.store._sql.admin import AdminSql
from longops.store._sql.apps import AppsSql
from longops.store._sql.core import Row, SqlCore, TimedCursor, current_scope_text, in_turns
from longops.store._sql.maintenance import MaintenanceSql
from longops.store._sql.notifications import NotificationsSql
from longops.store._sql.operations import OperationsSql
from longops.store._sql.read_models import ReadModelsSql
from longops.store._sql.runs import RunsSql
from longops.store._sql.security import SecuritySql


class SqlStore(
    AdminSql,
    OperationsSql,
    RunsSql,
    SecuritySql,
    ReadModelsSql,
    NotificationsSql,
    AppsSql,
    MaintenanceSql,
    SqlCore,
):
    """The dialect-neutral half of a store: every noun's SQL methods over one base."""


__all__ = ["Row", "SqlCore", "SqlStore", "TimedCursor", "current_scope_text", "in_turns"]
