"""The longops peers app with timestamps, for ``profile_enqueue.py latency``: each worker
process appends to ``trace-<pid>.log`` in ``$BENCH_MARKS_DIR`` when its ``LISTEN``
connection wakes (``wake``) and when a claim returns (``claim <sent> <runs>``)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from jobs_longops import app

from longops.store import postgres, postgres_listen

__all__ = ["app"]

_log = open(  # noqa: SIM115 - open for the process's life, line-buffered
    os.path.join(os.environ["BENCH_MARKS_DIR"], f"trace-{os.getpid()}.log"), "a", buffering=1
)
_lock = threading.Lock()


def _record(line: str) -> None:
    with _lock:
        _log.write(f"{line}\n")


_notes = postgres_listen._Listening._notes
_claim = postgres.PostgresStore.claim


def _traced_notes(self: Any, timeout: float) -> tuple[list[str], bool]:
    found, reconnected = _notes(self, timeout)
    if found:
        _record(f"wake {time.time():.6f}")
    return found, reconnected


def _traced_claim(self: Any, params: Any) -> Any:
    sent = time.time()
    out = _claim(self, params)
    _record(f"claim {time.time():.6f} {sent:.6f} {len(out)}")
    return out


postgres_listen._Listening._notes = _traced_notes  # type: ignore[method-assign]
postgres.PostgresStore.claim = _traced_claim  # type: ignore[method-assign]
