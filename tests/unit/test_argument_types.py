"""Arguments are checked against the task's annotations at enqueue (the schema the REST
API publishes), in core, so every front end refuses a bad type before anything is
written, naming the argument as it was sent."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from longops import Longops, RunContext
from longops.domain.errors import ValidationError
from longops.store.base import OperationQuery


@pytest.fixture
def app() -> Any:
    app = Longops("sqlite:///:memory:")
    app.migrate()

    @app.task(name="typed")
    def typed(
        ctx: RunContext,
        n: int,
        rate: float = 1.0,
        name: str = "x",
        flag: bool = False,
        tags: list[str] | None = None,
        weights: dict[str, float] | None = None,
        mode: Literal["a", "b"] = "a",
        limit: int = None,  # type: ignore[assignment]  # noqa: RUF013 - an implicit Optional
        anything=None,  # unannotated: anything fits
    ) -> None: ...

    @app.task(name="spread")
    def spread(*items: int, **more: str) -> None: ...

    yield app
    app.close()


GOOD: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((3,), {}),
    ((), {"n": 3, "rate": 2}),  # an integer is a number
    ((3, 2.5, "y", True), {}),
    ((3,), {"tags": ["a"], "weights": {"w": 1}, "mode": "b", "limit": None}),
    ((3,), {"tags": None, "anything": {"any": ["thing"]}}),
]


@pytest.mark.parametrize(("args", "kwargs"), GOOD)
def test_fitting_arguments_are_accepted(app: Any, args: Any, kwargs: Any) -> None:
    app.enqueue("typed", *args, on_hold=True, **kwargs)


BAD = [
    ((), {"n": "lots"}, "kwargs.n", "must be an integer", "lots"),
    (("3",), {}, "args[0]", "must be an integer", "3"),
    ((True,), {}, "args[0]", "must be an integer", True),  # a bool is not an integer
    ((3, "fast"), {}, "args[1]", "must be a number", "fast"),
    ((3,), {"flag": 1}, "kwargs.flag", "must be true or false", 1),
    ((3,), {"name": 5}, "kwargs.name", "must be a string", 5),
    ((3,), {"tags": ["a", 2]}, "kwargs.tags[1]", "must be a string", 2),
    ((3,), {"tags": "a"}, "kwargs.tags", "must be a list", "a"),
    ((3,), {"weights": {"w": "x"}}, "kwargs.weights.w", "must be a number", "x"),
    ((3,), {"weights": [1]}, "kwargs.weights", "must be an object", None),  # not shown
    ((3,), {"mode": "c"}, "kwargs.mode", "must be one of 'a', 'b'", "c"),
    ((3,), {"limit": 2.5}, "kwargs.limit", "must be an integer", 2.5),
]


@pytest.mark.parametrize(("args", "kwargs", "field", "rule", "value"), BAD)
def test_a_bad_type_is_refused_naming_the_argument(
    app: Any, args: Any, kwargs: Any, field: str, rule: str, value: Any
) -> None:
    before = len(app.service.list_operations(OperationQuery()))
    with pytest.raises(ValidationError) as caught:
        app.enqueue("typed", *args, on_hold=True, **kwargs)
    assert (caught.value.field, caught.value.rule, caught.value.value) == (field, rule, value)
    assert len(app.service.list_operations(OperationQuery())) == before


def test_variadic_parameters_check_each_item(app: Any) -> None:
    app.enqueue("spread", 1, 2, on_hold=True, colour="red")
    with pytest.raises(ValidationError, match=r"args\[1\]: must be an integer"):
        app.enqueue("spread", 1, "2", on_hold=True)
    with pytest.raises(ValidationError, match=r"kwargs.colour: must be a string"):
        app.enqueue("spread", on_hold=True, colour=3)
