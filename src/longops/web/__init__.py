"""The management pages: server-rendered HTML (Jinja2) with live updates (htmx + SSE).

``create_pages(app, hub)`` builds the ASGI application that ``longops serve`` mounts at
``/`` beside the REST API (``/v1``). Like the API it is a front end: every page reads and
acts through core as the signed-in user, never through a store.

Example::

    from longops.core.streams import EventHub
    from longops.web import create_pages

    hub = EventHub(app.store)
    pages = create_pages(app, hub)      # uvicorn.run(pages) once the hub is started
"""

from __future__ import annotations

from longops.web.site import create_pages

__all__ = ["create_pages"]
