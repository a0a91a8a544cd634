"""The claim's transaction runs without JIT on PostgreSQL.

Its prepared statement always uses the generic plan, which does not know the batch size;
once autovacuum has analysed a large backlog the plan's estimated cost passes
``jit_above_cost`` and PostgreSQL compiled it on every claim (0.2-2 s a claim for a plan
that runs in milliseconds: benchmarks/results/scale-notes.md). ``claim_plan``, sent first
in the claim's transaction, turns JIT off for that transaction only.
"""

from __future__ import annotations

import psycopg
import pytest

from longops import Longops


@pytest.mark.postgres
def test_the_claims_transaction_turns_jit_off_for_itself_only(pg_url: str) -> None:
    app = Longops(pg_url)
    try:
        claim_plan = app.store.q["claim_plan"]  # type: ignore[attr-defined]
    finally:
        app.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SHOW jit").fetchone() == ("on",)  # the server's default
        with conn.transaction():
            conn.execute(claim_plan)
            assert conn.execute("SHOW jit").fetchone() == ("off",)
            assert conn.execute("SHOW plan_cache_mode").fetchone() == ("force_generic_plan",)
        # Set with is_local: the next transaction (another query of the application on a
        # pooled connection) has the server's settings again.
        assert conn.execute("SHOW jit").fetchone() == ("on",)
        assert conn.execute("SHOW plan_cache_mode").fetchone() == ("auto",)
