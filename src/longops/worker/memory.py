"""The worker's memory limit: past it, the worker hands its runs back and exits for a fresh one.

Thread tasks (the default) share the worker's process, so a task that leaks grows the worker
itself, and nothing but the process ending gives that memory back. With ``--max-memory`` the
worker reads its own resident memory every second (``/proc/self/statm``; no dependency);
past the limit it drains at once — its runs go back to ``ready`` as *interrupted*, without
spending an attempt — and exits with :data:`EXIT_MEMORY`, so its supervisor (systemd's
``Restart=on-failure``, a Kubernetes Deployment) starts a fresh one.

A task that grows its worker past the limit on every run would then make the fleet restart
forever. So each hand-back is counted against the operations that were in flight: each run
of a thread or ``async`` task (they share the worker's memory; a process-isolated task's
child does not, and is not counted, nor a run claimed ahead whose code had not begun) gets
a *memory hand-back*, which its attempt records (:func:`hand_back_message`). The run that
would be an operation's :data:`MEMORY_HAND_BACKS`-th memory hand-back in a row — none of
its runs ended otherwise in between — fails it instead (status ``error``, the attempt's
message naming the limit and the count: :func:`failed_message`), as Business Central ends
a job that keeps crashing its session in Error. With several slots the culprit is unknown:
every run in flight at an exit counts, so an innocent operation fails only if it was in
flight at that many of the leaker's exits in a row, with no run of its own ending between.

Example::

    limit = parse_size("512MiB", "--max-memory")     # 536870912
    guard = MemoryGuard(limit, on_exceeded=worker.hand_back).start()
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Sequence

from longops.domain.errors import ValidationError
from longops.domain.operation import Attempt, Outcome

log = logging.getLogger("longops.worker")

EXIT_MEMORY = 75
"""The worker's exit code after it drained past its memory limit: ``EX_TEMPFAIL`` from
sysexits.h ("a temporary failure; try again"), which is what it is — a fresh worker will do.
Distinct from 0 (drained on a signal), 1 (an error) and 2 (bad usage), so a supervisor
restarts it (systemd ``Restart=on-failure`` restarts on any non-zero code) and a person
reading the exit status knows why it ended."""

MEMORY_HAND_BACKS = 3
"""An operation in flight at this many memory exits in a row fails at the last instead of
being handed back again (``WorkerOptions.memory_hand_backs``, ``--memory-hand-backs``)."""

_HANDED_BACK = "went past its limit (max_memory"
"""What the message of a memory hand-back, and only it, says (how they are counted)."""

MIN_MEMORY = 16 * 2**20
"""The smallest limit accepted: below it a worker could not even start (and "512" with no
unit, which means bytes, is more likely a mistake than a wish)."""

_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10,
    "ki": 2**10,
    "kib": 2**10,
    "kb": 10**3,
    "m": 2**20,
    "mi": 2**20,
    "mib": 2**20,
    "mb": 10**6,
    "g": 2**30,
    "gi": 2**30,
    "gib": 2**30,
    "gb": 10**9,
    "t": 2**40,
    "ti": 2**40,
    "tib": 2**40,
    "tb": 10**12,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(text: str, field: str = "max_memory") -> int:
    """Bytes from a size as people write it: ``512MiB``, ``2G``, ``1.5GiB``, ``800MB``.

    K, M, G, T (with or without ``i``/``iB``) are powers of 1024, as systemd's
    ``MemoryMax=`` and Kubernetes' ``Mi``/``Gi`` mean them; KB, MB, GB, TB are powers of 1000;
    a bare number is bytes. Case does not matter. At least 16MiB (:data:`MIN_MEMORY`).

    The one rule for every memory limit: the worker's ``--max-memory`` and
    ``--max-memory-per-child``, and a task's ``max_memory_per_child`` given as text (as a
    whole number it is bytes, see :func:`memory_size`).

    Example::

        parse_size("2G")        # 2147483648
        parse_size("512 MiB")   # 536870912
    """
    match = _SIZE.fullmatch(text or "")
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValidationError(
            field,
            "must be a size such as 512MiB, 2G or 800MB (K/M/G/T: powers of 1024; "
            "KB/MB/GB/TB: powers of 1000; a bare number: bytes)",
            text,
        )
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < MIN_MEMORY:
        raise ValidationError(field, "must be at least 16MiB (a bare number is bytes)", text)
    return size


def memory_size(value: int | str, field: str) -> int:
    """Bytes of a memory limit given in code: a whole number is bytes (any, from 1), text
    is a size as :func:`parse_size` reads it (``"512MiB"``, ``"2G"``)."""
    if isinstance(value, str):
        return parse_size(value, field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, "must be a whole number of bytes or a size such as 512MiB")
    if value < 1:
        raise ValidationError(field, "must be at least 1", value)
    return value


class MemoryGuard:
    """Reads this process's resident memory every ``interval`` seconds; the first time it is
    past ``limit`` bytes, logs it and calls ``on_exceeded(resident)`` once, then stops."""

    def __init__(
        self,
        limit: int,
        on_exceeded: Callable[[int], None],
        *,
        interval: float = 1.0,
        read: Callable[[], int] | None = None,
    ) -> None:
        if read is None:
            # Imported here: `longops.hosting` (and so every command line) imports this module
            # for its constants; the isolation module is the worker's.
            from longops.worker.isolation import resident_bytes

            read = resident_bytes
        self.limit = limit
        self.on_exceeded = on_exceeded
        self.interval = interval
        self.read: Callable[[], int] = read
        self.exceeded: int | None = None
        """The resident memory that was past the limit (None: never past it)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="longops-memory", daemon=True)

    def start(self) -> MemoryGuard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                resident = self.read()
            except Exception:
                log.warning("could not read the worker's memory", exc_info=True)
                continue
            if resident > self.limit:
                self.exceeded = resident
                log.warning(
                    "worker memory %d MiB is past its limit of %d MiB: handing its runs back "
                    "and exiting (code %d) for a fresh worker",
                    resident // 2**20,
                    self.limit // 2**20,
                    EXIT_MEMORY,
                    extra={"action": "memory_exceeded", "resident": resident},
                )
                self.on_exceeded(resident)
                return


def _mib(size: int) -> int:
    return size // 2**20


def hand_back_message(
    session_id: uuid.UUID, resident: int, limit: int, count: int, bound: int
) -> str:
    """The attempt's message of a run handed back because its worker went past its memory
    limit while the run was in flight: its ``count``-th such hand-back in a row."""
    return (
        f"worker session {session_id} handed the run back: its memory ({_mib(resident)} MiB) "
        f"{_HANDED_BACK} {_mib(limit)} MiB) while this run was in flight (memory hand-back "
        f"{count} of at most {bound - 1}; the next fails it)"
    )


def failed_message(resident: int, limit: int, count: int) -> str:
    """The attempt's message of a run that fails instead of a ``count``-th memory hand-back."""
    return (
        f"MemoryLimitExceeded: the worker's memory went past its limit (max_memory "
        f"{_mib(limit)} MiB; {_mib(resident)} MiB resident) while this run was in flight, "
        f"{count} times in a row: failed rather than handed back again. A task that "
        "grows its worker past the limit on every run needs isolation='process' with "
        "max_memory_per_child, or a higher --max-memory (or it shared its workers with one "
        "that does)"
    )


def memory_hand_backs(attempts: Sequence[Attempt]) -> int:
    """How many memory hand-backs an operation had in a row, from its attempts (in run
    order): those since its last run that ended otherwise. A run still in process, a run
    put back for its run window or handed back by a plain drain neither counts nor ends
    the row; any other ending (a success, a failure, a timeout, a rescue...) ends it."""
    count = 0
    for attempt in reversed(attempts):
        if attempt.outcome is Outcome.INTERRUPTED:
            count += _HANDED_BACK in (attempt.error_message or "")
        elif attempt.outcome not in (Outcome.IN_PROCESS, Outcome.SKIPPED):
            break
    return count
