"""Diagnostics for a worker process (TEL_DIAG=<dir>): GC time by generation, and each
thread's CPU by name (sampled every 0.2 s; the last value kept), written at exit."""

from __future__ import annotations

import contextlib
import os

_dir = os.environ.get("TEL_DIAG")
if _dir:
    import atexit
    import gc
    import json
    import threading
    import time

    _gc = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}
    _began = [0.0]

    def _cb(phase, info):
        if phase == "start":
            _began[0] = time.thread_time()
        else:
            g = _gc[info["generation"]]
            g[0] += 1
            g[1] += time.thread_time() - _began[0]

    gc.callbacks.append(_cb)
    _threads = {}

    def _sample():
        for t in threading.enumerate():
            if t.ident is None:
                continue
            with contextlib.suppress(OSError):
                _threads[f"{t.name}#{t.ident}"] = time.clock_gettime(
                    time.pthread_getcpuclockid(t.ident)
                )

    def _loop():
        while True:
            time.sleep(0.2)
            _sample()

    threading.Thread(target=_loop, name="diag", daemon=True).start()

    def _write():
        _sample()
        out = {
            "gc": _gc,
            "threads": _threads,
            "process": time.process_time(),
            "gc_stats": gc.get_stats(),
        }
        with open(os.path.join(_dir, f"diag-{os.getpid()}.json"), "w") as f:
            json.dump(out, f)

    atexit.register(_write)
