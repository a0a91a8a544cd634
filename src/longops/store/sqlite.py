"""The embedded store: one SQLite file in WAL mode, right for one machine.

Writers take SQLite's single write lock with ``BEGIN IMMEDIATE`` and a busy timeout, so
claims from several worker processes on the same file are serialised by the database.
Each thread gets its own connection. Wake-ups come from an in-process signal when the
writer is in this process, and otherwise from ``PRAGMA data_version``, which changes when
another connection commits and costs no disk read to check.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from longops import telemetry
from longops.domain.errors import (
    NO_SCHEMA,
    ConfigurationError,
    DatabaseBusy,
    DatabaseFull,
    ValidationError,
)
from longops.domain.filters import SortKey
from longops.domain.operation import EventType, NewOperation, Operation
from longops.store._sql import SqlStore, in_turns
from longops.store.base import (
    Claimed,
    ClaimedRun,
    ClaimParams,
    ProgressUpdate,
    RunResult,
    StoreOptions,
)
from longops.store.migrate import split_sqlite_script

_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
POLL_SECONDS = 0.01
CHECKPOINT_SECONDS = 1.0
"""How often the background checkpointer copies the WAL back into the database file."""
CHECKPOINT_COMMITS = 100
"""... or sooner, after this many commits of this process (a burst of enqueues: 100 of them
add about 5 MB to the WAL)."""
CHECKPOINT_RESTART_FRAMES = 1000
"""A WAL this long (pages; SQLite's own automatic checkpoint starts at 1,000) is started
over: see _checkpoint_loop."""
BEGIN_RETRY_FIRST = 0.0001
BEGIN_RETRY_MAX = 0.001
BEGIN_RETRY_PATIENT = 0.05
BEGIN_RETRY_SLOW = 0.02
"""How the writer retries ``BEGIN IMMEDIATE`` while another process writes (see _begin)."""

# Dispatchers in this process waiting on a given database file.
_waiters: dict[str, weakref.WeakSet[SqliteWakeups]] = {}
_waiters_lock = threading.Lock()


def _translate(exc: sqlite3.Error, path: str, busy_timeout: float) -> Exception:
    """SQLite's refusals as longops errors that say what happened and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if "no such table: longops_" in str(exc):
        return ConfigurationError(NO_SCHEMA)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc):
        return DatabaseBusy.waited(
            f"another connection held the SQLite write lock on {path!r}; it was not free",
            "busy_timeout",
            busy_timeout,
            "LONGOPS_BUSY_TIMEOUT",
        )
    if name.startswith("SQLITE_FULL"):
        return DatabaseFull(
            f"the SQLite database {path!r} is full: the disk (or the file's size limit) has "
            "no room left; nothing was written — free space, then try again"
        )
    if name.startswith("SQLITE_READONLY"):
        return ConfigurationError(
            f"the SQLite database {path!r} is read-only: longops must be able to write the "
            "file and create files beside it (-wal, -shm); nothing was written"
        )
    return exc


def _loads(text: str) -> Any:
    """A stored JSON text as Python: orjson's parser (a claim decodes two texts per run,
    several times faster than ``json.loads``), and ``json.loads`` for what orjson refuses or
    reads otherwise (integers past 64 bits, NaN and Infinity), so the result never depends
    on which parser read it."""
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


_LONG_NUMBER = re.compile(r"\d{19}")
"""19 digits in a row: possibly an integer past 64 bits, which orjson reads as a float
(``json.loads`` as an exact int)."""


def _uuid_of_int(number: int) -> uuid.UUID:
    """``uuid.UUID(int=number)`` without its checks (``number`` comes from 32 hex digits, so
    it is in range); the same object in every way (value, hash, order, pickling)."""
    value = _new_object(uuid.UUID)
    _set_attribute(value, "int", number)
    _set_attribute(value, "is_safe", uuid.SafeUUID.unknown)
    return value


_new_object = object.__new__
_set_attribute = object.__setattr__


def _is_busy(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_BUSY") or "database is locked" in str(exc)


_names: tuple[Any, tuple[str, ...]] = ((), ())
"""The column names of the last description seen (a cursor's rows share one): one tuple,
replaced whole, so threads never read one description's names for another's."""


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    global _names
    description = cursor.description
    seen, names = _names
    if seen is not description:
        names = tuple(col[0] for col in description)
        _names = (description, names)
    return dict(zip(names, row, strict=True))


def _micros(column: str) -> str:
    """A stored time (fixed-width UTC text, _TS_FORMAT) as whole microseconds since 1970."""
    return (
        f"(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000000"
        f" + CAST(substr({column}, 21, 6) AS INTEGER))"
    )


class SqliteStore(SqlStore):
    """Store on a SQLite file. ``sqlite:///longops.db`` or ``sqlite:///:memory:``.

    Example::

        store = SqliteStore("sqlite:///longops.db")
        store.migrate()
    """

    dialect = "sqlite"
    # The sort keys' expressions (as PostgreSQL's, postgres.py); a duration in whole
    # microseconds computed from the fixed-width time text, so that it is exact.
    SORT_SQL: ClassVar[dict[SortKey, tuple[str, str]]] = {
        SortKey.DESCRIPTION: ("coalesce(nullif(description, ''), task)", ":cursor_value"),
        SortKey.PRIORITY: ("priority", ":cursor_value"),
        SortKey.USER: ("coalesce(user_name, '')", "coalesce(:cursor_value, '')"),
        SortKey.EARLIEST_START: ("earliest_start_at", ":cursor_value"),
        SortKey.ENDED: (
            "coalesce(ended_at, '9999-12-31 23:59:59.999999')",
            "coalesce(:cursor_value, '9999-12-31 23:59:59.999999')",
        ),
        SortKey.DURATION: (
            f"coalesce({_micros('ended_at')} - {_micros('started_at')}, 9223372036854775807)",
            "coalesce(:cursor_value, 9223372036854775807)",
        ),
    }

    def __init__(
        self, url: str, *, options: StoreOptions | None = None, row_level_security: bool = False
    ) -> None:
        super().__init__(url)
        self.options = options or StoreOptions()
        if row_level_security:
            raise ConfigurationError(
                "row_level_security needs PostgreSQL: a SQLite file has no database roles"
            )
        if not url.startswith("sqlite:///") or url == "sqlite:///":
            raise ValidationError(
                "database_url",
                "a SQLite URL is sqlite:///relative/path.db, sqlite:////absolute/path.db "
                "or sqlite:///:memory:",
                url,
            )
        path = url.removeprefix("sqlite:///")
        if path == ":memory:":
            # Threads must share one in-memory database, so name it and share its cache.
            self._target = f"file:longops-{uuid.uuid4().hex}?mode=memory&cache=shared"
            self._uri = True
        else:
            self._target = path
            self._uri = False
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        # One writer connection for the whole process: write transactions of this process's
        # threads queue on a lock (woken the moment it is free) instead of each taking
        # SQLite's lock on a connection of its own, where a loser sleeps in the busy
        # handler's back-off (up to 100 ms a try) even when the lock is long free again.
        self._writer: sqlite3.Connection | None = None
        self._write_lock = threading.Lock()
        # The WAL checkpoint runs off the hot path: the writer's automatic one (every 1,000
        # pages, inside whichever commit crossed the line, holding the process's write turn
        # while it copies and syncs) is off, and a thread checkpoints (PASSIVE: it never
        # waits for, or blocks, a writer) once a second after commits.
        self._commits = 0
        self._stopped = threading.Event()
        self._checkpoint_due = threading.Event()
        self._checkpoint_lock = threading.Lock()
        self._checkpointer: threading.Thread | None = None
        # Keep one connection open for the store's life: an in-memory database lives only
        # while a connection to it exists.
        self._keeper = self._connect()

    def _translate(self, exc: sqlite3.Error) -> Exception:
        return _translate(exc, self.path, self.options.busy_timeout)

    def _connect(self) -> sqlite3.Connection:
        busy = self.options.busy_timeout
        try:
            conn = sqlite3.connect(
                self._target,
                uri=self._uri,
                isolation_level=None,
                timeout=busy,
                check_same_thread=False,
            )
        except sqlite3.OperationalError as exc:
            raise ConfigurationError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        try:
            conn.row_factory = _dict_row
            conn.execute(f"PRAGMA busy_timeout = {round(busy * 1000)}")
            if not self._uri:
                conn.execute("PRAGMA journal_mode = WAL")
                # WAL with NORMAL sync is durable across process crashes (the guarantee we
                # give); only an OS crash or power loss can drop the last transactions.
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            conn.close()
            translated = self._translate(exc)
            if translated is exc:
                translated = ConfigurationError(f"cannot open SQLite database {self.path!r}: {exc}")
            raise translated from exc
        with self._lock:
            self._connections.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            # Checked before every use, not only before connecting: a thread still running
            # after close() (a worker's loop not yet stopped) must not touch a connection
            # that close() is closing from another thread — sqlite3 may crash the process.
            raise ConfigurationError("store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def close(self) -> None:
        self._closed = True
        self._stopped.set()
        self._checkpoint_due.set()
        with self._checkpoint_lock, self._lock:  # not while the checkpointer uses its own
            conns, self._connections = self._connections, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):  # closing from another thread
                conn.close()

    def _writer_conn(self) -> sqlite3.Connection:
        if self._closed:
            raise ConfigurationError("store is closed")
        if self._writer is None:
            writer = self._connect()
            # The writer waits for other processes' write transactions itself (_begin).
            writer.execute("PRAGMA busy_timeout = 0")
            if not self._uri:
                writer.execute("PRAGMA wal_autocheckpoint = 0")
                self._checkpointer = threading.Thread(
                    target=self._checkpoint_loop, name="longops-sqlite-checkpoint", daemon=True
                )
                self._checkpointer.start()
            self._writer = writer
        return self._writer

    def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database file, beside the writers (PASSIVE: it
        neither waits for nor blocks them), once a second or after ``CHECKPOINT_COMMITS``
        commits. A write transaction starts the WAL over from its beginning only if
        everything in it was copied; while writers commit without a pause, a commit
        always lands during the copy and the WAL grows without end (160 MB after 3,000
        one-by-one enqueues, and the file keeps that size). So once the WAL holds
        ``CHECKPOINT_RESTART_FRAMES`` pages, what was committed during the copy (a few
        pages) is copied again with this process's writers held off for that moment, and
        the next write starts the WAL over, unless another process wrote meanwhile or a
        reader still reads the WAL (then at a later round; a RESTART checkpoint, which
        holds every process's writers off, halved the drain of two worker processes:
        benchmarks/results/profile-notes.md)."""
        try:
            conn = self._connect()
        except Exception:  # closed meanwhile, or the file went away: writers checkpoint
            return
        while not self._stopped.is_set():
            self._checkpoint_due.wait(CHECKPOINT_SECONDS)
            self._checkpoint_due.clear()
            if not self._commits:
                continue
            self._commits = 0
            with self._checkpoint_lock:
                if self._closed:
                    return
                # A fault (busy, disk full) is retried at the next round.
                with contextlib.suppress(sqlite3.Error):
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if row is None or row["log"] < CHECKPOINT_RESTART_FRAMES:
                        continue
                    # A writer holding on: this round is skipped (close() waits for it).
                    if not self._write_lock.acquire(timeout=CHECKPOINT_SECONDS):
                        continue
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    finally:
                        self._write_lock.release()

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        # The process's turn first (no longer than the busy timeout, as SQLite's own wait).
        busy = self.options.busy_timeout
        if not self._write_lock.acquire(timeout=busy if busy > 0 else -1):
            raise self._translate(sqlite3.OperationalError("database is locked"))
        try:
            conn = self._writer_conn()
            cur = conn.cursor()
            try:
                self._begin(cur, busy)  # waits up to busy_timeout for other processes
            except sqlite3.OperationalError as exc:
                cur.close()
                raise self._translate(exc) from exc
            # Reads made inside this transaction, on this thread, see its writes.
            self._local.writing = conn
            try:
                yield self.timed(cur)
                cur.execute("COMMIT")  # may meet a full disk
                self._commits += 1
                if self._commits >= CHECKPOINT_COMMITS:
                    self._checkpoint_due.set()
            except sqlite3.OperationalError as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.rollback()
                raise self._translate(exc) from exc
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.rollback()
                raise
            finally:
                self._local.writing = None
                cur.close()
        finally:
            self._write_lock.release()

    @staticmethod
    def _begin(cur: sqlite3.Cursor, busy: float) -> None:
        """``BEGIN IMMEDIATE`` on the writer, retried while another process holds the write
        lock, for up to ``busy`` seconds.

        The writer has no busy timeout of its own: SQLite's busy handler sleeps 1, 2, 5,
        10, 15, 20, 25 ... ms between tries, so a process that asks while another holds the
        lock for 3 ms gets it after 8 ms, and two worker processes spend most of their
        time waiting on a free lock. Here the tries come ``BEGIN_RETRY_FIRST`` apart,
        doubling to ``BEGIN_RETRY_MAX`` (a failed try is one lock attempt on the -shm
        file, a few microseconds), then, after ``BEGIN_RETRY_PATIENT`` seconds of waiting
        (a long holder: a migration, a backup), up to ``BEGIN_RETRY_SLOW`` apart."""
        try:
            cur.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or busy <= 0:
                raise
        began = time.monotonic()
        delay = BEGIN_RETRY_FIRST
        while True:
            time.sleep(delay)
            try:
                cur.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                waited = time.monotonic() - began
                if waited >= busy:
                    raise
            cap = BEGIN_RETRY_MAX if waited < BEGIN_RETRY_PATIENT else BEGIN_RETRY_SLOW
            delay = min(delay * 2, cap, max(busy - waited, 0.0001))

    @contextmanager
    def _read(self) -> Iterator[Any]:
        writing: sqlite3.Connection | None = getattr(self._local, "writing", None)
        cur = (writing or self._conn()).cursor()
        try:
            yield self.timed(cur)
        except sqlite3.OperationalError as exc:
            raise self._translate(exc) from exc
        finally:
            cur.close()

    # -- encoders -----------------------------------------------------------------------------
    # -- a Delete's copy (migration 0017): the row's columns as JSON, read and written here
    def _keep_copy(self, cur: Any, params: dict[str, Any]) -> None:
        cur.execute(self.q["copy_source"], {"id": params["id"], "company": params["company"]})
        row = cur.fetchone()
        if row is None:
            return
        cur.execute(
            self.q["keep_deleted_copy"],
            {
                **params,
                "company": row["company"],
                "entry_no": row["entry_no"],
                "operation": json.dumps(dict(row)),
            },
        )

    def _restore_copy(self, cur: Any, params: dict[str, Any]) -> bool:
        cur.execute(self.q["restore_deleted_copy"], params)
        copy = cur.fetchone()
        if copy is None:
            return False
        values = json.loads(copy["operation"])
        cur.execute("SELECT name FROM pragma_table_info('longops_operations')")
        known = {r["name"] for r in cur.fetchall()}
        columns = [c for c in values if c in known]  # the table's own names only
        cur.execute(
            f"INSERT OR IGNORE INTO longops_operations ({', '.join(columns)})"
            f" VALUES ({', '.join(':' + c for c in columns)})",
            {c: values[c] for c in columns},
        )
        return int(cur.rowcount) == 1

    def enc_uuid(self, value: uuid.UUID | None) -> Any:
        return None if value is None else value.hex

    def enc_ts(self, value: datetime | None) -> Any:
        if value is None:
            return None
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        if value.year < 1000:  # strftime's %Y has no leading zeros there: as stored before
            return value.strftime(_TS_FORMAT)
        # _TS_FORMAT, several times cheaper than strftime (an enqueue encodes three times,
        # a result up to three): "YYYY-MM-DD HH:MM:SS.ffffff" and the "+00:00" cut off.
        return value.isoformat(" ", "microseconds")[:26]

    def enc_list(self, value: Sequence[str]) -> Any:
        return json.dumps(list(value))

    def enc_bool(self, value: bool) -> Any:
        return 1 if value else 0

    def dec_uuid(self, value: Any) -> uuid.UUID:
        if len(value) == 32:
            # The stored form (enc_uuid: 32 hex digits) built straight from its number: a
            # claim decodes three per run, and UUID(hex=) first cleans up the text it is
            # given (braces, dashes, "urn:uuid:"), which a stored id never has.
            return _uuid_of_int(int(value, 16))
        return uuid.UUID(hex=value)

    def dec_ts(self, value: Any) -> datetime:
        try:
            # Stored times are UTC text without an offset: naming it in the text is several
            # times cheaper than replace() after (a claim decodes about six per run).
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:  # a text that carries its own offset (or a Z)
            return datetime.fromisoformat(value).replace(tzinfo=UTC)

    def dec_json(self, value: Any) -> Any:
        return _loads(value)

    def dec_list(self, value: Any) -> list[str]:
        return list(_loads(value))

    def _apply_migration_script(self, cur: Any, sql: str) -> None:
        for statement in split_sqlite_script(sql):
            cur.execute(statement)

    # -- operations ---------------------------------------------------------------------------
    def insert_operations(
        self, ops: Sequence[NewOperation], *, connection: Any = None
    ) -> list[Operation]:
        if connection is not None:
            raise ConfigurationError(
                "transactional enqueue (connection=...) needs PostgreSQL; "
                "SQLite has one writer and no shared connection to join"
            )
        if len(ops) == 1 and ops[0].dedup_key is None and ops[0].request_hash is None:
            # The common case, one plain operation: nothing can conflict but a duplicate id
            # (uuid7, never reused), so only its entry number is read back (the rowid) and
            # the rest is what was sent (store._sql.core.inserted), not a 48-column row.
            op = ops[0]
            params = self.new_operation_params(op)  # before the write lock
            with self._tx() as cur:
                cur.execute(self.q["insert_operation_one"], params)
                if cur.rowcount != 1:  # pragma: no cover - ids are new and never reused
                    raise RuntimeError(f"operation id {op.id} already exists")
                entry_no = int(cur.lastrowid)
            self._wake(op.queue)
            return [self.inserted(op, entry_no)]
        with self._tx() as cur:
            out = self._insert_with(cur, ops)
        for queue in {op.queue for op in out}:
            self._wake(queue)
        return out

    def insert_operations_bulk(self, ops: Iterable[NewOperation]) -> int:
        if isinstance(ops, Sequence) and any(op.dedup_key is not None for op in ops):
            return len(self.insert_operations(ops))
        queues: set[str] = set()
        count = 0
        with self._tx() as cur:
            for op in ops:
                if op.dedup_key is not None:
                    raise ConfigurationError("a streamed bulk insert takes no dedup keys")
                cur.execute(self.q["insert_operation"], self.new_operation_params(op))
                queues.add(op.queue)
                count += 1
        for queue in queues:
            self._wake(queue)
        return count

    # -- running ----------------------------------------------------------------------------
    def claim(self, params: ClaimParams) -> Claimed:
        finished = self._finish_params(params.finished)  # before the write lock
        with self._tx() as cur:
            # The results first, then the claim: one write lock and one commit for both.
            applied = self._finish_batch(cur, finished)
            at = params.at()  # read under the write lock
            now = self.enc_ts(at)
            cur.execute(
                self.q["claim_operations"],
                {
                    "session_id": self.enc_uuid(params.session_id),
                    "queues": self.enc_list(params.queues),
                    "limit": params.limit,
                    "now": now,
                    "companies": self.enc_companies(params.companies),
                    "tasks": None if params.tasks is None else self.enc_list(params.tasks),
                },
            )
            rows = cur.fetchall()
            if rows:
                served = sorted({r["company"] for r in rows})
                cur.execute(self.q["mark_companies_served"], {"companies": json.dumps(served)})
                # The attempt rows and the timeline, one statement each for the batch.
                claimed = {"ids": json.dumps([r["id"] for r in rows]), "now": now}
                cur.execute(self.q["insert_claimed_attempts"], claimed)
                cur.execute(self.q["log_claimed"], claimed)
        rows = in_turns(rows)
        telemetry.claimed(len(rows))
        return Claimed([ClaimedRun(self.operation(r), int(r["run_count"])) for r in rows], applied)

    def finish_runs(self, results: Sequence[RunResult]) -> list[bool]:
        batch = self._finish_params(results)  # built before the write lock is taken
        with self._tx() as cur:
            return self._finish_batch(cur, batch)

    def _finish_params(self, results: Sequence[RunResult]) -> list[dict[str, Any]]:
        """Each result as the finish statements' parameters (no database work)."""
        enc_uuid, enc_ts = self.enc_uuid, self.enc_ts
        return [
            {
                "id": enc_uuid(res.operation_id),
                "lease_token": enc_uuid(res.lease_token),
                "run_no": res.run_no,
                "at": enc_ts(res.at),
                "outcome": res.outcome.value,
                "status": res.status.value,
                "status_reason": res.status_reason,
                "earliest_start_at": enc_ts(res.earliest_start_at),
                "attempt_count": res.attempt_count,
                "error_message": res.error_message,
                "traceback": res.traceback,
                "result": res.result_json,
                "run_started_at": enc_ts(res.started_at),
                "progress": res.progress_json,
                "stop_mode": None if res.stop_mode is None else res.stop_mode.value,
                "cancel_mode": None if res.cancel_mode is None else res.cancel_mode.value,
                "clear_checkpoint": 1 if res.clear_checkpoint else 0,
                "peak_rss": res.peak_rss,
                "last_reading": None,
            }
            for res in results
        ]

    def _finish_batch(self, cur: Any, batch: list[dict[str, Any]]) -> list[bool]:
        """Write a batch of results (``_finish_params``) under the write lock: one read
        says which still hold their run, then one statement each for the operations, the
        attempts and the timeline, sent for the whole batch (``executemany``). Whether each
        applied, in order; a result whose run no longer holds the lease (rescued, or
        already written) changes nothing."""
        if not batch:
            return []
        cur.execute(self.q["finish_check"], {"ids": json.dumps([p["id"] for p in batch])})
        holding = {r["id"]: r for r in cur.fetchall()}
        applied: list[bool] = []
        done: list[dict[str, Any]] = []
        for params in batch:
            row = holding.get(params["id"])
            ok = row is not None and row["lease_token"] == params["lease_token"]
            if row is not None and ok:
                # The attempt keeps the last reading written, which the entry may drop.
                if params["progress"] is None:
                    params["last_reading"] = row["progress"]
                del holding[params["id"]]  # a second result for the run is fenced
                done.append(params)
            applied.append(ok)
        if done:
            cur.executemany(self.q["finish_operation"], done)
            cur.executemany(self.q["finish_attempt"], done)
            cur.executemany(self.q["log_finished"], done)
        return applied

    def flush_progress(self, updates: Sequence[ProgressUpdate]) -> list[bool]:
        applied: list[bool] = []
        with self._tx() as cur:
            for u in updates:
                params = {
                    "id": self.enc_uuid(u.operation_id),
                    "lease_token": self.enc_uuid(u.lease_token),
                    "at": self.enc_ts(u.at),
                    "progress": u.progress_json,
                    "moved": self.enc_bool(u.moved),
                }
                row = self._lock_run(cur, u.operation_id, u.lease_token)
                if row is None:
                    applied.append(False)
                    continue
                cur.execute(self.q["flush_progress_one"], params)
                run_no = int(row["run_count"])
                self._insert_event(
                    cur,
                    params["id"],
                    row["company"],
                    u.at,
                    EventType.PROGRESS,
                    run_no,
                    json.loads(u.progress_json),
                )
                if u.moved and row["stalled_at"] is not None:
                    self._insert_event(
                        cur,
                        params["id"],
                        row["company"],
                        u.at,
                        EventType.UNSTALLED,
                        run_no,
                        {"stalled_at": self.dec_ts(row["stalled_at"]).isoformat()},
                    )
                    telemetry.unstalled([u.operation_id])
                applied.append(True)
        telemetry.progress_written(sum(applied))
        return applied

    def wakeups(self) -> SqliteWakeups:
        return SqliteWakeups(self)

    def _wake(self, queue: str) -> None:
        with _waiters_lock:
            waiters = list(_waiters.get(self.path, ()))
        for w in waiters:
            w.signal()


class SqliteWakeups:
    """Wakes a dispatcher when this process writes, or when any other process commits."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._event = threading.Event()
        self._conn = store._connect()
        self._version = self._data_version()
        with _waiters_lock:
            _waiters.setdefault(store.path, weakref.WeakSet()).add(self)

    def _data_version(self) -> int:
        row = self._conn.execute("PRAGMA data_version").fetchone()
        return int(row["data_version"])

    def signal(self) -> None:
        self._event.set()

    def interrupt(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._event.is_set():
                self._event.clear()
                return True
            version = self._data_version()
            if version != self._version:
                self._version = version
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._event.wait(min(POLL_SECONDS, remaining)):
                self._event.clear()
                return True

    def close(self) -> None:
        with _waiters_lock:
            waiters = _waiters.get(self._store.path)
            if waiters is not None:
                waiters.discard(self)
        self._conn.close()
