"""``python -m longops.cli``: the ``longops`` command."""

from __future__ import annotations

from longops.cli.main import main

main()
