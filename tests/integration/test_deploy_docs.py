"""docs/deploy.md's systemd unit and Kubernetes Deployment are checked against the real
command line: every option they pass is one ``longops worker`` has and accepts, the stop
timeouts outlast the grace period, the probes ask the paths and the port the worker serves,
and the Deployment's own arguments start a worker whose probes answer 200."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from longops.cli.main import cli
from longops.worker.health import PATHS
from longops.worker.memory import EXIT_MEMORY, parse_size
from procs import APPS, wait_for

DOCS = Path(__file__).parents[2] / "docs" / "deploy.md"


def block(kind: str) -> str:
    found = re.findall(rf"```{kind}\n(.*?)\n```", DOCS.read_text(), re.DOTALL)
    assert len(found) == 1, f"docs/deploy.md should show one {kind} block"
    return str(found[0])


def parse_command(argv: list[str]) -> tuple[Any, Any]:
    """Parse ``longops ... worker ...`` as the real CLI does (unknown options and bad
    values raise); returns the group's and the worker command's contexts."""
    group: Any = typer.main.get_command(cli)  # typer's own click, whatever its version
    assert Path(argv[0]).name == "longops"
    at = argv.index("worker")
    outer = group.make_context("longops", [*argv[1:at], "worker"], resilient_parsing=False)
    worker = group.get_command(outer, "worker")
    assert worker is not None
    inner = worker.make_context("worker", argv[at + 1 :], parent=outer)
    return outer, inner


def database_envvar() -> str:
    group: Any = typer.main.get_command(cli)
    [option] = [p for p in group.params if "--database-url" in getattr(p, "opts", ())]
    assert option.envvar is not None
    return str(option.envvar)


def test_the_systemd_unit_matches_the_worker_command() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string(block("ini"))
    service = unit["Service"]
    _, worker = parse_command(shlex.split(service["ExecStart"]))
    grace = worker.params["grace_period"]
    assert service["KillSignal"] == "SIGTERM"
    assert float(service["TimeoutStopSec"]) > grace
    assert service["Restart"] == "on-failure"  # restarts the memory exit (75) too
    assert parse_size(worker.params["max_memory"]) > 0
    assert service["Environment"].split("=", 1)[0] == database_envvar()


def container() -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = yaml.safe_load(block("yaml"))
    assert deployment["kind"] == "Deployment"
    pod = deployment["spec"]["template"]["spec"]
    [worker] = pod["containers"]
    return pod, worker


def test_the_deployment_matches_the_worker_command() -> None:
    pod, spec = container()
    _, worker = parse_command([*spec["command"], *spec["args"]])
    options = worker.params
    assert pod["terminationGracePeriodSeconds"] > options["grace_period"]
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert ports[spec["livenessProbe"]["httpGet"]["port"]] == options["health_port"]
    assert ports[spec["readinessProbe"]["httpGet"]["port"]] == options["health_port"]
    assert (
        spec["livenessProbe"]["httpGet"]["path"],
        spec["readinessProbe"]["httpGet"]["path"],
    ) == (
        "/livez",
        "/readyz",
    )
    assert set(PATHS) == {"/livez", "/readyz"}
    # Probes come to the pod's address, not the container's loopback.
    assert options["health_host"] == "0.0.0.0"  # noqa: S104
    limit = parse_size(spec["resources"]["limits"]["memory"])
    assert parse_size(options["max_memory"]) < limit
    # The database, and the key notification channels are encrypted with (as serve's).
    assert [e["name"] for e in spec["env"]] == [database_envvar(), "LONGOPS_SECRET_KEY"]


def test_the_documented_exit_code_is_the_workers() -> None:
    text = DOCS.read_text()
    assert f"| **{EXIT_MEMORY}** |" in text
    assert f"Exit code {EXIT_MEMORY} is `EX_TEMPFAIL`" in text


def test_the_deployments_arguments_start_a_worker_whose_probes_answer(tmp_path: Path) -> None:
    import urllib.request

    pod, spec = container()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [str(a) for a in spec["args"]]
    args[args.index("--app") + 1] = "stress_app:app"
    args[args.index("--health-port") + 1] = str(port)
    args[args.index("--health-host") + 1] = "127.0.0.1"  # the test's own loopback
    db = f"sqlite:///{tmp_path / 'deploy.db'}"
    env = {**os.environ, "PYTHONPATH": str(APPS), database_envvar(): db}
    cli_main = [sys.executable, "-m", "longops.cli.main"]
    subprocess.run([*cli_main, "db", "upgrade"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [*cli_main, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:

        def answers(path: str) -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        for probe in ("livenessProbe", "readinessProbe"):
            path = spec[probe]["httpGet"]["path"]
            wait_for(lambda p=path: answers(p), timeout=30, what=f"{path} 200")  # type: ignore[misc]
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=pod["terminationGracePeriodSeconds"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0


def test_the_check_refuses_an_option_the_worker_does_not_have() -> None:
    for bad in (["--health-prot", "8081"], ["--concurrency", "eight"]):
        with pytest.raises(Exception, match=r"No such option|valid integer"):
            parse_command(["longops", "worker", *bad])
