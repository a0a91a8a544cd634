"""A pytest plugin that records the work each test costs: wall time and CPU time (the test
process's own, and that of the child processes it waited for), set-up and teardown included.

    SUITE_WORK_OUT=/tmp/work PYTHONPATH=benchmarks pytest -p suite_work ...
    python benchmarks/suite_work.py /tmp/work [/tmp/work-after]

On a shared, loaded machine the wall time of a whole run means little; the CPU a test uses
(and the time it waits, wall minus CPU) is what a change to the suite moves. The PostgreSQL
server's own CPU is not counted.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Generator
from pathlib import Path

import pytest


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    out = os.environ.get("SUITE_WORK_OUT")
    started = time.time()
    wall, own, kids = (
        time.perf_counter(),
        _cpu(resource.RUSAGE_SELF),
        _cpu(resource.RUSAGE_CHILDREN),
    )
    yield
    if not out:
        return
    row = {
        "id": item.nodeid,
        "start": started,
        "wall": time.perf_counter() - wall,
        "cpu": _cpu(resource.RUSAGE_SELF) - own,
        "children": _cpu(resource.RUSAGE_CHILDREN) - kids,
    }
    Path(out).mkdir(parents=True, exist_ok=True)
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with (Path(out) / f"{name}-{os.getpid()}.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Each process's CPU up to the end of its collection (start-up, plugins, conftests,
    every test module imported), as a row ``collection:<worker>``."""
    out = os.environ.get("SUITE_WORK_OUT")
    if not out:
        return
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    row = {
        "id": f"collection:{name}",
        "start": time.time(),
        "wall": time.time() - _started(),
        "cpu": _cpu(resource.RUSAGE_SELF),
        "children": _cpu(resource.RUSAGE_CHILDREN),
        "items": len(session.items),
    }
    Path(out).mkdir(parents=True, exist_ok=True)
    with (Path(out) / f"{name}-{os.getpid()}.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")


def _started() -> float:
    """When this process started (Linux: from /proc)."""
    ticks = int(Path("/proc/self/stat").read_text().rpartition(")")[2].split()[19])
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime")
    )
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def load(folder: str) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    for path in Path(folder).glob("*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            rows[row.pop("id")] = row
    return rows


def collections(rows: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The ``collection:<worker>`` rows, taken out of ``rows``."""
    found = {k: rows.pop(k) for k in [k for k in rows if k.startswith("collection:")]}
    return dict(sorted(found.items()))


def group(nodeid: str, depth: int) -> str:
    parts = nodeid.split("::")[0].split("/")
    return "/".join(parts[:depth])


def summary(rows: dict[str, dict[str, float]], depth: int) -> dict[str, list[float]]:
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for nodeid, r in rows.items():
        s = sums[group(nodeid, depth)]
        s[0] += 1
        s[1] += r["wall"]
        s[2] += r["cpu"]
        s[3] += r["children"]
    return sums


def main(argv: list[str]) -> None:
    runs = [load(f) for f in argv]
    for folder, run in zip(argv, runs, strict=True):
        for key, c in collections(run).items():
            print(f"{folder}: {key}: {c['cpu']:.1f} s CPU, {c['wall']:.1f} s wall")
    depth = int(os.environ.get("DEPTH", "2"))
    print(
        "| group | "
        + " | ".join(f"tests, wall s, cpu s, children cpu s ({a})" for a in argv)
        + " |"
    )
    sums = [summary(r, depth) for r in runs]
    keys = sorted(set().union(*sums), key=lambda k: -max(s[k][1] for s in sums if k in s))
    total = [[0, 0.0, 0.0, 0.0] for _ in runs]
    for k in keys:
        cells = []
        for i, s in enumerate(sums):
            v = s.get(k, [0, 0, 0, 0])
            total[i] = [a + b for a, b in zip(total[i], v, strict=True)]
            cells.append(f"{v[0]} / {v[1]:.1f} / {v[2]:.1f} / {v[3]:.1f}")
        print(f"| {k} | " + " | ".join(cells) + " |")
    print(
        "| total | "
        + " | ".join(f"{t[0]} / {t[1]:.1f} / {t[2]:.1f} / {t[3]:.1f}" for t in total)
        + " |"
    )
    top = int(os.environ.get("TOP", "0"))
    if top:
        for i, r in enumerate(runs):
            slow = sorted(r.items(), key=lambda kv: -kv[1]["wall"])[:top]
            wall = sum(v["wall"] for _, v in slow)
            print(f"\n{argv[i]}: the {top} longest tests, wall sum {wall:.1f} s")
            for nodeid, v in slow[: int(os.environ.get("SHOW", "40"))]:
                print(f"  {v['wall']:6.1f} {v['cpu']:6.1f} {v['children']:6.1f}  {nodeid}")


if __name__ == "__main__":
    main(sys.argv[1:])
