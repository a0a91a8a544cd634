"""Fixtures of the HTTP tests: the live API of ``live.py``, per module and dialect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live import Live, build_app, database, seed, serving

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder carries the ``api`` marker (``-m api`` runs them)."""
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.api)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """The API served on a seeded database of each dialect, for the whole module."""
    tmp = tmp_path_factory.mktemp(f"api-{request.param}")
    with database(request, request.param, tmp) as url:
        app = build_app(url)
        try:
            tokens = seed(app, url)
            with serving(app) as (base, api):
                served = Live(base, app, api, request.param, tokens)
                yield served
                served.close()
        finally:
            app.close()
