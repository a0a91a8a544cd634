"""Fixtures of the HTTP tests: the live API of ``live.py``, per module and dialect."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live import Live, build_app, database, seed, serving
from schemathesis.pytest import _test_builder

HERE = Path(__file__).parent


# schemathesis builds the test of each API operation (its coverage cases above all) while it
# collects test_schemathesis.py: ~4 s of CPU, in every test process, ~half of a process's
# collection, although one or two processes run those tests. The test is built where it runs
# instead: when its first item is set up (`pytest_runtest_setup` below), once per operation
# and process; the items, their names and fixtures are the same as before.
_build_now = _test_builder.build_operation_test


def _build_later(**given: Any) -> Callable[..., Any]:
    test_func = given["test_func"]
    built: list[Callable[..., Any]] = []

    def build() -> Callable[..., Any]:
        if not built:
            built.append(_build_now(**given))
        return built[0]

    def not_built(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a schemathesis test ran without its set-up")  # pragma: no cover

    functools.update_wrapper(not_built, test_func, updated=())
    # The built test's signature: the test's own but its `case`, which schemathesis gives.
    signature = inspect.signature(test_func)
    not_built.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for n, p in signature.parameters.items() if n != "case"]
    )
    not_built.is_hypothesis_test = True  # type: ignore[attr-defined]
    not_built.build_later = build  # type: ignore[attr-defined]
    return not_built


_test_builder.build_operation_test = _build_later


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A schemathesis item gets its operation's built test before anything looks at it."""
    if isinstance(item, pytest.Function):
        build = getattr(item.obj, "build_later", None)
        if build is not None:
            item.obj = build()


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
