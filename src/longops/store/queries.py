"""Loads the named queries of a dialect from ``sql/<dialect>/queries.sql`` once.

A query starts at a ``-- name: <query_name>`` line and runs to the next one.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@functools.cache
def load_queries(dialect: str) -> dict[str, str]:
    text = resources.files("longops.store").joinpath("sql", dialect, "queries.sql").read_text()
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    # parts = [preamble, name1, body1, name2, body2, ...]
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise RuntimeError(f"query {name} is defined twice in {dialect}/queries.sql")
        queries[name] = body.strip().rstrip(";").strip()
    return queries
