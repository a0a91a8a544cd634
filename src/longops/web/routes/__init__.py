"""The pages' routes, one module per page, each an ``APIRouter`` named ``router``.

:data:`ROUTERS` is the order ``create_pages`` includes them in. Order matters only where
two paths overlap: ``new_entry`` (``/entries/new``) comes before ``entry``
(``/entries/{operation_id}``), and inside ``entry`` the Edit form's POST before the row
actions' ``/{action}``.
"""

from __future__ import annotations

from fastapi import APIRouter

from longops.web.routes import (
    account,
    categories,
    entries,
    entry,
    log_entries,
    maintenance,
    new_entry,
    notification_preferences,
    notification_setup,
    notifications,
    overview,
    sessions,
    signin,
    stream,
)

ROUTERS: tuple[APIRouter, ...] = (
    notification_setup.router,
    notification_preferences.router,
    signin.router,
    account.router,
    overview.router,
    entries.router,
    new_entry.router,
    entry.router,
    log_entries.router,
    notifications.router,
    categories.router,
    sessions.router,
    maintenance.router,
    stream.router,
)
