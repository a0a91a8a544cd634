"""The README and the docs index keep up with the code: every wait reason a ready
operation can give is named in README, every command group of `longops` is in its command
table, and the apps and operations guides are linked from both READMEs."""

from __future__ import annotations

import importlib
from pathlib import Path

from longops.cli.main import PARTS
from longops.domain.waiting import WaitCode

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_names_every_wait_reason() -> None:
    missing = [c.value for c in WaitCode if f"`{c.value}`" not in README]
    assert missing == []


def test_readme_command_table_has_every_command_group() -> None:
    table = README.split("## The command line", 1)[1].split("```", 2)[1]
    apps = [importlib.import_module(f"longops.cli.{part}").app for part in PARTS]
    groups = {a.info.name for a in apps if isinstance(a.info.name, str)}
    missing = sorted(g for g in groups if f"longops {g}" not in table)
    assert missing == []


def test_the_apps_and_operations_guides_are_linked() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in ("apps.md", "operations.md"):
        assert f"(docs/{page})" in README, page
        assert f"({page})" in index, page
