"""docs/telemetry.md's catalogue, the code's catalogue and the code that emits them agree."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from longops.telemetry import catalogue
from longops.telemetry.catalogue import ATTEMPT, CATALOGUE, OPERATION

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "telemetry.md"
SRC = ROOT / "src" / "longops"


def _documented() -> dict[str, tuple[str, str | None, str, str, tuple[str, ...]]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        if not re.match(r"^\| LO\d{4} \|", line):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        ident, name, bc, level, message, dims = cells
        expanded: list[str] = []
        for part in (p.strip() for p in dims.split(",") if p.strip()):
            if part == "*attempt*":
                expanded.extend(ATTEMPT)
            elif part == "*operation*":
                expanded.extend(OPERATION)
            else:
                expanded.append(part.strip("`"))
        assert ident not in rows, f"{ident} is documented twice"
        rows[ident] = (name, None if bc == "\N{EN DASH}" else bc, level, message, tuple(expanded))
    return rows


def test_documented_catalogue_is_the_code_catalogue() -> None:
    documented = _documented()
    assert sorted(documented) == sorted(CATALOGUE)
    for ident, event in CATALOGUE.items():
        level = logging.getLevelName(event.level).title()
        assert documented[ident] == (
            event.name,
            event.bc_id,
            level,
            event.message,
            event.dimensions,
        ), ident


def test_ids_are_sequential_and_unique() -> None:
    ids = list(CATALOGUE)
    assert ids == [f"LO{n:04d}" for n in range(1, len(ids) + 1)]
    assert len({e.name for e in CATALOGUE.values()}) == len(ids)


def test_every_message_uses_only_its_dimensions() -> None:
    for event in CATALOGUE.values():
        used = set(re.findall(r"{(\w+)}", event.message))
        assert used <= set(event.dimensions), event.id


def test_every_event_is_emitted_somewhere() -> None:
    """Each catalogue event is referenced by code outside the catalogue (so none is listed
    but never emitted)."""
    names = {
        attr: event for attr, event in vars(catalogue).items() if isinstance(event, catalogue.Event)
    }
    code = "\n".join(p.read_text() for p in SRC.rglob("*.py") if p.name != "catalogue.py")
    # Session events are mapped from the session-event types in one table.
    for attr, event in names.items():
        assert re.search(rf"\bcat\.{attr}\b", code), f"{event.id} ({attr}) is never emitted"


def test_an_undeclared_dimension_is_refused() -> None:
    from longops.telemetry.events import emit

    with pytest.raises(ValueError, match="LO0022"):
        emit(catalogue.MAINTENANCE, job="pruner", count=1, user="alice")


def test_doc_snippets_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})  # noqa: S102 (the docs' own examples)
