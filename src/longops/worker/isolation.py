"""Process isolation: attempts of ``isolation="process"`` tasks run in child processes.

A child can be killed, so a run that ignores its cancel request or its timeout is stopped
(SIGTERM, then SIGKILL), a memory-hungry child is replaced, and a crash (a segfault,
``os._exit``, the OOM killer) ends only the attempt, not the worker.

The worker's runner thread drives one child per run over a pipe. Each message is one of
the frozen dataclasses below, matched with ``match`` on both sides::

    parent -> child   Setup(path, main_file)            once, before anything else
                      Run(token, task, spec)            spec: the pickled RunSpec
                      Cancel(token, reason)
                      Ack(token, saved)                 answers a CheckpointRequest
                      Exit()
    child -> parent   Begun(token)                      the task's code starts now
                      ProgressReport(reading, version, step_version)
                      CheckpointRequest(state_json, reading, version, step_version)
                      Result(outcome, result_json, error, traceback, rss, reading,
                             versions, cpu_seconds, peak_rss)
                      LoadFailed(token, message)        the run's task could not be loaded
                      Broken(message)                   the child's reader failed; it exits

Anything else (another type, or a field of the wrong type) is a :class:`ProtocolError`:
the child's reader reports it as ``Broken`` and exits; the worker fails the attempt and
replaces the child. Every message but the run spec holds plain values only, in classes
of this module, so the child's reader can always read them: the spec (which names the task
function, and so may need imports) is unpickled by the child's main thread, and a spec
that cannot be loaded fails that attempt with the cause (``LoadFailed``) instead of killing
the reader and leaving the attempt hanging.

Children are fresh interpreters (the worker has threads and open database connections
that must not be forked), started with the worker's ``sys.path``; they find the task
function by its module and name and import nothing else, so a script that starts a worker
is not run again in each child. Only a task defined in ``__main__`` (the script that was
run) makes the child load the main script, under the name ``__mp_main__`` as
``multiprocessing``'s spawn does, so its ``if __name__ == "__main__":`` block does not run
again; a script without that guard is refused (it would run its whole self again in each
child: enqueue, start a worker), see :func:`main_guard_problem`. A child dies with its
worker: it asks the kernel to kill it when the worker goes (``PR_SET_PDEATHSIG`` on Linux)
and exits when its end of the pipe closes, so no orphan keeps running an operation that the
rescuer hands to another worker. Process isolation needs a POSIX system.

Example::

    pool = ChildPool(max_runs=100, max_memory=512 * 2**20)
    child = pool.acquire()
    child.send(Run(token, "billing.post", pickled_spec))
"""

from __future__ import annotations

import ast
import contextlib
import io
import logging
import os
import pickle
import queue
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from longops.domain.limits import DEFAULT_MAX_CHECKPOINT_BYTES
from longops.domain.progress import ProgressCounter

if TYPE_CHECKING:
    from longops.worker.context import RunContext

log = logging.getLogger("longops.worker")

PUMP_INTERVAL = 0.1
"""How often a child sends its progress counter to the worker when it changed (the worker
still writes it at most once per progress interval)."""


class ProtocolError(ValueError):
    """A message the process-isolation protocol does not have (or one of the wrong shape)."""


# -- messages, parent -> child ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Setup:
    """Where to find the task code: the worker's ``sys.path`` and its main script."""

    path: tuple[str, ...]
    main_file: str | None


@dataclass(frozen=True, slots=True)
class Run:
    """Run one attempt: ``spec`` is the pickled :class:`RunSpec`, ``token`` names the run."""

    token: str
    task: str
    spec: bytes


@dataclass(frozen=True, slots=True)
class Cancel:
    """Ask the run ``token`` to stop (cooperatively; force is the worker's signals)."""

    token: str
    reason: str


@dataclass(frozen=True, slots=True)
class Ack:
    """The worker's answer to the run's :class:`CheckpointRequest`: saved or not."""

    token: str
    saved: bool


@dataclass(frozen=True, slots=True)
class Exit:
    """End the child once the current run (if any) is over."""


ToChild = Setup | Run | Cancel | Ack | Exit


# -- messages, child -> parent ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Begun:
    """The run's code starts now (its timeout counts from here, not the child's start)."""

    token: str


@dataclass(frozen=True, slots=True)
class ProgressReport:
    """The run's progress counter changed: its reading (JSON) and versions."""

    reading: dict[str, Any]
    version: int
    step_version: int


@dataclass(frozen=True, slots=True)
class CheckpointRequest:
    """Save this checkpoint (with the progress at that point); answered by :class:`Ack`."""

    state_json: str
    reading: dict[str, Any] | None
    version: int
    step_version: int


@dataclass(frozen=True, slots=True)
class Result:
    """How the run ended, with the child's resident memory, the last progress reading,
    the CPU seconds the run used and its peak resident memory."""

    outcome: str
    result_json: str | None
    error: str | None
    traceback: str | None
    rss: int
    reading: dict[str, Any] | None
    versions: tuple[int, int]
    cpu_seconds: float
    peak_rss: int


@dataclass(frozen=True, slots=True)
class LoadFailed:
    """The run's task could not be loaded in the child: the attempt fails with ``message``."""

    token: str
    message: str


@dataclass(frozen=True, slots=True)
class Broken:
    """The child's reader failed (``message`` says why); the child exits."""

    message: str


ToParent = Begun | ProgressReport | CheckpointRequest | Result | LoadFailed | Broken


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything a child needs to run one attempt (pickled to it)."""

    fn: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    is_async: bool
    wants_context: bool
    operation_id: uuid.UUID
    company: str
    user: str | None
    attempt: int
    task: str
    resume_state: Any = None
    token: str = ""
    """Names this run in the messages about it, so nothing meant for one run reaches
    another run the same child serves later."""
    max_checkpoint_bytes: int = DEFAULT_MAX_CHECKPOINT_BYTES
    max_message_chars: int | None = None


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def death_message(exitcode: int | None) -> str:
    """'child process died: signal 9 (SIGKILL)' or '... exit code 1'."""
    if exitcode is None:
        return "child process died"
    if exitcode < 0:
        return f"child process died: signal {-exitcode} ({signal_name(-exitcode)})"
    return f"child process died: exit code {exitcode}"


class Child:
    """One child process and the worker's end of its pipe."""

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.runs = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self.process.poll()

    def join(self, timeout: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)

    def send(self, message: ToChild) -> bool:
        try:
            self.conn.send(message)
        except (OSError, ValueError, BrokenPipeError):
            return False
        return True

    def terminate(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self.process.terminate()

    def kill(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self.process.kill()

    def close(self, timeout: float = 2.0) -> None:
        """Ask the child to exit, and make sure it does."""
        if self.alive:
            self.send(Exit())
            self.join(timeout)
        if self.alive:
            self.kill()
            self.join(timeout)
        with contextlib.suppress(OSError):
            self.conn.close()


@dataclass
class ChildPool:
    """Idle children, reused across runs until a limit says to replace one.

    ``max_runs``: a child is replaced after this many runs. ``max_memory``: ... after a run
    that left it with more resident memory than this many bytes (None: no limit).
    """

    max_runs: int = 100
    max_memory: int | None = None
    _idle: list[Child] = field(default_factory=list)
    _all: set[Child] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    def acquire(self) -> Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive:
                    return child
                self._all.discard(child)
        return self._start()

    def _start(self) -> Child:
        parent_sock, child_sock = socket.socketpair()
        level = logging.getLogger("longops").getEffectiveLevel()
        main = sys.modules.get("__main__")
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from longops.worker.isolation import child_entry; child_entry()",
                str(child_sock.fileno()),
                str(os.getpid()),
                str(level),
            ],
            pass_fds=[child_sock.fileno()],
            close_fds=True,
            # The child must import longops itself before it hears the worker's sys.path.
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
        child_sock.close()
        conn = Connection(parent_sock.detach())
        # Where to find the task code: the worker's import path, and its main script for
        # tasks defined there.
        conn.send(Setup(tuple(sys.path), getattr(main, "__file__", None)))
        child = Child(process, conn)
        with self._lock:
            self._all.add(child)
        log.debug("child process %s started", process.pid, extra={"action": "child_started"})
        return child

    def release(
        self,
        child: Child,
        rss: int,
        *,
        max_runs: int | None,
        max_memory: int | None,
        ran: bool = True,
    ) -> None:
        """Give a child back after a run that ended normally; replaced past its limits."""
        if ran:
            child.runs += 1
        runs_limit = max_runs or self.max_runs
        memory_limit = max_memory or self.max_memory
        recycle = child.runs >= runs_limit or (memory_limit is not None and rss > memory_limit)
        if recycle or not child.alive or self._closed:
            reason = (
                f"{child.runs} runs"
                if child.runs >= runs_limit
                else f"{rss} bytes resident (limit {memory_limit})"
            )
            log.info(
                "replacing child process %s after %s",
                child.pid,
                reason,
                extra={"action": "child_recycled"},
            )
            self.discard(child)
            return
        with self._lock:
            self._idle.append(child)

    def discard(self, child: Child) -> None:
        with self._lock:
            self._all.discard(child)
            if child in self._idle:
                self._idle.remove(child)
        child.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            children = list(self._all)
            self._all.clear()
            self._idle.clear()
        for child in children:
            child.close(timeout=1.0)


# -- the child's side -------------------------------------------------------------------------
def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def resident_bytes() -> int:
    """This process's resident memory now, in bytes (no dependency: /proc on Linux)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        # ru_maxrss is the peak, in KiB on Linux (bytes on macOS): an upper bound is fine.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class PeakMemory:
    """The highest resident memory of this process during one attempt, in bytes.

    On Linux the kernel's high-water mark (VmHWM) is reset when the attempt begins
    (``/proc/self/clear_refs``), so the figure is exact; elsewhere, or when the reset is not
    allowed, it is the highest of the samples taken (each progress pump and the end).
    """

    def __init__(self) -> None:
        self.exact = _reset_peak()
        self.sampled = resident_bytes()

    def sample(self) -> None:
        self.sampled = max(self.sampled, resident_bytes())

    def peak(self) -> int:
        self.sample()
        if self.exact:
            hwm = _high_water_mark()
            if hwm is not None:
                return max(hwm, self.sampled)
        return self.sampled


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # 5: reset the peak resident set size (Linux 4.0+)
    except OSError:
        return False
    return True


def _high_water_mark() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


ACK_TIMEOUT = 600.0
"""Seconds a child waits for the worker to confirm a checkpoint before giving up on it."""


class _ChildSide:
    """The child's reader thread and the run it serves."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.send_lock = threading.Lock()
        self.runs: queue.Queue[tuple[str, str, bytes] | None] = queue.Queue()
        """Runs handed over: (token, task name, pickled spec), None to exit."""
        self.acks: queue.Queue[bool] = queue.Queue()
        self.lock = threading.Lock()
        self.token: str | None = None
        """The run being served (set, with its context, under ``lock``)."""
        self.ctx: RunContext | None = None
        self.early_cancel: tuple[str, str] | None = None
        """A cancel for a run that has been handed over but not yet begun (token, reason)."""

    def send(self, message: ToParent) -> None:
        with self.send_lock:
            self.conn.send(message)

    def read_forever(self) -> None:
        try:
            self._read()
        except BaseException as exc:
            # A reader that died quietly would leave the run it serves waiting for a cancel
            # or an ack that never comes, and the worker waiting for its result: say why,
            # and end the child so the worker fails the attempt and replaces it.
            with contextlib.suppress(BaseException):
                self.send(Broken(f"{type(exc).__name__}: {exc}"))
            os._exit(EXIT_BROKEN)

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                # The worker is gone: nothing of this run may go on without it.
                os._exit(1)
            match message:
                case Run(token=str(), task=str(), spec=bytes()):
                    self.runs.put((message.token, message.task, message.spec))
                case Cancel(token=str(token), reason=str(reason)):
                    self.cancel(token, reason)
                case Ack(token=str(token), saved=bool(saved)):
                    with self.lock:
                        current = self.token
                    if token == current:
                        self.acks.put(saved)
                case Exit():
                    self.runs.put(None)
                case _:
                    raise ProtocolError(f"unexpected message from the worker: {message!r:.200}")

    def cancel(self, token: str, reason: str) -> None:
        with self.lock:
            if token == self.token and self.ctx is not None:
                ctx: RunContext | None = self.ctx
            else:
                # Not begun yet (or already over, when the token will never come again).
                self.early_cancel = (token, reason)
                ctx = None
        if ctx is not None:
            ctx.request_stop(reason)

    def begin(self, token: str, ctx: RunContext) -> None:
        with self.lock:
            self.token, self.ctx = token, ctx
            early, self.early_cancel = self.early_cancel, None
        if early is not None and early[0] == token:
            ctx.request_stop(early[1])

    def end(self) -> None:
        with self.lock:
            self.token = self.ctx = None
            self.early_cancel = None
        while not self.acks.empty():
            self.acks.get_nowait()


EXIT_BROKEN = 70
"""A child's exit code when its reader failed (``EX_SOFTWARE``: an internal error)."""


class _MainLoader(pickle.Unpickler):
    """Unpickles run specs; loads the worker's main script only if a task lives there."""

    main_path: str | None = None
    main_loaded = False

    def find_class(self, module: str, name: str) -> Any:
        if module == "__main__" and not _MainLoader.main_loaded:
            # (multiprocessing aliases ``__mp_main__`` to this interpreter's ``-c`` main
            # when imported, so that name's presence says nothing about the script.)
            _load_main(self.main_path)
            _MainLoader.main_loaded = True
        return super().find_class(module, name)


def _load_main(path: str | None) -> None:
    """Run the worker's main script as ``__mp_main__`` (its guarded block stays out)."""
    if not path:
        raise LookupError(
            "the task is defined in the worker's __main__, which has no script file "
            "(an interactive session or python -c); define it in a module"
        )
    problem = main_guard_problem(path)
    if problem is not None:
        raise RuntimeError(problem)
    namespace = runpy.run_path(path, run_name="__mp_main__")
    main = type(sys)("__mp_main__")
    main.__dict__.update(namespace)
    sys.modules["__mp_main__"] = sys.modules["__main__"] = main


def main_guard_problem(path: str) -> str | None:
    """Why the script at ``path`` cannot be loaded in a child, or None when it can.

    A child loads the script that defines a task in order to find the task; a script
    whose top level has no ``if __name__ == "__main__":`` block would run all of itself
    again there (enqueue again, start a worker in the child), so it is refused.

    Example::

        main_guard_problem("myjobs.py")   # None, or 'myjobs.py has no ... guard: ...'
    """
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError) as exc:
        return f"could not read the worker's main script {path}: {exc}"
    if any(_is_main_guard(node) for node in tree.body):
        return None
    return (
        f"{path} defines the task but has no 'if __name__ == \"__main__\":' guard: "
        "a child process would run the whole script again; put the code that enqueues "
        "or starts a worker under the guard, or define the task in a module"
    )


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    sides = [test.left, *test.comparators]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    texts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(sides) == 2 and isinstance(test.ops[0], ast.Eq) and bool(names and texts)


def child_entry() -> None:
    """The child process's ``main``: ``python -c ... child_entry() FD PARENT_PID LEVEL``."""
    fd, parent_pid, level = (int(a) for a in sys.argv[1:4])
    child_main(Connection(fd), parent_pid, level)


def child_main(conn: Connection, parent_pid: int, log_level: int) -> None:
    """Run attempts until told to exit."""
    _die_with_parent()
    if os.getppid() != parent_pid:
        os._exit(1)  # the worker died before we asked to die with it
    match conn.recv():
        case Setup(path=tuple(path), main_file=main_file):
            sys.path[:] = path
            _MainLoader.main_path = main_file
        case other:
            raise ProtocolError(f"expected the worker's set-up first, not {other!r:.200}")
    logging.basicConfig(
        level=log_level,
        format="%(asctime)s %(levelname)-7s %(name)s[child %(process)d]: %(message)s",
        stream=sys.stderr,
    )
    side = _ChildSide(conn)
    threading.Thread(target=side.read_forever, name="longops-child-reader", daemon=True).start()
    while True:
        handed = side.runs.get()
        if handed is None:
            return
        token, task, data = handed
        try:
            spec = _MainLoader(io.BytesIO(data)).load()
        except Exception as exc:
            side.send(LoadFailed(token, load_failure(task, exc)))
            continue
        _run_one(side, spec)


def load_failure(task: str, exc: BaseException) -> str:
    """'child process could not load task 'x': AttributeError: ...'."""
    return f"child process could not load task {task!r}: {type(exc).__name__}: {exc}"


def _run_one(side: _ChildSide, spec: RunSpec) -> None:
    # Imported on the first run: a child (and the worker's memory guard, which reads
    # resident_bytes) starts without the run context's telemetry.
    from longops.worker.context import RunContext
    from longops.worker.invoke import invoke

    counter = ProgressCounter()
    memory = PeakMemory()
    stop_pump = threading.Event()
    kick = threading.Event()
    sent = [(0, 0)]

    def pump_once() -> None:
        reading, *versions = counter.read()
        if tuple(versions) != sent[0]:
            side.send(ProgressReport(reading.to_json(), versions[0], versions[1]))
            sent[0] = (versions[0], versions[1])

    def pump() -> None:
        while not stop_pump.is_set():
            kick.wait(PUMP_INTERVAL)
            kick.clear()
            memory.sample()
            pump_once()

    def sink(text: str) -> bool:
        reading, version, step_version = counter.read()
        side.send(
            CheckpointRequest(text, reading.to_json() if version else None, version, step_version)
        )
        try:
            return side.acks.get(timeout=ACK_TIMEOUT)
        except queue.Empty:
            raise RuntimeError(
                f"the worker did not confirm the checkpoint within {ACK_TIMEOUT:g} s"
            ) from None

    ctx = RunContext(
        operation_id=spec.operation_id,
        company=spec.company,
        user=spec.user,
        attempt=spec.attempt,
        task=spec.task,
        counter=counter,
        resume_state=spec.resume_state,
        checkpoint_sink=sink,
        on_step=kick.set,
        max_checkpoint_bytes=spec.max_checkpoint_bytes,
        max_message_chars=spec.max_message_chars,
    )
    side.begin(spec.token, ctx)
    side.send(Begun(spec.token))  # the timeout counts from here, not the child's start
    pumper = threading.Thread(target=pump, name="longops-child-pump", daemon=True)
    pumper.start()
    cpu_began = time.process_time()
    run = invoke(
        spec.fn,
        spec.args,
        spec.kwargs,
        ctx=ctx if spec.wants_context else None,
        is_async=spec.is_async,
    )
    stop_pump.set()
    kick.set()
    pumper.join()
    side.end()
    reading, versions = _final(counter)
    side.send(
        Result(
            outcome=run.outcome.value,
            result_json=run.result_json,
            error=run.error_message,
            traceback=run.traceback,
            rss=resident_bytes(),
            reading=reading,
            versions=versions,
            cpu_seconds=time.process_time() - cpu_began,
            peak_rss=memory.peak(),
        )
    )


def _final(counter: ProgressCounter) -> tuple[dict[str, Any] | None, tuple[int, int]]:
    reading, version, step_version = counter.read()
    return (reading.to_json() if version else None), (version, step_version)
