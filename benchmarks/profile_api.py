"""Where a ``longops serve`` process spends its CPU under the API benchmark's load.

Run from the project root (py-spy in the venv: ``pip install py-spy``)::

    flock /work/wt/bench.lock .venv/bin/python benchmarks/profile_api.py [--seconds 20]
        [--clients 50] [--sse 0]

The load of ``bench_api.py`` (1,000 operations, half done and half ready for tomorrow; 4/5
single reads, 1/5 first pages of 20, wrk with ``--clients`` connections) against one
``longops serve --workers 2`` process of this tree, with ``py-spy record`` (on-CPU samples
only, every thread, native frames off) for ``--seconds``. Writes
``benchmarks/results/profile-api.txt``: the share of samples per function (self and
inclusive) and the top stacks, plus the server's CPU per request in the same window.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bench_api

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def summarize(collapsed: Path, top: int) -> list[str]:
    """Self and inclusive shares per function, from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    stacks: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " " + f.split(" (")[-1].split(":")[0].rstrip(")")
                  for f in stack.split(";")]  # fmt: skip
        # "function (file:line)" -> "function file"
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
        stacks[";".join(frames[-6:])] += n
    out = [f"samples: {total}", "", "## self (share of on-CPU samples)", ""]
    out += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out += ["", "## inclusive", ""]
    out += [f"{100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top * 2)]
    out += ["", "## top stacks (last 6 frames)", ""]
    out += [f"{100 * n / total:5.1f}%  {s}" for s, n in stacks.most_common(top)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--sse", type=int, default=0)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "profile-api.txt")
    parser.add_argument("--pg-admin-url", default=bench_api.DEFAULT_PG_ADMIN_URL)
    args = parser.parse_args()
    src = bench_api.PROJECT / "src"
    with tempfile.TemporaryDirectory(prefix="profile_api_") as tmp:
        work = Path(tmp)
        name = f"profile_api_{id(work)}"
        with bench_api.database(args.pg_admin_url, name) as url:
            data = bench_api.seed(url, src)
            ids_file = work / "ids.txt"
            ids_file.write_text("\n".join(data["ids"]) + "\n")
            with bench_api.serving(src, url, 1, 2) as (base, pids):
                bench_api.due_ones_done(url)
                bench_api.analyze(url)
                bench_api.run_httpx(base, 2, 1.0, data["token"], data["ids"])
                collapsed = work / "profile.txt"
                load = bench_api.os.getloadavg()
                spy = subprocess.Popen(
                    [str(BIN / "py-spy"), "record", "--pid", str(pids[0]), "--threads",
                     "--format", "raw", "--rate", "200", "--nonblocking",
                     "--duration", str(int(args.seconds)), "--output", str(collapsed)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                )  # fmt: skip
                time.sleep(1)  # py-spy attached
                listeners = bench_api.Listeners(base, data["token"], args.sse) if args.sse else None
                if listeners is not None:
                    listeners.__enter__()
                cpu_before = bench_api.server_cpu(pids[0])
                result: dict[str, object] = {}
                load_thread = threading.Thread(
                    target=lambda: result.update(
                        bench_api.run_wrk(base, args.clients, args.seconds, data["token"], ids_file)
                    )
                )
                load_thread.start()
                load_thread.join()
                cpu = bench_api.server_cpu(pids[0]) - cpu_before
                if listeners is not None:
                    listeners.__exit__(None, None, None)
                spy.wait(timeout=120)
        summary = summarize(collapsed, args.top)
    requests = int(str(result["requests"]))
    lines = [
        f"# profile of one `longops serve --workers 2` process under {args.clients} API "
        f"clients ({args.sse} SSE clients), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"load average before: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, after: "
        + " / ".join(f"{x:.1f}" for x in bench_api.os.getloadavg()),
        f"requests/s {requests / float(str(result['seconds'])):.0f}, p50 {result['p50_ms']} ms, "
        f"p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, "
        f"server CPU ms/request {1000 * cpu / max(1, requests):.2f}",
        "",
        *summary,
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:60]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
