"""Finding the application a command acts on (``--app module:attr``)."""

from __future__ import annotations

import importlib
import os
import sys

from longops.app import Longops
from longops.domain.errors import ConfigurationError


def load_app(spec: str | None, database_url: str | None) -> Longops:
    """Import ``module:attr`` (a :class:`Longops`), or make a bare app with no tasks.

    ``database_url`` overrides the app's own URL when given.
    """
    if not spec:
        return Longops(database_url)
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
    if database_url:
        app.database_url = database_url
    return app
