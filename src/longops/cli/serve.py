"""``longops serve``: the REST API and the pages on uvicorn, and optionally worker slots
beside them."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import secrets
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process

from longops.api import create_api
from longops.api.deps import EndsCachedTokens, Services, SharedCounter
from longops.app import Longops
from longops.asgi import trusted_set
from longops.core.security import SessionPolicy
from longops.core.signin import HashPool, SignInPolicy
from longops.core.streams import EventHub
from longops.domain.errors import ValidationError
from longops.settings import ServerSettings
from longops.web import create_pages
from longops.web.guard import WebOptions, origin_of

log = logging.getLogger("longops.serve")

API_PATHS = ("/v1/", "/docs", "/healthz", "/readyz", "/metrics")
"""What the REST API answers; every other path is one of the pages."""


class Server:
    """The API and the pages as one ASGI application, sharing one event hub.

    The API runs the lifespan (it starts and stops the hub); a path under ``/v1``,
    ``/docs`` or ``/healthz`` goes to the API, everything else to the pages.

    Example::

        uvicorn.run(Server(app))
    """

    def __init__(
        self,
        app: Longops,
        *,
        secret: bytes | None = None,
        settings: ServerSettings | None = None,
    ) -> None:
        chosen = settings or ServerSettings()
        configure_security(app, chosen)
        self.hub = EventHub(app.store)
        self.api = create_api(app, hub=self.hub, max_body=chosen.max_body_api)
        self.pages = create_pages(app, self.hub, secret=secret, options=web_options(chosen))
        # A user disabled or a grant changed on the pages ends the API's cached tokens too.
        services: Services = self.api.state.longops
        self.pages_ending_tokens = EndsCachedTokens(self.pages, services.tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope.get("path", "")
            if not (path == "/v1" or path.startswith(API_PATHS)):
                await self.pages_ending_tokens(scope, receive, send)
                return
        await self.api(scope, receive, send)


def configure_security(app: Longops, settings: ServerSettings) -> None:
    """Give the application's security service the sign-in policy, the hashing pool and
    the session lifetimes of ``settings``."""
    try:
        app.security.configure(
            sign_in=SignInPolicy(
                account_free=settings.signin_account_free,
                account_lockout_after=settings.signin_account_lockout_after,
                address_free=settings.signin_address_free,
                address_lockout_after=settings.signin_address_lockout_after,
                backoff=timedelta(seconds=settings.signin_backoff_seconds),
                backoff_max=timedelta(seconds=settings.signin_backoff_max_seconds),
                lockout=timedelta(seconds=settings.signin_lockout_seconds),
            ),
            pool=HashPool(slots=settings.hash_slots, queue=settings.hash_queue),
            sessions=SessionPolicy(
                idle=timedelta(minutes=settings.session_idle_minutes),
                absolute=timedelta(hours=settings.session_absolute_hours),
            ),
        )
    except ValidationError as exc:
        raise ValidationError(f"LONGOPS_{exc.field.upper()}", exc.rule, exc.value) from None


def web_options(settings: ServerSettings) -> WebOptions:
    """The pages' guard options of ``settings``."""
    if settings.base_url is not None and origin_of(settings.base_url) is None:
        raise ValidationError("LONGOPS_BASE_URL", "must be an http(s) URL", settings.base_url)
    if settings.max_body_form < 1 or settings.max_body_api < 1:
        raise ValidationError("LONGOPS_MAX_BODY_FORM", "must be at least 1 byte")
    return WebOptions(
        base_url=settings.base_url,
        secure_cookies=settings.secure_cookies,
        trusted_proxies=trusted_set(settings.trusted_proxies),
        max_body=settings.max_body_form,
    )


class _Uvicorn(uvicorn.Server):
    """uvicorn, except that SIGTERM and SIGINT only stop the server: uvicorn raises the
    signal again once it has shut down, which would end the process before the embedded
    worker drains (and exit with -15 instead of 0, as ``longops worker`` does).
    ``stopped_by``: the signals that stopped it, in order. ``on_ready``: called once it
    accepts connections (the application started, the socket listening), to announce it."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.stopped_by: list[int] = []
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit and self.on_ready is not None:
            self.on_ready()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stopped_by.append(sig)
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class EarlySignals:
    """SIGTERM and SIGINT from the moment a command says it serves until uvicorn takes
    them over: noted and handed to the server, which then stops as soon as it has
    started (the embedded worker drained on the way out, exit code 0), instead of
    Python's default ending the process at once (-15, the worker not drained).

    Made (in the main thread) before the announcement; :meth:`hand_to` the server once
    it exists; :meth:`close` puts the previous handlers back.

    Example::

        early = EarlySignals()
        print("serving on ...")
        server = _Uvicorn(config)
        early.hand_to(server)
        try:
            server.run()
        finally:
            early.close()
    """

    def __init__(self) -> None:
        self.signals: list[int] = []
        self._server: uvicorn.Server | None = None
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._note) for sig in _SIGNALS}

    def _note(self, sig: int, frame: FrameType | None) -> None:
        self.signals.append(sig)
        if self._server is not None:
            self._server.handle_exit(sig, frame)

    def hand_to(self, server: uvicorn.Server) -> None:
        """The server stops on the signals noted so far, and on those until it runs."""
        self._server = server
        for sig in self.signals:
            server.handle_exit(sig, None)

    def hand_to_supervisor(self, supervisor: Multiprocess) -> None:
        """The same for uvicorn's supervisor of ``--processes`` (its handlers are in place
        from its construction on: only the signals noted before then are handed over)."""
        supervisor.signal_queue.extend(self.signals)

    def close(self) -> None:
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def secret_key() -> bytes | None:
    """The key that signs session cookies (``LONGOPS_SECRET_KEY``); None: a random one,
    so sign-ins end when the server restarts."""
    text = os.environ.get("LONGOPS_SECRET_KEY")
    if not text:
        return None
    key = text.encode()
    if len(key) < 32:
        raise ValidationError("LONGOPS_SECRET_KEY", "must be at least 32 characters")
    return key


_SPEC_ENV = "LONGOPS_SERVE_APP_SPEC"
_URL_ENV = "LONGOPS_SERVE_DATABASE_URL"
_SHARED_ENV = "LONGOPS_SERVE_SHARED_COUNTER"


def process_server() -> Server:
    """The application of one of ``--processes`` server processes (uvicorn's factory):
    the same ``--app`` and database as the command that started them."""
    from longops.cli.loading import load_app

    app = load_app(os.environ.get(_SPEC_ENV) or None, os.environ.get(_URL_ENV) or None)
    server = Server(app, secret=secret_key())
    shared = os.environ.get(_SHARED_ENV)
    if shared:
        # A token revoked (a user disabled, a queue paused) through any of the processes
        # ends what every one of them kept.
        services: Services = server.api.state.longops
        services.tokens.share(SharedCounter(shared))
    freeze_startup_objects()
    return server


def freeze_startup_objects() -> None:
    """Take what start-up made (modules, the application, the routes and models: some
    100,000 objects that live as long as the process) out of the garbage collector's
    sight: its full collections then scan only what requests made, instead of pausing
    every request of the process for tens of milliseconds each time (api-notes.md)."""
    gc.collect()
    gc.freeze()


def serve(
    app: Longops,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    worker_options: dict[str, Any] | None = None,
    processes: int = 1,
    app_spec: str | None = None,
    access_log: bool = False,
    early: EarlySignals | None = None,
    announce: Callable[[], None] | None = None,
) -> int:
    """Serve the API and the pages until SIGINT/SIGTERM; with ``workers`` > 0 a worker
    session with that many slots runs in this process too (single-machine use), drained on
    the way out. ``processes`` > 1 runs that many server processes on the port (uvicorn's
    workers), each with its own event hub and database pool; they share the cookie key
    (``LONGOPS_SECRET_KEY``, or one made now for all of them). ``access_log``: a line per
    request on stderr (off by default: at a thousand requests a second the lines cost more
    than the requests). ``early``: the signal handlers the command installed before it
    announced itself (else they are installed here). ``announce``: called once the server
    accepts connections (with ``processes`` > 1: once every process does), so whoever
    reads what it says can connect at once."""
    early = early or EarlySignals()
    try:
        return _serve(
            app,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            worker_options=worker_options,
            processes=processes,
            app_spec=app_spec,
            access_log=access_log,
            early=early,
            announce=announce,
        )
    finally:
        early.close()


def _serve(
    app: Longops,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    worker_options: dict[str, Any] | None,
    processes: int,
    app_spec: str | None,
    access_log: bool,
    early: EarlySignals,
    announce: Callable[[], None] | None,
) -> int:
    app.schema.guard_start(app.app_infos())  # an older schema: refused, exit code 78
    if processes > 1:
        if not os.environ.get("LONGOPS_SECRET_KEY"):
            os.environ["LONGOPS_SECRET_KEY"] = secrets.token_hex(32)
        os.environ[_SPEC_ENV] = app_spec or ""
        os.environ[_URL_ENV] = app.database_url
        # Mapped by every process (the page stays in memory; it is never read from disk).
        handle, counter = tempfile.mkstemp(prefix="longops-serve-")
        os.close(handle)
        SharedCounter.create(counter)
        os.environ[_SHARED_ENV] = counter
    server_app = Server(app, secret=secret_key()) if processes == 1 else None
    if server_app is not None:
        freeze_startup_objects()
    worker = None
    thread = None
    if workers > 0:
        worker = app.worker(concurrency=workers, **(worker_options or {}))
        thread = threading.Thread(
            target=worker.run, kwargs={"install_signals": False}, name="longops-serve-worker"
        )
        thread.start()
    # Forwarded headers are read by the application, from LONGOPS_TRUSTED_PROXIES only
    # (uvicorn's own reading would trust 127.0.0.1 whatever the settings say).
    config = uvicorn.Config(
        server_app or "longops.cli.serve:process_server",
        factory=server_app is None,
        workers=processes,
        host=host,
        port=port,
        log_level=log_level.lower(),
        lifespan="on",
        proxy_headers=False,
        access_log=access_log,
        # uvloop and httptools when installed (they are dependencies where they build),
        # else asyncio's loop and h11; the same application either way.
        loop="auto",
        http="auto",
    )
    try:
        if server_app is None:
            # uvicorn's supervisor: it starts, watches and stops the server processes,
            # each on a listening socket of its own where the kernel spreads connections.
            if spreads_connections():
                sockets = listening_sockets(host, port, processes)
                supervisor: Multiprocess = SpreadProcesses(config, sockets, announce)
            else:
                supervisor = AnnouncingProcesses(config, [config.bind_socket()], announce)
            early.hand_to_supervisor(supervisor)
            supervisor.run()
        else:
            server = _Uvicorn(config, on_ready=announce)
            early.hand_to(server)
            server.run()
    finally:
        # From here on as before: a signal during the embedded worker's drain ends the
        # process (the server, which drained on the first, is gone).
        early.close()
        if processes > 1:
            with contextlib.suppress(OSError):
                os.unlink(os.environ.pop(_SHARED_ENV, ""))
        if worker is not None and thread is not None:
            worker.drain()
            thread.join(timeout=worker.options.grace_period + 30)
    return 0


def spreads_connections() -> bool:
    """Whether the kernel spreads new connections over listening sockets that share a port
    (``SO_REUSEPORT`` on Linux; elsewhere it may hand them all to one)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to ``host``:``port`` with ``SO_REUSEPORT``: the kernel hands
    each new connection to one of them by a hash of its addresses, so the processes of
    ``--processes N`` (one socket each) get about even shares of the clients. With one
    shared socket, whichever process happens to be accepting takes the connections that
    arrive together (48 of 50 seen in api-notes.md), and a keep-alive client stays on it.

    The port must be free as ever: it is first bound without ``SO_REUSEPORT`` (a server
    already listening there, even one with such sockets, is refused: "address already in
    use", exit 3, as uvicorn's own binding says). Port 0 binds a free port for all of them.

    Example::

        sockets = listening_sockets("127.0.0.1", 8000, 2)
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            logging.getLogger("uvicorn.error").error(exc)
            sys.exit(STARTUP_FAILURE)
        port = probe.getsockname()[1]
    made: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            made.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.set_inheritable(True)
    except OSError as exc:
        for sock in made:
            sock.close()
        logging.getLogger("uvicorn.error").error(exc)
        sys.exit(STARTUP_FAILURE)
    log.info("longops serve on http://%s:%d, %d processes", host, port, count)
    return made


def listening(sock: socket.socket) -> bool:
    """Whether a server process listens on ``sock`` (this process's copy of it shares the
    state): uvicorn listens only once the application's start-up is done, so a connection
    made then is served at once."""
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))


class AnnouncingProcesses(Multiprocess):
    """uvicorn's supervisor, which calls ``announce`` once its processes accept: once each
    of its sockets listens (one shared socket: once the first process accepts on it; the
    others take connections from it as they start). Until then it starts nothing else but
    stops on SIGTERM/SIGINT, and a process that ends meanwhile is left to
    :meth:`keep_subprocess_alive` (announced when its replacement listens)."""

    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket.socket],
        announce: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config, sockets)
        self.announce = announce

    def init_processes(self) -> None:
        super().init_processes()
        self.announce_when_listening()

    def announce_when_listening(self) -> None:
        if self.announce is None:
            return
        # A short poll of the kernel's state (no protocol with the processes): the start of
        # a server process takes seconds of imports, the poll microseconds each time.
        while not self.should_exit.wait(0.02):
            self.handle_signals()
            if self.should_exit.is_set():
                return
            if all(listening(sock) for sock in self.sockets):
                announce, self.announce = self.announce, None
                announce()
                return
            if not all(process.process.is_alive() for process in self.processes):
                return  # keep_subprocess_alive replaces it, then announces

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        if self.announce is not None and not self.should_exit.is_set():
            self.announce_when_listening()


class SpreadProcesses(AnnouncingProcesses):
    """uvicorn's supervisor, except that server process i accepts on ``sockets[i]`` only
    (``listening_sockets``: the kernel spreads connections over them). A replacement for
    a process that died takes over its socket (this process keeps them all open): the
    connections waiting on it are served once the replacement has started, not refused.
    Changing the number of processes while running (SIGTTIN/SIGTTOU) is not offered.
    ``announce``: called once every process listens on its socket."""

    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket.socket],
        announce: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config, sockets, announce)
        self.processes_num = len(sockets)

    def _started(self, index: int) -> Process:
        process = Process(self.config, [self.sockets[index]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._started(i) for i in range(self.processes_num)]
        self.announce_when_listening()

    def keep_subprocess_alive(self) -> None:
        self.replace_dead()
        if self.announce is not None and not self.should_exit.is_set():
            self.announce_when_listening()

    def replace_dead(self) -> None:
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung, or gone
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # Broken before it served (the application, the database): a restart
                # would fail the same way.
                log.error("server process %s failed to start; stopping", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.warning("server process %s died; starting another on its socket", process.pid)
            self.processes[index] = self._started(index)

    def restart_all(self) -> None:
        """SIGHUP: replace each process. The replacement shares its predecessor's socket,
        so a connection arriving while it starts waits for it instead of being refused."""
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            self.processes[index] = self._started(index)
            old.terminate()  # it finishes the requests it holds
            old.join()

    def handle_ttin(self) -> None:
        log.warning("SIGTTIN ignored: longops serve runs a fixed number of processes")

    def handle_ttou(self) -> None:
        log.warning("SIGTTOU ignored: longops serve runs a fixed number of processes")
