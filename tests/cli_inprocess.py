"""The ``longops`` command run in this process (Typer's ``CliRunner``), answering as a
finished process does, for the CLI tests that check what a command prints and its exit
code rather than how a process behaves: no interpreter start and imports per command.

Commands that run a process of their own (``worker``, ``serve``, ``demo``: logging set-up,
signal handlers, uvicorn) always run as real processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from typer.testing import CliRunner

from longops.cli.main import cli

PROCESS_COMMANDS = frozenset({"worker", "serve", "demo"})
PROG = "python -m longops.cli.main"


def needs_a_process(args: Sequence[str]) -> bool:
    """Whether the command line names a command that must run as a process of its own."""
    return any(a in PROCESS_COMMANDS for a in args if not a.startswith("-"))


def run_longops(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``longops ARGS`` and return its exit code, standard output and error.

    In this process unless ``process`` is set or the command needs a process; ``env`` (a
    whole environment, as for ``subprocess.run``) applies to either.
    """
    if process or needs_a_process(args):
        return subprocess.run(
            [sys.executable, "-m", "longops.cli.main", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=None if env is None else dict(env),
        )
    overrides: dict[str, str | None] | None = None
    if env is not None:
        overrides = {k: None for k in os.environ if k not in env}
        overrides.update(env)
        # What PYTHONPATH gives a process (the tests' apps), this process finds too.
        for folder in env.get("PYTHONPATH", "").split(os.pathsep):
            if folder and folder not in sys.path:
                sys.path.append(folder)
    result = CliRunner().invoke(
        cli, list(args), env=overrides, catch_exceptions=False, prog_name=PROG
    )
    return subprocess.CompletedProcess(
        [PROG, *args], result.exit_code, result.stdout, result.stderr
    )
