"""Schema, companies, categories and paused queues, as both dialects store them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from longops.domain.errors import ConfigurationError
from longops.domain.operation import (
    Category,
    Company,
    Operation,
)
from longops.domain.users import (
    AuditEntry,
)
from longops.store._sql.core import SqlCore, _company
from longops.store.base import (
    Companies,
)
from longops.store.migrate import (
    MAINTENANCE_MIGRATION,
    Migration,
    MigrationState,
    compare,
    load_migrations,
    offline_refusal,
)


class AdminSql(SqlCore):
    # -- schema -----------------------------------------------------------------------------
    def _applied(self, cur: Any) -> dict[int, tuple[str, str]]:
        cur.execute(self.q["create_migrations_table"])
        cur.execute(self.q["list_migrations"])
        return {int(r["version"]): (r["name"], r["checksum"]) for r in cur.fetchall()}

    def migrate(self) -> list[str]:
        """Apply pending migrations; returns the names applied."""
        done: list[str] = []
        with self._tx() as cur:
            self._allow_long(cur)  # a migration may rewrite a large table
            self._migration_lock(cur)
            applied = self._applied(cur)
            states = compare(load_migrations(self.dialect), applied)
            bad = [s for s in states if s.state in ("checksum mismatch", "unknown")]
            if bad:
                raise ConfigurationError(
                    "database schema does not match this longops version: "
                    + ", ".join(f"{s.version:04d}_{s.name} ({s.state})" for s in bad)
                )
            pending = {s.version for s in states if s.state == "pending"}
            # Not online: only in maintenance mode (_sql/maintenance.py).
            self._check_online(
                cur, applied, [m for m in load_migrations(self.dialect) if m.version in pending]
            )
            for m in load_migrations(self.dialect):
                if m.version in pending:
                    self._apply_migration_script(cur, m.sql)
                    cur.execute(
                        self.q["record_migration"],
                        {"version": m.version, "name": m.name, "checksum": m.checksum},
                    )
                    if m.flags:  # only migrations from 0012 on, which add the column
                        cur.execute(
                            self.q["record_migration_flags"],
                            {"version": m.version, "flags": ",".join(sorted(m.flags))},
                        )
                    done.append(f"{m.version:04d}_{m.name}")
        return done

    def _check_online(self, cur: Any, applied: Collection[int], pending: list[Migration]) -> None:
        """Refuse (in ``migrate``'s transaction) pending migrations not marked ``online``
        while maintenance mode is off. A database with no migrations yet has no workers to
        protect, and one from before maintenance mode cannot be in it: both go ahead."""
        offline = [m for m in pending if not m.online]
        if not offline or MAINTENANCE_MIGRATION not in applied:
            return
        cur.execute(self.q["get_maintenance"])
        row = cur.fetchone()
        if row is None or not row["active"]:
            raise ConfigurationError(offline_refusal(offline))

    def migration_status(self) -> list[MigrationState]:
        with self._tx() as cur:
            return compare(load_migrations(self.dialect), self._applied(cur))

    def migration_sql(self) -> str:
        parts = [
            f"-- longops schema for {self.dialect}\n",
            self.q["create_migrations_table"] + ";\n",
        ]
        for m in load_migrations(self.dialect):
            parts.append(f"\n-- {m.version:04d}_{m.name}\n{m.sql.strip()}\n")
            parts.append(
                "INSERT INTO longops_migrations (version, name, checksum) VALUES "
                f"({m.version}, '{m.name}', '{m.checksum}');\n"
            )
            if m.flags:
                parts.append(
                    f"UPDATE longops_migrations SET flags = '{','.join(sorted(m.flags))}' "
                    f"WHERE version = {m.version};\n"
                )
        return "".join(parts)

    def schema_is_current(self) -> bool:
        return all(s.state == "applied" for s in self.migration_status())

    def applied_migrations(self) -> dict[int, tuple[str, frozenset[str]]]:
        """Each applied migration's name and declared flags (the schema guard's input)."""
        rows = self._all("list_migrations_flags")
        return {
            int(r["version"]): (
                r["name"],
                frozenset(f for f in (r.get("flags") or "").split(",") if f),
            )
            for r in rows
        }

    # -- companies, categories, queues --------------------------------------------------------
    def get_company(self, name: str) -> Company | None:
        r = self._one("get_company", {"name": name})
        return None if r is None else _company(r)

    def upsert_company(self, company: Company, *, audit: AuditEntry | None = None) -> Company:
        r = self._write_audited(
            "upsert_company",
            {
                "name": company.name,
                "display_name": company.display_name,
                "time_zone": company.time_zone,
                "active": self.enc_bool(company.active),
                "max_in_process": company.max_in_process,
            },
            audit,
        )
        assert r is not None
        return _company(r)

    def get_operation_by_entry_no(
        self, entry_no: int, company: str | None = None, *, companies: Companies = None
    ) -> Operation | None:
        r = self._one(
            "get_operation_by_entry_no",
            {"entry_no": entry_no, "company": company, "companies": self.enc_companies(companies)},
        )
        return None if r is None else self.operation(r)

    def list_companies(self, companies: Companies = None) -> list[Company]:
        rows = self._all("list_companies", {"companies": self.enc_companies(companies)})
        return [_company(r) for r in rows]

    def upsert_category(self, category: Category, *, audit: AuditEntry | None = None) -> Category:
        r = self._write_audited(
            "upsert_category",
            {
                "company": category.company,
                "code": category.code,
                "description": category.description,
                "max_concurrent": category.max_concurrent,
                "paused": self.enc_bool(category.paused),
            },
            audit,
        )
        assert r is not None
        return self.category(r)

    def get_category(self, company: str, code: str) -> Category | None:
        r = self._one("get_category", {"company": company, "code": code})
        return None if r is None else self.category(r)

    def list_categories(self, company: str) -> list[Category]:
        return [self.category(r) for r in self._all("list_categories", {"company": company})]

    def set_queue_paused(
        self, name: str, paused: bool, at: datetime, *, audit: AuditEntry | None = None
    ) -> None:
        with self._tx() as cur:
            if paused:
                cur.execute(self.q["pause_queue"], {"name": name, "at": self.enc_ts(at)})
            else:
                cur.execute(self.q["resume_queue"], {"name": name})
            self._audit(cur, audit)
        if not paused:
            self._wake(name)

    def paused_queues(self) -> frozenset[str]:
        return frozenset(r["name"] for r in self._all("list_paused_queues"))
