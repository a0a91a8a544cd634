"""The pages' routes as modules (web/routes/): each page's router is included, no URL is
claimed twice, and where two paths overlap the right route answers first."""

from __future__ import annotations

import importlib
import pkgutil
import uuid

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Match

from longops.web import routes
from longops.web import stream as live_stream
from longops.web.routes import ROUTERS, entries, entry, new_entry

OP = uuid.UUID("6f1c1c2e-3a55-4f0e-9d3b-1d2a1f0c9e77")


def page_routes() -> list[APIRoute]:
    """The routes in the order the pages' app tries them (routers in ROUTERS' order)."""
    found = [route for router in ROUTERS for route in router.routes]
    assert all(isinstance(route, APIRoute) for route in found)
    return [route for route in found if isinstance(route, APIRoute)]


def first_match(method: str, path: str) -> object:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in page_routes():
        found, _ = route.matches(scope)
        if found is Match.FULL:
            return route.endpoint
    raise AssertionError(f"no route answers {method} {path}")


def test_every_page_module_has_its_router_included() -> None:
    names = [m.name for m in pkgutil.iter_modules(routes.__path__)]
    assert len(names) == len(ROUTERS)
    for name in names:
        module = importlib.import_module(f"{routes.__name__}.{name}")
        assert module.router in ROUTERS, f"routes/{name}.py's router is not in ROUTERS"


def test_no_method_and_path_is_claimed_twice() -> None:
    claimed = [(method, route.path) for route in page_routes() for method in route.methods]
    assert len(claimed) == len(set(claimed))


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("GET", "/c/CRONUS/entries/new", new_entry.new_form),
        ("POST", "/c/CRONUS/entries/new", new_entry.enqueue),
        ("GET", f"/c/CRONUS/entries/{OP}", entry.card),
        ("POST", f"/c/CRONUS/entries/{OP}/edit", entry.edit),
        ("POST", f"/c/CRONUS/entries/{OP}/hold", entry.act),
        ("POST", "/c/CRONUS/entries/bulk", entries.bulk),
    ],
)
def test_overlapping_paths_reach_the_right_route(method: str, path: str, endpoint: object) -> None:
    assert first_match(method, path) is endpoint


def test_a_fragment_goes_out_as_one_data_line_per_line() -> None:
    assert live_stream.sse("card", '<p class="x">\n  Ready\n</p>') == (
        'event: card\ndata: <p class="x">\ndata:   Ready\ndata: </p>\n\n'
    )
