"""What an attempt cost: CPU seconds, peak resident memory (process isolation) and the
number and time of longops's own SQL statements made on the attempt's thread. Exported as
attributes of the attempt's ``process`` span.

CPU is the runner thread's time for thread-isolated tasks (the task runs on it, async ones
on its event loop), and the child process's CPU time during the run for process-isolated
ones (the child measures it and reports it with its result, with its peak resident memory).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Usage:
    cpu_started: float
    cpu_seconds: float | None = None
    peak_rss_bytes: int | None = None
    sql_statements: int = 0
    sql_seconds: float = 0.0
