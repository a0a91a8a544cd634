"""The task application the benchmarks run: one no-op task, so every figure measures longops.

Workers load it with ``longops --app bench_app:app`` (``benchmarks/`` on ``PYTHONPATH``); the
benchmark driver builds its own app on a given database with :func:`make_app`.
"""

from __future__ import annotations

from longops import Longops

TASK = "bench.noop"

app = Longops()


def noop() -> None:
    """Do nothing: the run costs only what longops itself spends on it."""


app.task(name=TASK)(noop)


def make_app(database_url: str) -> Longops:
    """A ``Longops`` on ``database_url`` with the benchmark task registered."""
    bench = Longops(database_url)
    bench.task(name=TASK)(noop)
    return bench
