"""Users, grants, API tokens, the pages' sign-ins, the audit log, personal data."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from longops.domain.security import FrontEnd, PermissionSet
from longops.domain.users import (
    ApiToken,
    AuditEntry,
    User,
    UserState,
    WebSession,
    user_target,
)
from longops.store._sql.core import Row, SqlCore
from longops.store.base import (
    Companies,
    PersonalData,
)


class SecuritySql(SqlCore):
    # -- users, permission sets, tokens, audit ------------------------------------------------
    def insert_user(
        self, user: User, password_hash: str | None, *, audit: AuditEntry | None = None
    ) -> bool:
        with self._tx() as cur:
            cur.execute(
                self.q["insert_user"],
                {
                    "name": user.name,
                    "display_name": user.display_name,
                    "password_hash": password_hash,
                    "state": user.state.value,
                    "is_super": self.enc_bool(user.is_super),
                    "created_at": self.enc_ts(user.created_at),
                },
            )
            if cur.fetchone() is None:
                return False
            for company, permission_set in user.grants:
                self._grant(cur, user.name, company, permission_set, user.created_at)
            self._audit(cur, audit)
        return True

    def _grant(
        self, cur: Any, name: str, company: str, permission_set: PermissionSet, at: datetime
    ) -> bool:
        cur.execute(
            self.q["insert_membership"],
            {
                "name": name,
                "company": company,
                "permission_set": permission_set.value,
                "at": self.enc_ts(at),
            },
        )
        return cur.fetchone() is not None

    def get_user(self, name: str) -> User | None:
        with self._read() as cur:
            return self._user_in(cur, name)

    def _user_in(self, cur: Any, name: str) -> User | None:
        cur.execute(self.q["get_user"], {"name": name})
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute(self.q["list_memberships"], {"name": name})
        [user] = self._users([row], list(cur.fetchall()))
        return user

    def token_user(self, token_id: uuid.UUID) -> tuple[ApiToken, str, User] | None:
        # The token, its user and the user's grants, all keyed by the token: independent
        # reads, so one round trip on PostgreSQL (every API request starts here).
        key = {"id": self.enc_uuid(token_id)}
        tokens, users, members = self._reads(
            [("get_token", key), ("get_token_user", key), ("list_token_memberships", key)]
        )
        if not tokens or not users:
            return None
        [user] = self._users(users, members)
        return self._token(tokens[0]), tokens[0]["token_hash"], user

    def web_session_user(self, session_id: uuid.UUID) -> tuple[WebSession, str, User] | None:
        # The session, its user and the user's grants, all keyed by the session: one round
        # trip on PostgreSQL (every page starts here), as token_user for the API.
        key = {"id": self.enc_uuid(session_id)}
        sessions, users, members = self._reads(
            [
                ("get_web_session", key),
                ("get_web_session_user", key),
                ("list_web_session_memberships", key),
            ]
        )
        if not sessions or not users:
            return None
        [user] = self._users(users, members)
        return self._web_session(sessions[0]), sessions[0]["secret_hash"], user

    def list_users(self) -> list[User]:
        with self._read() as cur:
            cur.execute(self.q["list_users"], {})
            rows = list(cur.fetchall())
            cur.execute(self.q["list_memberships"], {"name": None})
            return self._users(rows, list(cur.fetchall()))

    def get_password_hash(self, name: str) -> str | None:
        r = self._one("get_password_hash", {"name": name})
        return None if r is None else r["password_hash"]

    def set_password_hash(self, name: str, password_hash: str, at: datetime) -> bool:
        params = {"name": name, "password_hash": password_hash, "at": self.enc_ts(at)}
        return self._write_one("set_password_hash", params) is not None

    def set_user_state(
        self, name: str, state: UserState, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"name": name, "state": state.value, "at": self.enc_ts(at)}
        return self._write_audited("set_user_state", params, audit) is not None

    def set_user_super(
        self, name: str, is_super: bool, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"name": name, "is_super": self.enc_bool(is_super), "at": self.enc_ts(at)}
        return self._write_audited("set_user_super", params, audit) is not None

    def delete_user(self, name: str, *, audit: AuditEntry | None = None) -> bool:
        return self._write_audited("delete_user", {"name": name}, audit) is not None

    def grant(
        self,
        name: str,
        company: str,
        permission_set: PermissionSet,
        at: datetime,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        with self._tx() as cur:
            if not self._grant(cur, name, company, permission_set, at):
                return False
            self._audit(cur, audit)
        return True

    def revoke(
        self,
        name: str,
        company: str,
        permission_set: PermissionSet,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        params = {"name": name, "company": company, "permission_set": permission_set.value}
        return self._write_audited("delete_membership", params, audit) is not None

    def active_users(self, names: Collection[str]) -> set[str]:
        if not names:
            return set()
        rows = self._all("active_users", {"names": self.enc_list(sorted(names))})
        return {r["name"] for r in rows}

    def _token(self, r: Row) -> ApiToken:
        return ApiToken(
            id=self.dec_uuid(r["id"]),
            user=r["user_name"],
            name=r["name"],
            created_at=self.dec_ts(r["created_at"]),
            expires_at=self.dec_ts_opt(r["expires_at"]),
            last_used_at=self.dec_ts_opt(r["last_used_at"]),
            revoked_at=self.dec_ts_opt(r["revoked_at"]),
        )

    def insert_token(
        self, token: ApiToken, token_hash: str, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {
            "id": self.enc_uuid(token.id),
            "user_name": token.user,
            "name": token.name,
            "token_hash": token_hash,
            "created_at": self.enc_ts(token.created_at),
            "expires_at": self.enc_ts(token.expires_at),
        }
        return self._write_audited("insert_token", params, audit) is not None

    def get_token(self, token_id: uuid.UUID) -> tuple[ApiToken, str, UserState] | None:
        r = self._one("get_token", {"id": self.enc_uuid(token_id)})
        if r is None:
            return None
        return self._token(r), r["token_hash"], UserState(r["user_state"])

    def touch_token(self, token_id: uuid.UUID, at: datetime, not_since: datetime) -> None:
        with self._tx() as cur:
            cur.execute(
                self.q["touch_token"],
                {
                    "id": self.enc_uuid(token_id),
                    "at": self.enc_ts(at),
                    "not_since": self.enc_ts(not_since),
                },
            )

    def list_tokens(self, user: str) -> list[ApiToken]:
        return [self._token(r) for r in self._all("list_tokens", {"user_name": user})]

    def revoke_token(
        self, token_id: uuid.UUID, at: datetime, *, audit: AuditEntry | None = None
    ) -> bool:
        params = {"id": self.enc_uuid(token_id), "at": self.enc_ts(at)}
        return self._write_audited("revoke_token", params, audit) is not None

    def _web_session(self, r: Row) -> WebSession:
        return WebSession(
            id=self.dec_uuid(r["id"]),
            user=r["user_name"],
            created_at=self.dec_ts(r["created_at"]),
            last_seen_at=self.dec_ts(r["last_seen_at"]),
            expires_at=self.dec_ts(r["expires_at"]),
            revoked_at=self.dec_ts_opt(r["revoked_at"]),
            client=r["client"],
        )

    def insert_web_session(
        self, session: WebSession, secret_hash: str, *, audit: AuditEntry | None = None
    ) -> None:
        params = {
            "id": self.enc_uuid(session.id),
            "user_name": session.user,
            "secret_hash": secret_hash,
            "created_at": self.enc_ts(session.created_at),
            "expires_at": self.enc_ts(session.expires_at),
            "client": session.client,
        }
        self._write_audited("insert_web_session", params, audit)

    def get_web_session(self, session_id: uuid.UUID) -> tuple[WebSession, str, UserState] | None:
        r = self._one("get_web_session", {"id": self.enc_uuid(session_id)})
        if r is None:
            return None
        return self._web_session(r), r["secret_hash"], UserState(r["user_state"])

    def touch_web_session(self, session_id: uuid.UUID, at: datetime, not_since: datetime) -> None:
        params = {
            "id": self.enc_uuid(session_id),
            "at": self.enc_ts(at),
            "not_since": self.enc_ts(not_since),
        }
        with self._tx() as cur:
            cur.execute(self.q["touch_web_session"], params)

    def list_web_sessions(self, user: str) -> list[WebSession]:
        return [self._web_session(r) for r in self._all("list_web_sessions", {"user_name": user})]

    def revoke_web_sessions(
        self,
        user: str,
        at: datetime,
        session_id: uuid.UUID | None = None,
        *,
        audit: AuditEntry | None = None,
    ) -> int:
        params = {"user_name": user, "at": self.enc_ts(at), "id": self.enc_uuid(session_id)}
        with self._tx() as cur:
            cur.execute(self.q["revoke_web_sessions"], params)
            ended = len(cur.fetchall())
            if ended:
                self._audit(cur, audit)
            return ended

    def record_audit(self, entry: AuditEntry) -> None:
        with self._tx() as cur:
            self._audit(cur, entry)

    def _audit_entry(self, r: Row) -> AuditEntry:
        return AuditEntry(
            id=int(r["id"]),
            company=r["company"],
            at=self.dec_ts(r["at"]),
            actor=r["actor"],
            front_end=FrontEnd(r["front_end"]),
            action=r["action"],
            target=r["target"],
            details=self.dec_json(r["details"]),
        )

    def list_audit(
        self,
        companies: Companies,
        *,
        include_global: bool,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        rows = self._all(
            "list_audit",
            {
                "companies": self.enc_companies(companies),
                "include_global": self.enc_bool(include_global),
                "limit": limit,
                "before_id": before_id,
            },
        )
        return [self._audit_entry(r) for r in rows]

    def personal_data(self, name: str) -> PersonalData:
        user = self.get_user(name)
        with self._read() as cur:
            cur.execute(self.q["personal_operations"], {"name": name})
            ops = [self.operation(r) for r in cur.fetchall()]
            cur.execute(self.q["personal_attempts"], {"name": name})
            attempts = [self.attempt(r) for r in cur.fetchall()]
            cur.execute(self.q["personal_audit"], {"name": name, "target": user_target(name)})
            audit = [self._audit_entry(r) for r in cur.fetchall()]
            cur.execute(self.q["personal_events"], {"name": name})
            events = [self.event(r) for r in cur.fetchall()]
            cur.execute(self.q["personal_notifications"], {"name": name})
            notes = [self.notification(r) for r in cur.fetchall()]
        return PersonalData(user, self.list_tokens(name), ops, attempts, audit, events, notes)

    def forget_user(self, name: str, pseudonym: str, *, audit: AuditEntry | None = None) -> int:
        params = {
            "name": name,
            "pseudonym": pseudonym,
            "target": user_target(name),
            "pseudonym_target": user_target(pseudonym),
        }
        changed = 0
        with self._tx() as cur:
            for query in (
                "forget_operations",
                "forget_attempts",
                "forget_audit",
                "forget_events",
                "forget_notifications",
                "forget_deleted_copies",
            ):
                cur.execute(self.q[query], params)
                changed += int(cur.rowcount)
            cur.execute(self.q["delete_user"], {"name": name})
            changed += len(cur.fetchall())
            if changed:
                # Nothing named the user: nothing was forgotten, and nothing is audited.
                self._audit(cur, audit)
        return changed
