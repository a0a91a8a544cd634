"""Enqueue checks the number of positional arguments without ``Signature.bind`` when no
keyword arguments are given (the hot path); it must decide exactly as ``bind`` does."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from longops.worker.registry import _fits_positionally


def _plain(a: int, b: int) -> None: ...
def _defaults(a: int, b: int = 1, c: int = 2) -> None: ...
def _none() -> None: ...
def _varargs(a: int, *rest: int) -> None: ...
def _kwonly_default(a: int, *, k: int = 1) -> None: ...
def _kwonly_required(a: int, *, k: int) -> None: ...
def _varkw(a: int = 0, **more: Any) -> None: ...
def _posonly(a: int, /, b: int = 0) -> None: ...


@pytest.mark.parametrize(
    "fn",
    [_plain, _defaults, _none, _varargs, _kwonly_default, _kwonly_required, _varkw, _posonly],
)
def test_the_positional_count_check_agrees_with_bind(fn: Any) -> None:
    sig = inspect.signature(fn)
    for count in range(6):
        try:
            sig.bind(*range(count))
            binds = True
        except TypeError:
            binds = False
        assert _fits_positionally(sig, count) == binds, (fn.__name__, count)
