"""One client action of the peers benchmark, run in the venv of the system it drives:
``python client.py SYSTEM ACTION URL FIRST COUNT ARG``; prints the seconds taken.

ACTION is ``prepare``, ``one`` (ARG: spacing in seconds between enqueues, 0 for a loop) or
``bulk`` (ARG: batch size). The job numbers are FIRST .. FIRST + COUNT - 1."""

from __future__ import annotations

import importlib
import json
import sys


def main(argv: list[str]) -> None:
    system, action, url, first, count, arg = argv
    # longops-before: longops from another source tree (its PYTHONPATH), the same calls.
    jobs = importlib.import_module(f"jobs_{system.split('-')[0]}")
    if action == "prepare":
        jobs.prepare(url)
        elapsed = 0.0
    elif action == "one":
        elapsed = jobs.one_by_one(url, int(first), int(count), float(arg))
    elif action == "bulk":
        elapsed = jobs.bulk(url, int(first), int(count), int(arg))
    else:
        raise SystemExit(f"unknown action {action!r}")
    print(json.dumps({"elapsed_s": elapsed}))


if __name__ == "__main__":
    main(sys.argv[1:])
