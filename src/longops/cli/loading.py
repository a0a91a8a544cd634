"""Finding the application a command acts on: ``--app module:attr`` (repeatable, or
comma-separated in ``LONGOPS_APP``), else every app installed under the entry-point group
``longops.apps`` (docs/apps.md)."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from importlib import metadata

from longops.app import Longops
from longops.domain.apps import APP_ENTRY_POINT_GROUP
from longops.domain.errors import ConfigurationError


def load_app(spec: str | None, database_url: str | None) -> Longops:
    """Import each ``module:attr`` of ``spec`` (comma-separated), or every installed app
    when ``spec`` is empty; several become one application serving all their tasks (a
    bare app with no tasks when there is none).

    ``database_url`` overrides the app's own URL when given.

    Example::

        load_app("billing.jobs:app,crm.jobs:app", None).app_infos()   # both apps
    """
    specs = [s.strip() for s in (spec or "").split(",") if s.strip()]
    apps = [_import(s) for s in specs] if specs else discover_apps()
    if not apps:
        return Longops(database_url)
    if len(apps) == 1:
        if database_url:
            apps[0].database_url = database_url
        return apps[0]
    return Longops.combine(apps, database_url)


def discover_apps() -> list[Longops]:
    """Every app declared under the ``longops.apps`` entry-point group, named after its
    entry point and versioned by its package.

    Example::

        [a.name for a in discover_apps()]     # ['billing', 'crm']
    """
    found: list[Longops] = []
    for ep in sorted(metadata.entry_points(group=APP_ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            app = ep.load()
        except Exception as exc:
            raise ConfigurationError(
                f"cannot load app {ep.name} ({ep.value}) of entry-point group "
                f"{APP_ENTRY_POINT_GROUP}: {exc}"
            ) from exc
        if not isinstance(app, Longops):
            raise ConfigurationError(
                f"app {ep.name} ({ep.value}) is not a longops.Longops application"
            )
        app.name = app.name or ep.name
        if app.version is None and ep.dist is not None:
            app.version = ep.dist.version
        found.append(app)
    return found


def _import(spec: str) -> Longops:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"--app must look like module:attribute (got {spec!r})")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r} for --app: {exc}") from exc
    app = getattr(module, attr, None)
    if not isinstance(app, Longops):
        raise ConfigurationError(f"{spec} is not a longops.Longops application")
    if app.name is None:
        # Named after its package, versioned by it when it is installed.
        app.name = module_name.split(".", 1)[0]
        dists = metadata.packages_distributions().get(app.name, [])
        if app.version is None and dists:
            with contextlib.suppress(metadata.PackageNotFoundError):
                app.version = metadata.version(dists[0])
    return app
