"""The SQLite store's one writer connection: how it waits for another process's write
lock, and the encoding and decoding of stored times and ids it relies on for speed."""

from __future__ import annotations

import pickle
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from longops.domain.clock import FrozenClock
from longops.domain.errors import DatabaseBusy
from longops.domain.operation import NewOperation
from longops.store import sqlite as sqlite_module
from longops.store.base import StoreOptions
from longops.store.sqlite import SqliteStore

PAUSE = "INSERT INTO longops_paused_queues (name, paused_at) VALUES ('q', '2026-01-01 00:00:00')"


def _store(tmp_path: Path, busy: float) -> SqliteStore:
    store = SqliteStore(f"sqlite:///{tmp_path / 'w.db'}", options=StoreOptions(busy_timeout=busy))
    store.migrate()
    return store


def _hold(path: Path, seconds: float, held: threading.Event) -> None:
    """Another connection (as another process would) holds the write lock a while."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


def test_the_writer_waits_for_the_lock_itself_and_writes_once_it_is_free(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path, busy=30)
    try:
        # SQLite's busy handler sleeps up to 100 ms a try: the writer retries itself.
        writer = store._writer_conn()
        assert writer.execute("PRAGMA busy_timeout").fetchone()["timeout"] == 0
        held = threading.Event()
        holder = threading.Thread(target=_hold, args=(tmp_path / "w.db", 0.3, held))
        holder.start()
        assert held.wait(10)
        with store._tx() as cur:  # waits for the holder, then goes through
            cur.execute(PAUSE)
        holder.join()
        assert [r["name"] for r in store._all("list_paused_queues")] == ["q"]
    finally:
        store.close()


def test_a_lock_held_past_the_busy_timeout_is_database_busy(tmp_path: Path) -> None:
    store = _store(tmp_path, busy=0.2)
    try:
        store._writer_conn()
        held = threading.Event()
        holder = threading.Thread(target=_hold, args=(tmp_path / "w.db", 2.0, held))
        holder.start()
        assert held.wait(10)
        began = time.monotonic()
        with pytest.raises(DatabaseBusy), store._tx() as cur:
            cur.execute(PAUSE)
        assert 0.15 <= time.monotonic() - began < 1.5
        holder.join()
    finally:
        store.close()


def test_stored_times_decode_as_utc_with_or_without_an_offset(tmp_path: Path) -> None:
    store = SqliteStore("sqlite:///:memory:")
    try:
        want = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
        assert store.dec_ts(store.enc_ts(want)) == want
        assert store.dec_ts("2026-01-02 03:04:05.000006") == want
        assert store.dec_ts("2026-01-02T03:04:05.000006+00:00") == want
        assert store.dec_ts("2026-01-02 03:04:05.000006").tzinfo is UTC
    finally:
        store.close()


def test_times_encode_as_the_fixed_width_utc_text_whatever_their_zone(tmp_path: Path) -> None:
    """enc_ts writes what strftime(_TS_FORMAT) of the UTC time wrote, which stored times,
    their order and every query comparing them rely on (whole seconds keep their six zeros)."""
    store = SqliteStore("sqlite:///:memory:")
    try:
        east = timezone(timedelta(hours=5, minutes=30))
        cases = [
            datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            datetime(2026, 1, 2, 8, 34, 5, 999999, tzinfo=east),
            datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(1, 1, 1, 0, 0, 0, tzinfo=UTC),
        ]
        for when in cases:
            assert store.enc_ts(when) == when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        assert store.enc_ts(cases[1]) == "2026-01-02 03:04:05.000000"
        assert store.enc_ts(cases[2]) == "2026-01-02 03:04:05.999999"
    finally:
        store.close()


def test_stored_ids_decode_as_the_same_uuid_as_the_uuid_module_makes() -> None:
    store = SqliteStore("sqlite:///:memory:")
    try:
        for want in (uuid.uuid4(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)):
            got = store.dec_uuid(store.enc_uuid(want))
            assert type(got) is uuid.UUID
            assert (got, hash(got), str(got), got.is_safe) == (
                want,
                hash(want),
                str(want),
                want.is_safe,
            )
            assert pickle.loads(pickle.dumps(got)) == want  # noqa: S301 - our own bytes
        # Any other text goes through uuid.UUID(hex=) and is refused as it refuses it.
        with pytest.raises(ValueError, match="badly formed"):
            store.dec_uuid("not-a-uuid")
        with pytest.raises(ValueError, match="invalid literal"):
            store.dec_uuid("g" * 32)
    finally:
        store.close()


def test_the_wal_starts_over_while_one_process_writes_without_a_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One-by-one enqueues back to back: every commit lands while the background
    checkpoint copies, so unless it finishes the copy with this process's writers held
    off, the WAL is never all copied, never starts over, and grows by every commit (here
    about 30 MB; 160 MB for 3,000 enqueues of the peers benchmark)."""
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_COMMITS", 20, raising=False)
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_RESTART_FRAMES", 100, raising=False)
    clock = FrozenClock(datetime(2026, 1, 2, tzinfo=UTC))
    store = _store(tmp_path, busy=5.0)
    wal = tmp_path / "w.db-wal"
    try:
        for _ in range(600):
            store.insert_operations([NewOperation.build(task="t", now=clock.now())])
        grown = wal.stat().st_size
    finally:
        store.close()
    # Started over: the file keeps the size it reached before a restart (2-10 MB here;
    # 30 MB without the held-off copy).
    assert grown < 15_000_000, f"the WAL grew to {grown:,} bytes"
