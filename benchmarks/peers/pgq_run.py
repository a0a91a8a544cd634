"""``pgq run jobs_pgqueuer:create [--batch-size N] [--max-concurrent-tasks N]``, the same
calls as PgQueuer's CLI (``pgqueuer.run`` on the CLI's event loop, uvloop when installed).

The CLI itself cannot be used: pgqueuer 1.6.0's ``pgq run`` fails before starting with the
typer it installs (0.29: ``AttributeError: 'str' object has no attribute 'name'`` on its
default ``--log-level``)."""

from __future__ import annotations

import argparse

import pgqueuer
from pgqueuer.adapters.cli.cli import asyncio_run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("factory")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--max-concurrent-tasks", type=int, default=None)
    args = parser.parse_args()
    asyncio_run(
        pgqueuer.run(
            args.factory,
            batch_size=args.batch_size,
            max_concurrent_tasks=args.max_concurrent_tasks,
        )
    )


if __name__ == "__main__":
    main()
