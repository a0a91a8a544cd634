"""The screenshot tool of docs/pages.md (``tools/screenshots.py``, ``./dev screenshots``) keeps
working: run whole into a temporary folder, it starts a demo, signs in as its users and
saves every page on its list, each answering the status expected with the header (the tool
fails on any other status, a missing header, a console error or a failed request). And the
list, the images in docs/images/pages/ and the pictures docs/pages.md shows are the same set.
"""

from __future__ import annotations

import importlib.util
import re
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "screenshots.py"
PAGES_MD = ROOT / "docs" / "pages.md"
IMAGES = ROOT / "docs" / "images" / "pages"
PICTURE = re.compile(r"!\[[^\]]*\]\(images/pages/([\w.-]+)\.png\)")

pytestmark = pytest.mark.timeout(300)


def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshots", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["screenshots"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_docs_pages_md_shows_every_screenshot_on_the_list_and_each_is_committed() -> None:
    names = [shot.name for shot in tool().PAGES]
    assert len(names) == len(set(names))
    shown = PICTURE.findall(PAGES_MD.read_text())
    assert sorted(shown) == sorted(names), "docs/pages.md and tools/screenshots.py PAGES differ"
    assert sorted(p.stem for p in IMAGES.glob("*.png")) == sorted(names), (
        "docs/images/pages/ holds other images than the list (run ./dev screenshots)"
    )


def test_the_screenshot_tool_renders_every_page_of_its_list(tmp_path: Path) -> None:
    pages = tool().PAGES
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--timeout", "120"],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(pages)} screenshots in {tmp_path}" in done.stdout
    for shot in pages:
        assert png_size(tmp_path / f"{shot.name}.png") == shot.viewport, shot.name
