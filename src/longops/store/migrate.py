"""Numbered schema migrations per dialect, recorded with a checksum.

Files live in ``migrations/<dialect>/NNNN_name.sql``. ``longops db upgrade`` applies the
pending ones in order, each in its own transaction; ``longops db status`` compares the
recorded checksums with the files, so an edited migration is noticed rather than ignored.

A migration may declare flags on its first line, comma-separated::

    -- longops: compatible, online

``compatible``: code of the version before it runs correctly on the schema after it (an
*expand* step: a new column, table or allowed value), so a worker of older code keeps
claiming (the schema guard, ``domain.apps.schema_verdict``); ``online``: it may be applied
while workers run. The flags are recorded with the migration, because older code, which
reads them, does not have the file.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
_FLAGS = re.compile(r"^--\s*longops:\s*(.*)$")
KNOWN_FLAGS = frozenset({"compatible", "online"})


def parse_flags(sql: str) -> frozenset[str]:
    """The flags a migration's first line declares (``-- longops: compatible, online``).

    Example::

        parse_flags("-- longops: compatible\nALTER TABLE ...")   # frozenset({'compatible'})
    """
    first = sql.lstrip().split("\n", 1)[0].strip()
    match = _FLAGS.match(first)
    if not match:
        return frozenset()
    flags = frozenset(f.strip() for f in match.group(1).split(",") if f.strip())
    unknown = flags - KNOWN_FLAGS
    if unknown:
        raise RuntimeError(f"unknown migration flag(s) {sorted(unknown)} in {first!r}")
    return flags


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def flags(self) -> frozenset[str]:
        return parse_flags(self.sql)

    @property
    def compatible(self) -> bool:
        """Code of the previous version runs on the schema after it (expand/contract)."""
        return "compatible" in self.flags

    @property
    def online(self) -> bool:
        """It may be applied while workers run (outside maintenance mode)."""
        return "online" in self.flags


@dataclass(frozen=True, slots=True)
class MigrationState:
    version: int
    name: str
    state: str  # applied | pending | checksum mismatch | unknown


def load_migrations(dialect: str) -> list[Migration]:
    folder = resources.files("longops.store").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            migration = Migration(int(match.group(1)), match.group(2), entry.read_text())
            migration.flags  # noqa: B018 - an unknown flag fails here, not at the guard
            found.append(migration)
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations must be numbered 0001.. without gaps: {versions}")
    return found


def compare(
    migrations: list[Migration], applied: dict[int, tuple[str, str]]
) -> list[MigrationState]:
    """Each known or recorded migration with its state."""
    states = []
    for m in migrations:
        if m.version not in applied:
            states.append(MigrationState(m.version, m.name, "pending"))
        elif applied[m.version][1] != m.checksum:
            states.append(MigrationState(m.version, m.name, "checksum mismatch"))
        else:
            states.append(MigrationState(m.version, m.name, "applied"))
    known = {m.version for m in migrations}
    for version, (name, _) in sorted(applied.items()):
        if version not in known:
            states.append(MigrationState(version, name, "unknown"))
    return states


def split_sqlite_script(script: str) -> list[str]:
    """Split a script into complete statements (sqlite3 runs one statement per execute)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            stmt = buffer.strip()
            if stmt and not all(
                part.strip().startswith("--") or not part.strip() for part in stmt.splitlines()
            ):
                statements.append(stmt)
            buffer = ""
    if buffer.strip() and not all(
        p.strip().startswith("--") or not p.strip() for p in buffer.splitlines()
    ):
        raise RuntimeError(f"incomplete SQL statement at end of migration: {buffer[:80]!r}")
    return statements


# -- maintenance mode: migrations not marked online wait for it -----------------------------
MAINTENANCE_MIGRATION = 13
"""The migration that brings maintenance mode: before it, there is no mode to be in."""


def offline_refusal(offline: list[Migration]) -> str:
    """Why ``longops db upgrade`` refuses the migrations not marked online, and what to do."""
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in offline)
    return (
        f"migration {names} is not marked online (it may not run while workers claim): "
        "start maintenance mode first (`longops maintenance start --reason ...`), run "
        "`longops db upgrade` again, then `longops maintenance stop`"
    )
