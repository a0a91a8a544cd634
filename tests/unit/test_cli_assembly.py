"""How ``longops.cli`` is put together: one Typer app per module, the root options in
Typer's context (no module-level state), and defaults the help shows without loading core."""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer
from typer.testing import CliRunner

from longops.cli import main, tokens
from longops.cli.context import CliState, state
from longops.core.security import DEFAULT_TOKEN_LIFETIME


def test_the_token_lifetime_the_help_shows_is_cores() -> None:
    assert f"{DEFAULT_TOKEN_LIFETIME.days}d" == tokens.DEFAULT_EXPIRES


def test_each_part_is_a_module_with_one_typer_app() -> None:
    for name in main.PARTS:
        part = importlib.import_module(f"longops.cli.{name}")
        assert isinstance(part.app, typer.Typer), name


def test_the_root_options_reach_a_command_through_the_context() -> None:
    seen: list[CliState] = []
    probe = typer.Typer(name="probe")

    @probe.command("show")
    def show(ctx: typer.Context) -> None:
        seen.append(state(ctx))

    main.cli.add_typer(probe)
    try:
        for user in ("alice", "bob"):
            result = CliRunner().invoke(
                main.cli, ["--as", user, "--database-url", "sqlite:///x.db", "probe", "show"]
            )
            assert result.exit_code == 0, result.output
    finally:
        main.cli.registered_groups.pop()
    assert [(s.as_user, s.database_url) for s in seen] == [
        ("alice", "sqlite:///x.db"),
        ("bob", "sqlite:///x.db"),
    ]
    assert seen[0] is not seen[1]  # each command line its own state, nothing module-global


def test_help_loads_neither_the_application_nor_the_web_stack() -> None:
    code = (
        "import sys; from longops.cli.main import main\n"
        "sys.argv = ['longops', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('longops.app', 'longops.core', 'longops.store', 'fastapi', 'uvicorn',"
        " 'psycopg', 'opentelemetry', 'playwright')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_command_loads_neither_the_worker_room_nor_the_services() -> None:
    """A command that reads or changes things (``companies list``) loads the application,
    not what only a worker runs: the dispatcher, its executor and process isolation, the
    worker session, the services (each command line would pay their imports)."""
    code = (
        "import sys; from longops.cli.main import main\n"
        "sys.argv = ['longops', '--database-url', 'sqlite:///:memory:', 'companies', 'list']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "worker = ('longops.worker.dispatcher', 'longops.worker.executor',"
        " 'longops.worker.isolation', 'longops.worker.session', 'longops.services')\n"
        "print('longops.app' in sys.modules,"
        " sorted(m for m in sys.modules if m.startswith(worker)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "True []", done.stdout + done.stderr
