"""What each index and foreign key of ``longops_operations`` costs an enqueue on PostgreSQL:
the server's CPU per row of a bulk enqueue (binary COPY, ``copy_operations``) and per
one-by-one enqueue (``insert_operation_notify``, autocommit), with every index, and then with
one index or foreign key dropped at a time. Run from the project root, under the bench
lock::

    flock /work/wt/bench.lock .venv/bin/python benchmarks/insert_costs.py [ROUNDS]

Each configuration is a database of its own copied from one migrated template (so every one
starts from an empty table), dropped after; the rows are the peers benchmark's (task
``peers.noop``, two arguments, no user, no category), built once by longops and sent as they
are. The backend's CPU is read from ``/proc`` for the connection's own backend pid (its user
and system time), so the figures hold no client work; the walwriter's and the checkpointer's
share is not in them. Every configuration is measured ``ROUNDS`` times (default 2), the
rounds interleaved, and the median reported. Findings: ``results/enqueue-notes.md``.

Nothing here changes the project's indexes: it measures what each would save if dropped.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

ADMIN_URL = os.environ.get("LONGOPS_BENCH_PG_URL", "postgresql://root@127.0.0.1:5432/postgres")
TICK = os.sysconf("SC_CLK_TCK")
BULK = 5_000
BULK_BATCHES = 4
ONE = 1_000
EXPLAINED = 20


def url_of(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@contextmanager
def database(name: str, template: str | None = None) -> Iterator[str]:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    try:
        yield url_of(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def wal_lsn(conn: Any) -> int:
    row = conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn AS at").fetchone()
    return int(row["at"])


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rows_and_params(url: str) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]], Any]:
    """``BULK * BULK_BATCHES`` COPY rows and ``ONE`` INSERT parameter sets (fresh ids)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
    import jobs_longops

    from longops import EnqueueRequest
    from longops.store.postgres import _copy_row

    client = jobs_longops._client(url)
    svc, store = client.service, client.store
    now = time.time()
    built = list(
        svc.builder.build_many(
            (
                EnqueueRequest(task=jobs_longops.TASK, args=(n, now))
                for n in range(BULK * BULK_BATCHES)
            ),
            svc.actor,
        )
    )
    copy_rows = [_copy_row(op) for op in built]
    params = [
        store.new_operation_params(svc.build(EnqueueRequest(task=jobs_longops.TASK, args=(n, now))))
        for n in range(ONE)
    ]
    return copy_rows, params, client


def measure(
    url: str, drop: str | None, copy_rows: list[Any], params: list[Any], q: Any
) -> dict[str, float]:
    from longops.domain.ids import new_id
    from longops.store.postgres import _COPY_TYPES

    # prepare_threshold 0: the one-by-one INSERT is a prepared statement from the start.
    with psycopg.connect(url, autocommit=True, row_factory=dict_row, prepare_threshold=0) as conn:
        for statement in [] if drop is None else drop.split("; "):
            conn.execute(statement)
        pid = conn.info.backend_pid
        out: dict[str, float] = {}
        # Bulk: BULK_BATCHES transactions of BULK rows each.
        w0, c0, t0 = wal_lsn(conn), backend_cpu(pid), time.perf_counter()
        for b in range(BULK_BATCHES):
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(q["copy_operations"]) as copy,
            ):
                copy.set_types(_COPY_TYPES)
                for row in copy_rows[b * BULK : (b + 1) * BULK]:
                    copy.write_row(row)
        n = BULK * BULK_BATCHES
        out["bulk server us/row"] = (backend_cpu(pid) - c0) / n * 1e6
        out["bulk wall us/row"] = (time.perf_counter() - t0) / n * 1e6
        out["bulk WAL bytes/row (server-wide)"] = (wal_lsn(conn) - w0) / n
        # One by one: autocommit, the prepared statement.
        cur = conn.cursor()
        c0, t0 = backend_cpu(pid), time.perf_counter()
        for p in params[:-EXPLAINED]:
            cur.execute(q["insert_operation_notify"], p)
            cur.fetchall()
        calls = len(params) - EXPLAINED
        out["one server us/call"] = (backend_cpu(pid) - c0) / calls * 1e6
        out["one wall us/call"] = (time.perf_counter() - t0) / calls * 1e6
        # The statement's own WAL (EXPLAIN's, not the server's: others write too).
        records = size = 0
        for p in params[-EXPLAINED:]:
            cur.execute("EXPLAIN (ANALYZE, WAL, FORMAT JSON) " + q["insert_operation_notify"], p)
            plan = cur.fetchone()["QUERY PLAN"][0]["Plan"]  # type: ignore[index]
            records += plan["WAL Records"]
            size += plan["WAL Bytes"]
        out["one WAL records/call"] = records / EXPLAINED
        out["one WAL bytes/call"] = size / EXPLAINED
        if drop is None:
            # The statement's own parts: without the wake-up, without ON CONFLICT.
            sql = q["insert_operation_notify"]
            for label, variant in (
                ("one without pg_notify", _without_notify(sql)),
                ("one without ON CONFLICT", sql.replace("ON CONFLICT DO NOTHING", "")),
            ):
                again = [{**p, "id": new_id(datetime.now(UTC))} for p in params]
                c0, t0 = backend_cpu(pid), time.perf_counter()
                for p in again:
                    cur.execute(variant, p)
                    cur.fetchall()
                out[f"{label}: server us/call"] = (backend_cpu(pid) - c0) / len(again) * 1e6
        return out


def _without_notify(sql: str) -> str:
    head, _, _ = sql.partition("woken AS")
    return head.rstrip().rstrip(",") + "\nSELECT ins.entry_no FROM ins"


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 2
    tag = f"insert_costs_{os.getpid()}"
    template = f"{tag}_t"
    with database(template) as turl:
        from longops.store.postgres import PostgresStore

        store = PostgresStore(turl)
        store.migrate()
        q = store.q
        store.close()
        with psycopg.connect(turl, autocommit=True) as conn:
            indexes = [
                r[0]
                for r in conn.execute(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'longops_operations'"
                    " AND indexname NOT IN ('longops_operations_pkey') ORDER BY 1"
                )
            ]
            fkeys = [
                r[0]
                for r in conn.execute(
                    "SELECT conname FROM pg_constraint WHERE conrelid ="
                    " 'longops_operations'::regclass AND contype = 'f' ORDER BY 1"
                )
            ]
        configs: dict[str, str | None] = {"every index and foreign key": None}
        for name in indexes:
            if name == "longops_operations_entry_no_key":
                stmt = f"ALTER TABLE longops_operations DROP CONSTRAINT {name}"
            else:
                stmt = f"DROP INDEX {name}"
            configs[f"without {name}"] = stmt
        for name in fkeys:
            configs[f"without {name}"] = f"ALTER TABLE longops_operations DROP CONSTRAINT {name}"
        keep = ("longops_operations_pkey", "longops_operations_entry_no_key")
        configs["only pkey and entry_no (no other index, no foreign key)"] = "; ".join(
            [f"DROP INDEX {n}" for n in indexes if n not in keep]
            + [f"ALTER TABLE longops_operations DROP CONSTRAINT {n}" for n in fkeys]
        )
        # Built once (the same ids in every configuration's database of their own).
        copy_rows, params, client = rows_and_params(turl)
        client.close()
        results: dict[str, list[dict[str, float]]] = {}
        for r in range(rounds):
            for i, (label, drop) in enumerate(configs.items()):
                with database(f"{tag}_{i}", template) as url:
                    results.setdefault(label, []).append(measure(url, drop, copy_rows, params, q))
                print(f"round {r + 1}: {label} done", file=sys.stderr, flush=True)
    keys = [k for k in next(iter(results.values()))[0] if ":" not in k]
    extra = [k for k in results["every index and foreign key"][0] if ":" in k]
    base = {
        k: statistics.median(x[k] for x in results["every index and foreign key"]) for k in keys
    }
    print(
        f"load average at end: {os.getloadavg()}; rounds: {rounds}; "
        f"bulk {BULK_BATCHES} x {BULK} rows, one-by-one {ONE} calls"
    )
    print("| configuration | " + " | ".join(keys) + " | bulk server saved | one server saved |")
    print("|---|" + "---|" * (len(keys) + 2))
    for label, rows in results.items():
        med = {k: statistics.median(x[k] for x in rows) for k in keys}
        saved_bulk = base["bulk server us/row"] - med["bulk server us/row"]
        saved_one = base["one server us/call"] - med["one server us/call"]
        print(
            f"| {label} | "
            + " | ".join(f"{med[k]:.1f}" for k in keys)
            + f" | {saved_bulk:.1f} | {saved_one:.1f} |"
        )
    for k in extra:
        value = statistics.median(x[k] for x in results["every index and foreign key"])
        print(f"- {k} {value:.1f} (every index: {base['one server us/call']:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
