"""A ``longops`` command with experimental tweaks, for ``profile_core.py``'s what-if drains.

It measures what a change to longops would buy without editing longops: each tweak is
switched on by an environment variable and applied before the usual command runs::

    LONGOPS_BENCH_UNPREPARED=finish_runs python benchmarks/whatif_worker.py --app ... worker

- ``LONGOPS_BENCH_UNPREPARED``: comma-separated PostgreSQL query names (from
  ``store/sql/postgres/queries.sql``) that are always sent unprepared, so PostgreSQL plans
  each execution for its parameters instead of reusing a cached generic plan;
- ``LONGOPS_BENCH_SQLITE_CLAIM_REWRITE=1``: SQLite's ``claim_operations`` with the edits in
  ``SQLITE_CLAIM_REWRITES`` applied.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import psycopg

from longops.store.queries import load_queries

SQLITE_CLAIM_REWRITES = [
    (
        "ranked driven from free_slots (CROSS JOIN fixes SQLite's join order)",
        "FROM longops_operations o\n      JOIN free_slots f ON f.company = o.company"
        " AND f.code = o.category",
        "FROM free_slots f\n      CROSS JOIN longops_operations o ON f.company = o.company"
        " AND f.code = o.category",
    ),
    (
        "uncategorized kept off ready_due (unary + on queue and earliest_start_at)",
        "AND o.queue IN (SELECT name FROM served)\n           AND o.earliest_start_at <= :now",
        "AND +o.queue IN (SELECT name FROM served)\n           AND +o.earliest_start_at <= :now",
    ),
]
"""Candidate edits of SQLite's claim_operations, applied cumulatively where their text is
found; each label says what it changes. They were written against the claim before
companies took turns (issue 4); that claim pins its indexes with INDEXED BY in both parts,
so none of them applies to it any more."""


def rewrites(query: str, edits: Sequence[tuple[str, str, str]]) -> dict[str, str]:
    """The shipped query, then each edit applied on top of the previous ones (if found)."""
    variants = {"as shipped": query}
    current = query
    for label, old, new in edits:
        if old in current:
            current = current.replace(old, new)
            variants[("+ " if len(variants) > 1 else "") + label] = current
    return variants


def unprepare(names: Sequence[str]) -> None:
    texts = {load_queries("postgres")[name] for name in names}
    original = psycopg.Cursor.execute

    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if isinstance(query, str) and query in texts:
            kwargs["prepare"] = False
        return original(self, query, params, **kwargs)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]


def rewrite_sqlite_claim() -> None:
    queries = load_queries("sqlite")  # cached: the store reads this same dict
    variants = list(rewrites(queries["claim_operations"], SQLITE_CLAIM_REWRITES).values())
    if len(variants) < 2:
        raise SystemExit("none of SQLITE_CLAIM_REWRITES applies to this claim_operations")
    queries["claim_operations"] = variants[-1]


def main() -> int:
    names = [n for n in os.environ.get("LONGOPS_BENCH_UNPREPARED", "").split(",") if n]
    if names:
        unprepare(names)
    if os.environ.get("LONGOPS_BENCH_SQLITE_CLAIM_REWRITE") == "1":
        rewrite_sqlite_claim()
    from longops.cli.main import main as longops_main

    sys.argv[0] = "longops"
    longops_main()  # exits through SystemExit with the command's code
    return 0


if __name__ == "__main__":
    sys.exit(main())
