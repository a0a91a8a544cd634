"""The distributed store: many workers on many machines share one PostgreSQL database.

Claims take a batch with ``FOR UPDATE SKIP LOCKED`` in one statement (``claim_operations``);
only categories and capped companies with work take a turn first, under per-key
transaction-scoped advisory locks (``claim_guard``). Wake-ups use
``LISTEN/NOTIFY``: enqueueing sends ``longops_ready`` in the same transaction, so a
dispatcher hears of an operation exactly when it becomes visible.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar

import orjson
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from longops import telemetry
from longops.domain.errors import NO_SCHEMA, ConfigurationError, DatabaseBusy
from longops.domain.filters import SortKey
from longops.domain.operation import NewOperation, Operation
from longops.domain.status import Status
from longops.store._sql import SqlStore, current_scope_text, in_turns
from longops.store.base import (
    Claimed,
    ClaimedRun,
    ClaimParams,
    ProgressUpdate,
    RunResult,
    StoreOptions,
)
from longops.store.postgres_listen import PostgresCancelListener, PostgresWakeups

CONNECT_TIMEOUT = 10.0


def json_loads(data: str | bytes) -> Any:
    """A json/jsonb column's value (psycopg hands bytes): orjson's parse, a few times the
    standard library's speed (operation rows and the wait context are JSON), except for
    text with a run of 19 digits or more, which the standard library reads: orjson makes an
    integer beyond 64 bits a float, and jsonb may hold one (a task's argument, say)."""
    if isinstance(data, str):
        data = data.encode()
    if _LONG_DIGITS.search(data) is None:
        try:  # not contextlib.suppress: making one costs twice the parse of a small value
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def _fast_json(conn: psycopg.Connection[Any]) -> None:
    """Each pooled connection decodes json/jsonb columns with ``json_loads``."""
    set_json_loads(json_loads, conn)


class PostgresStore(SqlStore):
    """Store on PostgreSQL through a psycopg 3 connection pool.

    Example::

        store = PostgresStore("postgresql://root@127.0.0.1:5432/longops")
        store.migrate()
    """

    dialect = "postgres"
    # The sort keys' expressions, as the indexes of migrations 0015 and 0016 have them; a
    # missing value (not ended, no user) sorts as the largest (time, duration) or the
    # smallest (user).
    SORT_SQL: ClassVar[dict[SortKey, tuple[str, str]]] = {
        SortKey.DESCRIPTION: (
            "coalesce(nullif(description, ''), task)",
            "%(cursor_value)s::text",
        ),
        SortKey.PRIORITY: ("priority", "%(cursor_value)s::integer"),
        SortKey.USER: ("coalesce(user_name, '')", "coalesce(%(cursor_value)s::text, '')"),
        SortKey.EARLIEST_START: ("earliest_start_at", "%(cursor_value)s::timestamptz"),
        SortKey.ENDED: (
            "coalesce(ended_at, 'infinity'::timestamptz)",
            "coalesce(%(cursor_value)s::timestamptz, 'infinity'::timestamptz)",
        ),
        SortKey.DURATION: (
            "coalesce((extract(epoch FROM ended_at - started_at) * 1000000)::bigint,"
            " 9223372036854775807)",
            "coalesce(%(cursor_value)s::bigint, 9223372036854775807)",
        ),
    }

    def __init__(
        self,
        url: str,
        *,
        options: StoreOptions | None = None,
        row_level_security: bool = False,
    ) -> None:
        super().__init__(url)
        self.options = options or StoreOptions()
        self._rls_option = row_level_security
        self.conninfo = with_timeouts(url.replace("postgres://", "postgresql://", 1), self.options)
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
            max_size=self.options.pool_size,
            kwargs={"row_factory": dict_row},
            configure=_fast_json,
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
        self._natives = {
            name: native_placeholders(self.q[name])
            for name in ("claim_operations", "finish_runs", "insert_operation_notify")
        }

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection whose statements make a transaction (committed when the
        block ends, rolled back on an exception)."""
        with self._pooled() as conn:
            if conn.autocommit:  # last used for reads (``_autocommit``)
                conn.autocommit = False
            yield conn

    @contextmanager
    def _pooled(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection as it was left. When one turns out broken (server restarted,
        backend terminated, network cut) the idle ones are most likely dead too: the pool
        drops them all and opens fresh ones, so the next calls do not each meet a dead one."""
        conn: psycopg.Connection[dict[str, Any]] | None = None
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError:
            if conn is not None and conn.broken:
                self._pool.drain()
            raise

    def _rls_enabled(self) -> bool:
        with self._connection() as conn, conn.cursor() as cur:
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
        with self._translated(), self._connection() as conn, conn.cursor() as cur:
            self._scope_cursor(cur)
            yield self.timed(cur)

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """A read. Without row-level security its statements run in autocommit: no BEGIN
        and COMMIT round trips around them (a read-committed transaction would give each
        statement its own snapshot all the same). With it, a transaction carries the scope."""
        if self._rls:
            with self._tx() as cur:
                yield cur
            return
        with self._translated(), self._autocommit() as conn:
            yield self.timed(_read_cursor(conn))

    @contextmanager
    def _autocommit(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection in autocommit. It stays so in the pool (switching costs two
        of psycopg's waits, ~10 us each): a read after a read switches nothing, and
        ``_connection`` switches it back for a transaction."""
        # Not through the pool's ``connection()``: its commit at the end has nothing to
        # commit in autocommit (one more of psycopg's waits).
        conn = self._pool.getconn()
        broken = False
        try:
            if not conn.autocommit:
                conn.autocommit = True
            yield conn
        except psycopg.OperationalError:
            broken = conn.broken
            raise
        finally:
            self._pool.putconn(conn)
            if broken:
                self._pool.drain()  # as ``_pooled`` does

    def _reads(self, statements: Sequence[tuple[str, Mapping[str, Any]]]) -> list[list[Any]]:
        """The reads pipelined: sent together, answered together, one round trip (two with
        row-level security, whose transaction ends with a COMMIT)."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._translated())
            if self._rls:
                conn = stack.enter_context(self._connection())
            else:
                conn = stack.enter_context(self._autocommit())
            stack.enter_context(conn.pipeline())
            began = time.perf_counter()
            if self._rls:
                conn.execute(self.q["set_scope"], {"companies": current_scope_text()})
            cursors = [conn.execute(self.q[name], params) for name, params in statements]
            out = [list(cur.fetchall()) for cur in cursors]
            # The batch's time, named by its first query (the answers arrive together).
            _batch_timed(statements[0][0] if statements else "(none)", began)
            return out

    def _wait_rows(self) -> list[list[Any]]:
        """The nine reads as one statement (``wait_context``): one result of JSON to decode
        instead of nine, and one snapshot. Rows as the nine queries give them."""
        [[row]] = self._reads([("wait_context", {})])
        users = [
            {
                **u,
                "created_at": datetime.fromisoformat(u["created_at"]),
                "disabled_at": None
                if u["disabled_at"] is None
                else datetime.fromisoformat(u["disabled_at"]),
            }
            for u in row["users"]
        ]
        return [
            row["holding"],
            row["categories"],
            row["served"],
            row["running"],
            row["paused"],
            row["companies"],
            users,
            row["members"],
            [
                {
                    **m,
                    "started_at": _json_ts(m["started_at"]),
                    "stopped_at": _json_ts(m["stopped_at"]),
                }
                for m in row["maintenance"]
            ],
        ]

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """The database's refusals as longops errors that say what to do."""
        try:
            yield
        except psycopg.errors.LockNotAvailable as exc:
            raise DatabaseBusy.waited(
                "a lock held by another session was not granted",
                "lock_timeout",
                self.options.lock_timeout,
                "LONGOPS_LOCK_TIMEOUT",
            ) from exc
        except psycopg.errors.QueryCanceled as exc:
            if "statement timeout" not in str(exc):
                raise
            raise DatabaseBusy.waited(
                "a statement did not finish",
                "statement_timeout",
                self.options.statement_timeout,
                "LONGOPS_STATEMENT_TIMEOUT",
            ) from exc
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

    # -- encoders: psycopg adapts these types itself ---------------------------------------------
    def enc_uuid(self, value: uuid.UUID | None) -> Any:
        return value

    def enc_ts(self, value: datetime | None) -> Any:
        return value

    def enc_list(self, value: Sequence[str]) -> Any:
        return list(value)

    def enc_ids(self, ids: Sequence[int]) -> Any:
        return [int(i) for i in ids]

    def dec_uuid(self, value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))

    def dec_ts(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value

    def dec_ts_opt(self, value: Any) -> datetime | None:
        # psycopg hands timestamptz columns as aware datetimes (the row decoding's hot spot).
        return value  # type: ignore[no-any-return]

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

    def _allow_long(self, cur: Any) -> None:
        # This transaction only; it still waits for locks no longer than others do.
        cur.execute(
            "SELECT set_config('statement_timeout', %s, true)",
            [_ms(self.options.maintenance_timeout)],
        )

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
        if len(ops) == 1 and ops[0].dedup_key is None and ops[0].request_hash is None:
            # The common case, one plain operation. Without a dedup key or a client's
            # Operation-Id nothing can conflict but a duplicate id, which _insert_with
            # could not hand back either.
            return [self._insert_one(ops[0])]
        with self._tx() as cur:
            out = self._insert_with(cur, ops)
            self._notify_queues(cur, {op.queue for op in out})
        return out

    def _insert_one(self, op: NewOperation) -> Operation:
        """One plain operation in one round trip: INSERT, NOTIFY and COMMIT are one
        prepared statement in autocommit (``insert_operation_notify``), whose reply is its
        entry number. With row-level security the scope needs a transaction of its own:
        then the scope, the INSERT, the NOTIFY and the COMMIT go out as one pipeline."""
        params = self.new_operation_params(op)
        if self._rls:

            def send(conn: Any) -> list[Any]:
                cur = conn.cursor()
                cur.execute(self.q["insert_operation"], params)
                conn.cursor().execute(self.q["notify_ready"], {"queue": op.queue})
                return [cur]

            [rows] = self._pipelined("insert_operation", send)
            entry_no = rows[0]["entry_no"] if rows else None
        else:
            sql, names = self._natives["insert_operation_notify"]
            with self._translated(), self._autocommit() as conn:
                cur = _enqueue_cursor(conn)
                began = time.perf_counter()
                try:
                    # Prepared by psycopg after a few runs on a connection, as every statement.
                    cur.execute(sql, [params[n] for n in names])
                finally:
                    # Timed as a TimedCursor times it: the statement, not the pool's wait.
                    _batch_timed("insert_operation_notify", began)
                row = cur.fetchone()
            entry_no = None if row is None else row[0]
        if entry_no is None:  # pragma: no cover - ids are new (uuid7) and never reused
            raise RuntimeError(f"operation id {op.id} already exists")
        return self.inserted(op, int(entry_no))

    def insert_operations_bulk(self, ops: Iterable[NewOperation]) -> int:
        """COPY operations in as they come (no dedup keys: see ``insert_operations``).

        With row-level security on, PostgreSQL refuses COPY FROM into the tables, so the
        rows go in as pipelined INSERTs instead (slower, same result).
        """
        if isinstance(ops, Sequence) and any(op.dedup_key is not None for op in ops):
            return len(self.insert_operations(ops))
        queues: set[str] = set()
        count = 0

        def checked() -> Iterator[NewOperation]:
            nonlocal count
            for op in ops:
                if op.dedup_key is not None:
                    raise ConfigurationError("a streamed bulk insert takes no dedup keys")
                queues.add(op.queue)
                count += 1
                yield op

        with self._tx() as cur:
            # One statement as long as the caller's stream of rows (and its validation).
            self._allow_long(cur)
            if self._rls:
                cur.executemany(
                    self.q["insert_operation"], (self.new_operation_params(op) for op in checked())
                )
            else:
                with cur.copy(self.q["copy_operations"]) as copy:
                    copy.set_types(_COPY_TYPES)
                    write = copy.write_row
                    for op in checked():
                        write(_copy_row(op))
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
    def _pipelined(self, name: str, send: Callable[[Any], list[Any]]) -> list[list[dict[str, Any]]]:
        """One transaction sent as one round trip (pipeline mode): ``send(connection)``
        queues the statements on cursors of its own and returns them, a COMMIT statement
        ends them; returns each cursor's last rows, in order.

        Why not ``conn.commit()`` inside the pipeline: psycopg (3.3) syncs a pipeline there
        without making sure libpq's output buffer was written out. A large statement (a
        result of ~20 MB, say) can still sit partly in that buffer when psycopg starts
        waiting for the server's reply; the server, still reading the statement, never
        replies, and both wait forever (the server shows ``ClientRead``). Leaving the
        pipeline flushes the buffer to the end before it waits, so the COMMIT goes in as a
        statement and the pipeline's exit does the sync.

        The batch is timed as one statement named ``name`` (LO0024 past the threshold): its
        statements' answers arrive together, so their separate times mean nothing.
        """
        began = time.perf_counter()
        with self._translated(), self._connection() as conn:
            with conn.pipeline():
                if self._rls:
                    self._scope_cursor(conn.cursor())
                cursors = send(conn)
                conn.cursor().execute("COMMIT")
            try:
                return [cur.fetchall() for cur in cursors]
            finally:
                for cur in cursors:
                    cur.close()
                _batch_timed(name, began)

    def claim(self, params: ClaimParams) -> Claimed:
        finished = params.finished
        args = {
            "session_id": params.session_id,
            "queues": list(params.queues),
            "limit": params.limit,
            "now": params.at(),
            "companies": self.enc_companies(params.companies),
            # One array parameter: the prepared statement stays one statement.
            "tasks": None if params.tasks is None else list(params.tasks),
        }

        def send(conn: Any) -> list[Any]:
            cursors = []
            if finished:
                cursors.append(self._send_finish(conn, finished))
            cur = conn.cursor()
            cur.execute(self.q["claim_plan"])
            cur.execute(self.q["claim_guard"], args)
            return [*cursors, self._native(conn, "claim_operations", args)]

        # One round trip for the results, the claim's turns (if any) and the commit: a
        # turn is held for the server's work only, not for client round trips.
        *done, out = self._pipelined("claim_operations", send)
        chosen = int(out[0]["chosen"]) if out else 0
        rows = [r for r in out if r["id"] is not None]
        rows = in_turns(rows)
        telemetry.claimed(len(rows))
        applied = self._applied_results(finished, done[0]) if finished else []
        return Claimed(
            [ClaimedRun(self.operation(r), int(r["run_count"])) for r in rows],
            applied,
            contended=len(rows) < chosen,
        )

    def finish_runs(self, results: Sequence[RunResult]) -> list[bool]:
        if not results:
            return []
        [rows] = self._pipelined("finish_runs", lambda conn: [self._send_finish(conn, results)])
        return self._applied_results(results, rows)

    def _send_finish(self, conn: Any, results: Sequence[RunResult]) -> Any:
        """Queue the statements that write ``results``; returns the cursor whose rows say
        which applied."""
        # A run's result given twice in one batch (a retry racing its first send): the first
        # spends the lease, as if the second came in a later batch. Sent twice, the UPDATE
        # would take either row and the timeline would get both.
        firsts: dict[tuple[uuid.UUID, uuid.UUID], RunResult] = {}
        for r in results:
            firsts.setdefault((r.operation_id, r.lease_token), r)
        results = list(firsts.values())
        # One JSON parameter for the batch, not 18 arrays: see finish_runs.
        try:
            rows = _encode_rows(results)
        except TypeError as exc:
            # orjson's JSONEncodeError is TypeError itself: text UTF-8 cannot encode (a lone
            # surrogate). Raised as the data error it is (store.faults.is_data_error), as
            # the server's refusal of a value would be.
            raise psycopg.DataError(f"a run result could not be encoded: {exc}") from exc
        # The ids as an array literal (a uuid needs no quoting), read as uuid[].
        ids = "{" + ",".join([str(r.operation_id) for r in results]) + "}"
        cur = self._native(conn, "finish_runs", {"rows": rows, "ids": ids})
        # A wake-up only when it can let another dispatcher claim (see notify_finished).
        conn.cursor().execute(self.q["notify_finished"], {"ids": ids})
        return cur

    def _native(self, conn: Any, name: str, params: Mapping[str, Any]) -> Any:
        """Execute the query ``name`` in PostgreSQL's own ``$n`` placeholders, converted
        once (:func:`native_placeholders`), on a new raw cursor; returns the cursor.

        For the hot statements longer than psycopg caches: psycopg converts a ``%(name)s``
        query to ``$n`` on every execute, and caches the conversion only for queries of up
        to 4,096 characters. ``claim_operations`` (9.5 kB) and ``finish_runs`` (4.5 kB)
        cost 170 and 110 us of the client's CPU per call that way, on every claim. The text
        sent, hence the prepared statement, is the same as psycopg's conversion gives."""
        sql, names = self._natives[name]
        cur = psycopg.RawCursor(conn, row_factory=dict_row)
        cur.execute(sql, [params[n] for n in names])
        return cur

    @staticmethod
    def _applied_results(results: Sequence[RunResult], rows: list[dict[str, Any]]) -> list[bool]:
        applied = {(row["id"], row["lease_token"]) for row in rows}
        answers = []
        for r in results:
            key = (r.operation_id, r.lease_token)
            answers.append(key in applied)
            applied.discard(key)  # only its first result in the batch was sent
        return answers

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


_READY = Status.READY
_COPY_TYPES = (
    "uuid", "text", "text", "text", "text", "text", "text", "int4", "text",
    "timestamptz", "timestamptz", "int4", "int4", "text", "float8",
    "text", "text", "timestamptz", "timestamptz", "timestamptz", "text", "text",
    "float8", "text", "text",
)  # fmt: skip
"""The types ``_copy_row``'s values are sent as in binary COPY: each column's own, but
text for the json ones (a json value's binary form is its text)."""


def _copy_row(op: NewOperation) -> tuple[Any, ...]:
    """``op`` as a row of ``copy_operations``: its columns in order, the values
    ``new_operation_params`` gives (a tuple built at once: bulk enqueue is a hot path)."""
    created = op.created_at
    policy = op.retry_policy
    rec = op.recurrence
    perm = op.required_permission
    return (
        op.id,
        op.company,
        op.task,
        op.args_json,
        op.description,
        op.queue,
        op.category,
        int(op.priority),
        op.status.value,
        op.earliest_start_at,
        op.expires_at,
        op.max_attempts,
        op.rerun_delay,
        None if policy is None else json.dumps(policy),
        op.timeout.total_seconds(),
        None if rec is None else json.dumps(rec.to_json()),
        op.user,
        created,
        created,
        created if op.status is _READY else None,
        op.dedup_key,
        json.dumps(dict(op.labels)) if op.labels else "{}",
        op.stall_after.total_seconds(),
        None if perm is None else perm.value,
        op.trace_context,
    )


def _read_cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """The pooled connection's own cursor for reads in autocommit (``_read``), made on its
    first, for the reason ``_enqueue_cursor`` gives (a new cursor's adapters, ~40 us a
    read). Each read executes on it anew, which drops the previous read's result."""
    cur: psycopg.Cursor[Any] | None = getattr(conn, "_longops_read", None)
    if cur is None or cur.closed:
        cur = conn.cursor()
        conn._longops_read = cur  # type: ignore[attr-defined]
    return cur


def _enqueue_cursor(conn: psycopg.Connection[Any]) -> psycopg.RawCursor[tuple[Any, ...]]:
    """The pooled connection's own cursor for one-by-one enqueues, made on its first: a new
    cursor sets up its parameters' adapters anew, some 40 us of the client's CPU on each
    call (a third of psycopg's share of an enqueue). It lives as long as its connection.

    A raw cursor (``$n`` placeholders, converted once at store start: no conversion of the
    named ones on each call) with tuple rows (no column names looked up per reply)."""
    cur: psycopg.RawCursor[tuple[Any, ...]] | None = getattr(conn, "_longops_enqueue", None)
    if cur is None or cur.closed:
        cur = psycopg.RawCursor(conn, row_factory=tuple_row)
        conn._longops_enqueue = cur  # type: ignore[attr-defined]
    return cur


_NAMED = re.compile(r"%%|%\((\w+)\)s")


def native_placeholders(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` (psycopg's ``%(name)s`` style) with PostgreSQL's own placeholders: each name
    becomes ``$n``, numbered by its first appearance, as psycopg numbers them; ``%%``
    becomes ``%``. Also returns the names in ``$n`` order.

    Example::

        native_placeholders("SELECT %(a)s, %(b)s, %(a)s")
        # ('SELECT $1, $2, $1', ('a', 'b'))
    """
    names: list[str] = []

    def replace(m: re.Match[str]) -> str:
        name = m[1]
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAMED.sub(replace, sql), tuple(names)


def _json_ts(value: str | None) -> datetime | None:
    """A timestamp as PostgreSQL's JSON writes it, back to a datetime."""
    return None if value is None else datetime.fromisoformat(value)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


def with_timeouts(url: str, options: StoreOptions) -> str:
    """The connection string with longops' timeouts as server options of every session.

    Sent at connection start-up (``options=-c ...``), so they hold for every connection
    longops opens and no statement runs before them; options the URL already carries are
    kept, ahead of ours, and ours win where both set the same one.
    """
    params = conninfo_to_dict(url)
    ours = " ".join(
        f"-c {name}={_ms(seconds)}"
        for name, seconds in (
            ("lock_timeout", options.lock_timeout),
            ("statement_timeout", options.statement_timeout),
            ("idle_in_transaction_session_timeout", options.idle_in_transaction_timeout),
        )
    )
    theirs = str(params.get("options") or "").strip()
    params["options"] = f"{theirs} {ours}".strip()
    return make_conninfo("", **params)


def _batch_timed(name: str, began: float) -> None:
    """Report a pipelined batch begun at ``began`` (``perf_counter``) as one statement named
    ``name``: counted when telemetry counts every statement, LO0024 past the threshold."""
    elapsed = time.perf_counter() - began
    slow_after, every = telemetry.sql_timing()
    if every or elapsed >= slow_after:
        telemetry.sql_timed(name, elapsed)


def _encode_rows(results: Sequence[RunResult]) -> str:
    """``results`` as finish_runs' one JSON parameter (orjson writes uuids and aware
    datetimes itself: RFC 3339, which timestamptz reads)."""
    return orjson.dumps(
        [
            {
                "id": r.operation_id,
                "lease_token": r.lease_token,
                "run_no": r.run_no,
                "at": r.at,
                "outcome": r.outcome.value,
                "status": r.status.value,
                "status_reason": r.status_reason,
                "earliest_start_at": r.earliest_start_at,
                "attempt_count": r.attempt_count,
                "error_message": r.error_message,
                "traceback": r.traceback,
                "result": r.result_json,
                "run_started_at": r.started_at,
                "progress": r.progress_json,
                "stop_mode": None if r.stop_mode is None else r.stop_mode.value,
                "cancel_mode": None if r.cancel_mode is None else r.cancel_mode.value,
                "clear_checkpoint": r.clear_checkpoint,
                "peak_rss": r.peak_rss,
            }
            for r in results
        ]
    ).decode()
