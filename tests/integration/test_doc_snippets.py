"""Every Python and shell snippet of README.md and docs/*.md runs, as a reader would run it.

Each document's snippets run in order in one fresh folder, with ``.venv/bin`` first on the
PATH: a Python block whose first line is ``# some/path.py`` is written to that file (later
blocks import or run it); any other Python block and every ``sh`` block runs in bash, so a
variable a shell block sets (``token=$(...)``) is there for the blocks after it. What a
snippet says it prints is checked:

- ``command  # prints: TEXT`` (shell) and ``print(...)  # TEXT`` (Python): TEXT is a line of
  what the block printed;
- ``command  # exit N: ...``: the command exits N (the block goes on);
- under a ``<!-- snippet: output between: KIND ... -->`` marker, the comment lines closing a
  Python block are what it prints: the first printed line starts as the first shown does,
  the last is the last shown, and each line between is a shown one or starts with one of
  the KINDs the text describes (what a run's timing adds).

An HTML comment right above a block says what else the reader's set-up would be:

- ``<!-- snippet: server -->``: the block starts a server; it runs in the background until
  the document's last block has run (its port is the only thing changed: a free one for
  8000 everywhere in the document);
- ``<!-- snippet: prelude CODE -->``: CODE runs first (a name the text defines in words);
- ``<!-- snippet: skip REASON -->``: not run, for the reason given (the report lists them).

A document whose text says a snippet works on PostgreSQL runs a second time with its SQLite
URL replaced by a fresh PostgreSQL database (``POSTGRES_DOCS``).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"python", "sh", "bash"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
MARKER = re.compile(r"^<!-- snippet: (\w+)\s*(.*?) -->$")
POSTGRES_DOCS = {"README.md": "sqlite:///longops.db", "api.md": None}
"""Documents run on PostgreSQL too, and the SQLite URL in them that the database replaces
(None: the document names PostgreSQL itself)."""
PG_IN_DOCS = "postgresql://root@127.0.0.1/longops"
TIMEOUT = 120


@dataclass
class Block:
    doc: Path
    line: int
    lang: str
    code: str
    marks: dict[str, str] = field(default_factory=dict)
    """The ``<!-- snippet: KIND ARGUMENT -->`` lines right above the block."""

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    found = []
    for m in FENCE.finditer(text):
        marks = {}
        for line in reversed(text[: m.start()].splitlines()):
            mark = MARKER.match(line.strip())
            if mark is None:
                break
            marks[mark.group(1)] = mark.group(2).strip()
        line_no = text.count("\n", 0, m.start()) + 1
        found.append(Block(doc, line_no, m.group(1), m.group(2), marks))
    return found


def runnable(doc: Path) -> list[Block]:
    return [b for b in blocks(doc) if b.lang in RUNNABLE]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- what a block promises ----------------------------------------------------------------------
PRINTS = re.compile(r"#\s*prints:\s*(.+?)\s*$")
PY_PRINTS = re.compile(r"^\s*print\(.*\)\s+#\s*(.+?)\s*$")
EXIT = re.compile(r"^(?P<cmd>.*?)\s+#\s*exit (?P<code>\d+)(?::\s*(?P<says>.*))?$")


def promised_lines(block: Block) -> list[str]:
    pattern = PY_PRINTS if block.lang == "python" else PRINTS
    return [m.group(1) for line in block.code.splitlines() if (m := pattern.search(line))]


def shown_output(block: Block) -> list[str]:
    """The closing ``# ...`` lines of an ``output`` block: what it prints."""
    lines = block.code.rstrip().splitlines()
    shown: list[str] = []
    while lines and lines[-1].startswith("# "):
        shown.insert(0, lines.pop()[2:])
    return shown


def shell_script(block: Block) -> str:
    """The block as bash: a ``# exit N: MESSAGE`` line must fail with N, saying MESSAGE (up
    to its first ``...``)."""
    out = []
    for line in block.code.splitlines():
        m = EXIT.match(line)
        if m and not line.lstrip().startswith("#"):
            says = (m["says"] or "").split("...")[0].strip()
            out.append(
                f"if {m['cmd']} 2>.said; then exit 97; else rc=$?; cat .said >&2; "
                f"if [ $rc -ne {m['code']} ] || ! grep -qF -- {shlex.quote(says)} .said; "
                "then exit 96; fi; fi"
            )
        else:
            out.append(line)
    return "\n".join(out) + "\n"


# -- running one document -----------------------------------------------------------------------
@dataclass
class Reader:
    """One reader's folder and shell, following one document top to bottom."""

    folder: Path
    port: int
    database: str | None  # replaces the document's SQLite (or PostgreSQL) URL
    replaced: str | None
    state: Path = field(init=False)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = self.folder / ".snippet-env"
        self.state.write_text("")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LONGOPS_")}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["PYTHONPATH"] = str(self.folder)
        env.pop("VIRTUAL_ENV", None)
        if self.database is not None:
            env["LONGOPS_DATABASE_URL"] = self.database
        env["COLUMNS"] = "200"
        return env

    def adapt(self, text: str) -> str:
        text = text.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        text = text.replace("--port 8000", f"--port {self.port}")
        if self.database is not None and self.replaced is not None:
            text = text.replace(self.replaced, self.database)
        return text

    def bash(self, body: str) -> str:
        # allexport: what a block assigns is exported, and saved for the next block.
        return (
            "set -euo pipefail -o allexport\n"
            f"source {self.state}\n"
            f"trap 'export -p > {self.state}.new; kill $(jobs -p) 2>/dev/null || true; "
            "wait 2>/dev/null || true' EXIT\n" + body
        )

    def run(self, block: Block) -> None:
        code = self.adapt(block.code)
        if block.lang == "python":
            first = code.splitlines()[0]
            target = re.fullmatch(r"#\s*([\w./-]+\.py)\s*", first)
            if target:
                path = self.folder / target.group(1)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(code)
                return
            prelude = block.marks.get("prelude", "") + "\n"
            body = f"python - <<'SNIPPET_EOF'\n{prelude}{code}SNIPPET_EOF\n"
        else:
            prelude = block.marks.get("prelude", "") + "\n"
            body = prelude + shell_script(Block(block.doc, block.line, block.lang, code))
        if "server" in block.marks:
            if "--port" not in body:  # serve's default, 8000, may be taken on this machine
                body = re.sub(r"\bserve\b", f"serve --port {self.port}", body, count=1)
            self.serve(block, body)
            return
        done = subprocess.run(
            ["bash", "-c", self.bash(body)],
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        new_state = Path(f"{self.state}.new")
        if new_state.exists():
            new_state.replace(self.state)
        said = f"{block.where} ({block.lang})\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        assert done.returncode == 0, f"exit {done.returncode}: {said}"
        printed = (done.stdout + done.stderr).splitlines()
        for line in promised_lines(block):
            assert line in [p.strip() for p in printed], f"did not print {line!r}: {said}"
        if "output" in block.marks:
            shown = shown_output(block)
            kinds = tuple(f"{k} " for k in block.marks["output"].removeprefix("between:").split())
            got = done.stdout.strip().splitlines()
            assert shown, f"shows no output: {said}"
            assert got, f"printed nothing: {said}"
            assert got[0].split()[0] == shown[0].split()[0], f"starts otherwise: {said}"
            assert got[-1] == shown[-1], f"ends otherwise than shown: {said}"
            unknown = [g for g in got[1:-1] if g not in shown and not g.startswith(kinds)]
            assert not unknown, f"printed lines the text does not describe: {unknown}: {said}"

    def serve(self, block: Block, body: str) -> None:
        with (self.folder / f"server-{block.line}.log").open("wb") as log:
            proc = subprocess.Popen(
                ["bash", "-c", self.bash(body)],
                cwd=self.folder,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.servers.append(proc)
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"{block.where}: the server stopped: {self.log(block)}"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{block.where}: no answer: {self.log(block)}"
            time.sleep(0.1)

    def log(self, block: Block) -> str:
        return (self.folder / f"server-{block.line}.log").read_text(errors="replace")

    def close(self) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def follow(doc: Path, folder: Path, database: str | None, replaced: str | None) -> None:
    reader = Reader(folder, free_port(), database, replaced)
    try:
        for block in runnable(doc):
            if "skip" not in block.marks:
                started = time.monotonic()
                reader.run(block)
                print(f"{block.where}: {time.monotonic() - started:.1f} s")  # shown on failure
    finally:
        reader.close()


WITH_SNIPPETS = [
    d
    for d in DOCS
    if any("skip" not in b.marks for b in runnable(d)) and POSTGRES_DOCS.get(d.name, "") is not None
]
"""Documents with a snippet to run on SQLite (not those that show PostgreSQL only)."""


@pytest.mark.parametrize("doc", WITH_SNIPPETS, ids=lambda d: d.name)
def test_the_snippets_of_a_document_run_on_sqlite(doc: Path, tmp_path: Path) -> None:
    follow(doc, tmp_path, None, None)


@pytest.mark.postgres
@pytest.mark.parametrize("doc", sorted(POSTGRES_DOCS), ids=str)
def test_the_snippets_run_on_postgresql_where_the_text_says_so(
    doc: str, tmp_path: Path, pg_url: str
) -> None:
    path = ROOT / doc if doc == "README.md" else ROOT / "docs" / doc
    follow(path, tmp_path, pg_url, POSTGRES_DOCS[doc] or PG_IN_DOCS)


def test_every_skipped_snippet_says_why() -> None:
    for doc in DOCS:
        for block in runnable(doc):
            if "skip" in block.marks:
                assert len(block.marks["skip"]) > 20, f"{block.where}: skipped without a reason"
            assert set(block.marks) <= {"skip", "server", "prelude", "output"}, block.where


def test_the_documentation_index_names_every_document() -> None:
    index = (ROOT / "docs" / "README.md").read_text()
    for doc in DOCS[1:]:
        if doc.name != "README.md":
            assert f"]({doc.name})" in index, f"docs/README.md does not list {doc.name}"


def test_every_extra_a_document_installs_exists() -> None:
    """The skipped ``pip install 'longops[...]'`` lines name extras pyproject.toml declares."""
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    named = {
        (block.where, extra)
        for doc in DOCS
        for block in blocks(doc)
        for group in re.findall(r"longops\[([\w,-]+)\]", block.code)
        for extra in group.split(",")
    }
    assert named, "the documents install no extra any more: drop this test"
    assert {(where, e) for where, e in named if e not in extras} == set()
