"""The distributed store: many workers on many machines share one PostgreSQL database.

Claims take a short turn under a transaction-scoped advisory lock and then claim a batch
with ``FOR UPDATE SKIP LOCKED`` in one statement (see ``claim_operations``). Wake-ups use
``LISTEN/NOTIFY``: enqueueing sends ``longops_ready`` in the same transaction, so a
dispatcher hears of an operation exactly when it becomes visible.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from longops import telemetry
from longops.domain.errors import NO_SCHEMA, ConfigurationError
from longops.domain.operation import NewOperation, Operation
from longops.store._sql import SqlStore, current_scope_text
from longops.store.base import ClaimedRun, ClaimParams, ProgressUpdate, RunResult

CONNECT_TIMEOUT = 10.0


class PostgresStore(SqlStore):
    """Store on PostgreSQL through a psycopg 3 connection pool.

    Example::

        store = PostgresStore("postgresql://root@127.0.0.1:5432/longops")
        store.migrate()
    """

    dialect = "postgres"

    def __init__(self, url: str, *, pool_size: int = 8, row_level_security: bool = False) -> None:
        super().__init__(url)
        self._rls_option = row_level_security
        self.conninfo = url.replace("postgres://", "postgresql://", 1)
        try:
            # One direct attempt first: a wrong host, database or role fails now, with the
            # server's own words, instead of after the pool's retries.
            psycopg.connect(self.conninfo, connect_timeout=int(CONNECT_TIMEOUT)).close()
        except psycopg.Error as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = " ".join(lines) or type(exc).__name__
            raise ConfigurationError(
                f"cannot connect to PostgreSQL at {_redact(url)}: {reason}"
            ) from exc
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"row_factory": dict_row},
            open=True,
            timeout=CONNECT_TIMEOUT,
            name="longops",
        )
        telemetry.watch_pool(self)
        try:
            self._pool.wait(timeout=CONNECT_TIMEOUT)
        except PoolTimeout as exc:
            self._pool.close()
            raise ConfigurationError(
                f"cannot connect to PostgreSQL at {_redact(url)} within {CONNECT_TIMEOUT:g} s"
            ) from exc
        # Scope every transaction when asked to, and also when the database already enforces
        # the policies: unscoped, a transaction would see no rows at all.
        self._rls = row_level_security or self._rls_enabled()

    def _rls_enabled(self) -> bool:
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.execute(self.q["rls_enabled"])
            row = cur.fetchone()
        return bool(row and row["enabled"])

    @property
    def row_level_security(self) -> bool:
        """True when every transaction is scoped to its actor's companies."""
        return self._rls

    def close(self) -> None:
        self._pool.close()

    def pool_stats(self) -> tuple[int, int, int] | None:
        """Connections in use, idle, and requests waiting (the pool metric); None if closed."""
        if self._pool.closed:
            return None
        stats = self._pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        return size - idle, idle, stats.get("requests_waiting", 0)

    def migrate(self) -> list[str]:
        """Apply pending migrations; with ``row_level_security``, also enable and force the
        policies (the tables' owner must run this)."""
        applied = super().migrate()
        if self._rls_option:
            with self._tx() as cur:
                cur.execute(self.q["enable_row_level_security"])
        return applied

    def _scope_cursor(self, cur: Any) -> None:
        if self._rls:
            cur.execute(self.q["set_scope"], {"companies": current_scope_text()})

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        # The pool commits on a clean exit and rolls back on an exception.
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                self._scope_cursor(cur)
                yield self.timed(cur)
        except psycopg.errors.UndefinedTable as exc:
            if "longops_" in str(exc):
                raise ConfigurationError(NO_SCHEMA) from exc
            raise
        except psycopg.errors.InsufficientPrivilege as exc:
            reason = exc.diag.message_primary or str(exc).splitlines()[0]
            raise ConfigurationError(
                f"the database refused this role: {reason} (changing the schema needs the "
                "role that owns the longops tables; using them needs SELECT, INSERT, UPDATE "
                "and DELETE on them)"
            ) from exc

    _read = _tx

    # -- encoders: psycopg adapts these types itself ---------------------------------------------
    def enc_uuid(self, value: uuid.UUID | None) -> Any:
        return value

    def enc_ts(self, value: datetime | None) -> Any:
        return value

    def enc_json(self, value: Any) -> Any:
        return None if value is None else json.dumps(value)

    def enc_list(self, value: Sequence[str]) -> Any:
        return list(value)

    def enc_ids(self, ids: Sequence[int]) -> Any:
        return [int(i) for i in ids]

    def dec_uuid(self, value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    def dec_ts(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value

    def dec_json(self, value: Any) -> Any:
        # psycopg has already decoded json columns (a JSON string arrives as a Python str
        # and must not be parsed again).
        return value

    def dec_list(self, value: Any) -> list[str]:
        return list(value)

    def _apply_migration_script(self, cur: Any, sql: str) -> None:
        cur.execute(sql)

    def _migration_lock(self, cur: Any) -> None:
        cur.execute(self.q["migration_lock"])

    # -- operations ---------------------------------------------------------------------------
    def insert_operations(
        self, ops: Sequence[NewOperation], *, connection: Any = None
    ) -> list[Operation]:
        """Insert operations and notify dispatchers in the same transaction.

        With ``connection`` (a psycopg connection of the caller's), the rows and the
        notification join the caller's open transaction and exist only if it commits.
        """
        if connection is not None:
            if not isinstance(connection, psycopg.Connection):
                raise ConfigurationError("connection must be a psycopg 3 Connection")
            with connection.cursor(row_factory=dict_row) as cur:
                self._scope_cursor(cur)
                out = self._insert_with(cur, ops)
                self._notify_queues(cur, {op.queue for op in out})
            return out
        with self._tx() as cur:
            out = self._insert_with(cur, ops)
            self._notify_queues(cur, {op.queue for op in out})
        return out

    def insert_operations_bulk(self, ops: Iterable[NewOperation]) -> int:
        """COPY operations in as they come (no dedup keys: see ``insert_operations``).

        With row-level security on, PostgreSQL refuses COPY FROM into the tables, so the
        rows go in as pipelined INSERTs instead (slower, same result).
        """
        if isinstance(ops, Sequence) and any(op.dedup_key is not None for op in ops):
            return len(self.insert_operations(ops))
        columns = (
            "id", "company", "task", "args", "description", "queue", "category", "priority",
            "status", "earliest_start_at", "expires_at", "max_attempts", "rerun_delay",
            "retry_policy", "timeout_seconds", "recurrence", "user_name", "created_at",
            "created_at", "ready_at", "dedup_key", "labels", "stall_after_seconds",
            "required_permission", "trace_context",
        )  # fmt: skip
        queues: set[str] = set()
        count = 0

        def rows() -> Iterator[dict[str, Any]]:
            nonlocal count
            for op in ops:
                if op.dedup_key is not None:
                    raise ConfigurationError("a streamed bulk insert takes no dedup keys")
                queues.add(op.queue)
                count += 1
                yield self.new_operation_params(op)

        with self._tx() as cur:
            if self._rls:
                cur.executemany(self.q["insert_operation"], rows())
            else:
                with cur.copy(self.q["copy_operations"]) as copy:
                    for p in rows():
                        copy.write_row(tuple(p[c] for c in columns))
            self._notify_queues(cur, queues)
        return count

    def _notify_queues(self, cur: Any, queues: set[str]) -> None:
        for queue in sorted(queues):
            cur.execute(self.q["notify_ready"], {"queue": queue})

    def _wake(self, queue: str) -> None:
        with self._tx() as cur:
            self._notify_queues(cur, {queue})

    def _cancel_requested(self, cur: Any, operation_id: uuid.UUID) -> None:
        # Sent with the request's transaction: a worker hears of it when it is visible.
        cur.execute(self.q["notify_cancel"], {"id": str(operation_id)})

    def cancel_listener(self) -> PostgresCancelListener:
        return PostgresCancelListener(self.conninfo)

    # -- running ----------------------------------------------------------------------------
    def claim(self, params: ClaimParams) -> list[ClaimedRun]:
        with self._pool.connection() as conn, conn.cursor() as cur:
            # One round trip for lock, claim and commit (pipeline mode): the claim turn is
            # held for the server's work only, not for client round trips.
            with conn.pipeline():
                self._scope_cursor(cur)
                cur.execute(self.q["claim_plan"])
                cur.execute(self.q["claim_lock"])
                cur.execute(
                    self.q["claim_operations"],
                    {
                        "session_id": params.session_id,
                        "queues": list(params.queues),
                        "limit": params.limit,
                        "now": params.at(),
                        "companies": self.enc_companies(params.companies),
                    },
                )
                conn.commit()
            rows = cur.fetchall()
        rows.sort(key=lambda r: (r["priority"], r["entry_no"]))
        telemetry.claimed(len(rows))
        return [ClaimedRun(self.operation(r), int(r["run_count"])) for r in rows]

    def finish_runs(self, results: Sequence[RunResult]) -> list[bool]:
        if not results:
            return []
        columns = {
            "ids": [r.operation_id for r in results],
            "leases": [r.lease_token for r in results],
            "run_nos": [r.run_no for r in results],
            "ats": [r.at for r in results],
            "outcomes": [r.outcome.value for r in results],
            "statuses": [r.status.value for r in results],
            "reasons": [r.status_reason for r in results],
            "starts": [r.earliest_start_at for r in results],
            "attempt_counts": [r.attempt_count for r in results],
            "errors": [r.error_message for r in results],
            "tracebacks": [r.traceback for r in results],
            "results": [r.result_json for r in results],
            "run_starts": [r.started_at for r in results],
            "progresses": [r.progress_json for r in results],
            "stop_modes": [None if r.stop_mode is None else r.stop_mode.value for r in results],
            "cancel_modes": [
                None if r.cancel_mode is None else r.cancel_mode.value for r in results
            ],
            "clear_checkpoints": [r.clear_checkpoint for r in results],
        }
        with self._pool.connection() as conn, conn.cursor() as cur:
            # One round trip (pipeline mode). The notification goes out whatever applied: a
            # finished run frees a worker slot and perhaps a category slot, and a retried
            # one is ready again, so other dispatchers should look; when nothing applied
            # (all fenced) the extra wake-up costs one empty claim.
            with conn.pipeline():
                self._scope_cursor(cur)
                cur.execute(self.q["finish_runs"], columns)
                rows_cursor = conn.cursor()
                rows_cursor.execute(self.q["notify_ready"], {"queue": "*"})
                conn.commit()
            applied = {(row["id"], row["lease_token"]) for row in cur.fetchall()}
        return [(r.operation_id, r.lease_token) in applied for r in results]

    def flush_progress(self, updates: Sequence[ProgressUpdate]) -> list[bool]:
        if not updates:
            return []
        with self._tx() as cur:
            cur.execute(
                self.q["flush_progress"],
                {
                    "ids": [u.operation_id for u in updates],
                    "leases": [u.lease_token for u in updates],
                    "ats": [u.at for u in updates],
                    "progresses": [u.progress_json for u in updates],
                    "moved": [u.moved for u in updates],
                },
            )
            rows = cur.fetchall()
        applied = {(row["id"], row["lease_token"]) for row in rows}
        telemetry.progress_written(len(applied))
        telemetry.unstalled(row["id"] for row in rows if row["unstalled"])
        return [(u.operation_id, u.lease_token) in applied for u in updates]

    # -- live streams -------------------------------------------------------------------------
    def writers_snapshot(self) -> str | None:
        r = self._one("writers_snapshot")
        return None if r is None else str(r["snapshot"])

    def writers_done(self, token: str) -> bool:
        r = self._one("writers_done", {"snapshot": token})
        return r is not None and bool(r["done"])

    def wakeups(self) -> PostgresWakeups:
        return PostgresWakeups(self.conninfo)


class PostgresWakeups:
    """A dedicated connection that LISTENs for ready operations."""

    def __init__(self, conninfo: str) -> None:
        self._conn = psycopg.connect(conninfo, autocommit=True)
        self._conn.execute("LISTEN longops_ready")

    def wait(self, timeout: float) -> bool:
        woke = False
        for _ in self._conn.notifies(timeout=max(timeout, 0.0), stop_after=1):
            woke = True
        if woke:
            # Drain what else arrived so one burst of enqueues costs one wake-up.
            for _ in self._conn.notifies(timeout=0.0):
                pass
        return woke

    def close(self) -> None:
        self._conn.close()


class PostgresCancelListener:
    """A dedicated connection that LISTENs for cancel requests (payload: operation id)."""

    def __init__(self, conninfo: str) -> None:
        self._conn = psycopg.connect(conninfo, autocommit=True)
        self._conn.execute("LISTEN longops_cancel")

    def wait(self, timeout: float) -> list[uuid.UUID]:
        found: list[uuid.UUID] = []
        for note in self._conn.notifies(timeout=max(timeout, 0.0), stop_after=1):
            found.append(uuid.UUID(note.payload))
        if found:
            for note in self._conn.notifies(timeout=0.0):
                found.append(uuid.UUID(note.payload))
        return found

    def close(self) -> None:
        self._conn.close()


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
