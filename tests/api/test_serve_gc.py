"""``longops serve`` takes what start-up made out of the garbage collector's full
collections (``gc.freeze``), in its own process and in each of ``--processes``: a full
collection of ~100,000 start-up objects paused every request of the process for tens of
milliseconds (api-notes.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from longops import Longops
from longops.cli import serve


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What was frozen (without freezing the test process)."""
    calls: list[str] = []
    monkeypatch.setattr(serve.gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(serve._Uvicorn, "run", lambda *_args, **_kw: None)
    return calls


def test_serve_freezes_its_start_up_objects(frozen: list[str], tmp_path: Path) -> None:
    app = Longops(f"sqlite:///{tmp_path / 'db.sqlite'}")
    app.migrate()
    try:
        assert serve.serve(app, host="127.0.0.1", port=1, workers=0, log_level="warning") == 0
    finally:
        app.close()
    assert frozen == ["freeze"]


def test_each_server_process_freezes_its_own(
    frozen: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Longops(url).migrate()
    monkeypatch.setenv(serve._URL_ENV, url)
    monkeypatch.setenv(serve._SPEC_ENV, "")
    made = serve.process_server()
    made.api.state.longops.app.close()
    assert frozen == ["freeze"]
