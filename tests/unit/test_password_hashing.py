"""The suite hashes passwords cheaply (tests/conftest.py, QuickHasher); what ships is
Argon2id with argon2-cffi's own parameters (RFC 9106's low-memory choice)."""

from __future__ import annotations

import argon2
import pytest

import longops.core.security
from longops.core.security import SecurityService
from longops.domain.clock import FrozenClock
from longops.domain.security import Actor


def test_the_shipped_hasher_is_argon2id_with_argon2s_own_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert vars(longops.core.security)["PasswordHasher"] is not argon2.PasswordHasher  # quick
    monkeypatch.setattr(longops.core.security, "PasswordHasher", argon2.PasswordHasher)
    service = SecurityService(None, FrozenClock(), actor=Actor.local())  # type: ignore[arg-type]
    shipped = argon2.PasswordHasher()
    assert service.hasher.type is argon2.Type.ID
    assert (service.hasher.time_cost, service.hasher.memory_cost, service.hasher.parallelism) == (
        shipped.time_cost,
        shipped.memory_cost,
        shipped.parallelism,
    )
    assert service.hasher.hash("x").startswith(
        f"$argon2id$v=19$m={shipped.memory_cost},t={shipped.time_cost},p={shipped.parallelism}$"
    )
