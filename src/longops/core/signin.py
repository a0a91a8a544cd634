"""Sign-in abuse: back-off and lockout per account and per client address, and a bounded
pool for password hashing.

A failed sign-in is counted twice: against the account name (whether or not the user
exists, so the answer tells nothing) and against the client address. After a few free
failures each further one doubles the wait before the next try; after ``*_lockout_after``
failures the key is locked for ``lockout``. A refused try does no Argon2 work, so a flood
of guesses costs the server almost nothing. State is per process and bounded in size: a
spray of addresses forgets the oldest keys rather than growing without end.

Argon2id needs 64 MiB per hash; forty concurrent sign-ins would need 2.5 GiB. The
:class:`HashPool` lets ``slots`` hashes run at once and ``queue`` more wait; beyond that a
sign-in is refused at once with :class:`TooManyRequests` (the pages answer 429 with
``Retry-After``).

Example::

    guard = SignInGuard(SignInPolicy(account_lockout_after=5), clock)
    guard.check("alice", "203.0.113.9")     # raises TooManyRequests while backed off
    locked = guard.failed("alice", "203.0.113.9")   # the keys this failure locked
    guard.succeeded("alice")
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from longops.domain.clock import Clock
from longops.domain.errors import TooManyRequests, ValidationError


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    """How many failures are free, when back-off starts and when a key locks.

    Example::

        SignInPolicy(account_lockout_after=5, lockout=timedelta(minutes=30))
    """

    account_free: int = 3
    """Failures of one account name that cost no wait."""
    account_lockout_after: int = 10
    address_free: int = 10
    address_lockout_after: int = 50
    """One address may carry many users (an office behind NAT): a higher bar."""
    backoff: timedelta = timedelta(seconds=1)
    """The wait after the first failure past the free ones; it doubles with each."""
    backoff_max: timedelta = timedelta(seconds=60)
    lockout: timedelta = timedelta(minutes=15)
    """How long a locked key stays locked; its failures are then forgotten."""
    max_keys: int = 100_000

    def __post_init__(self) -> None:
        for name in ("account_free", "address_free"):
            if getattr(self, name) < 0:
                raise ValidationError(name, "must be 0 or more", getattr(self, name))
        if self.account_lockout_after <= self.account_free:
            rule = "must be more than account_free"
            raise ValidationError("account_lockout_after", rule, self.account_lockout_after)
        if self.address_lockout_after <= self.address_free:
            rule = "must be more than address_free"
            raise ValidationError("address_lockout_after", rule, self.address_lockout_after)
        if not timedelta(0) < self.backoff <= self.backoff_max:
            raise ValidationError("backoff", "must be positive and at most backoff_max")
        if self.lockout <= timedelta(0):
            raise ValidationError("lockout", "must be positive", self.lockout)
        if self.max_keys < 1:
            raise ValidationError("max_keys", "must be at least 1", self.max_keys)


@dataclass(slots=True)
class _Record:
    failures: int
    last: datetime
    not_before: datetime


class SignInGuard:
    """Failed sign-ins per account name and per client address; see the module docstring."""

    def __init__(self, policy: SignInPolicy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock
        self._lock = threading.Lock()
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def _keys(self, account: str, address: str | None) -> list[tuple[str, int, int]]:
        p = self.policy
        keys = [(f"account:{account.casefold()}", p.account_free, p.account_lockout_after)]
        if address:
            keys.append((f"address:{address}", p.address_free, p.address_lockout_after))
        return keys

    def _live(self, key: str, now: datetime) -> _Record | None:
        record = self._records.get(key)
        # Failures are forgotten once the lockout span has passed since the last one.
        if record is not None and now - record.last >= self.policy.lockout:
            del self._records[key]
            return None
        return record

    def check(self, account: str, address: str | None) -> None:
        """Raise TooManyRequests while the account or the address waits or is locked."""
        now = self.clock.now()
        with self._lock:
            wait = timedelta(0)
            for key, _, _ in self._keys(account, address):
                record = self._live(key, now)
                if record is not None and record.not_before > now:
                    wait = max(wait, record.not_before - now)
        if wait > timedelta(0):
            seconds = int(wait.total_seconds() + 0.999)
            raise TooManyRequests(
                f"too many failed sign-ins: try again in {seconds} s", retry_after=seconds
            )

    def failed(self, account: str, address: str | None) -> list[str]:
        """Count a failure; returns the keys it locked (for the audit log)."""
        now = self.clock.now()
        locked = []
        with self._lock:
            for key, free, lockout_after in self._keys(account, address):
                record = self._live(key, now)
                if record is None:
                    record = _Record(0, now, now)
                    self._records[key] = record
                self._records.move_to_end(key)
                record.failures += 1
                record.last = now
                if record.failures >= lockout_after:
                    if record.failures == lockout_after:
                        locked.append(key)
                    record.not_before = now + self.policy.lockout
                elif record.failures > free:
                    steps = record.failures - free - 1
                    delay = self.policy.backoff * (2 ** min(steps, 30))
                    delay = min(delay, self.policy.backoff_max)
                    record.not_before = now + delay
            while len(self._records) > self.policy.max_keys:
                self._records.popitem(last=False)
        return locked

    def succeeded(self, account: str) -> None:
        """A right password: the account's failures are forgotten (the address's are not,
        or one valid account would clear the way for guessing others)."""
        with self._lock:
            self._records.pop(f"account:{account.casefold()}", None)

    def failures(self, account: str) -> int:
        """How many recent failures the account has (for tests and the audit details)."""
        with self._lock:
            record = self._live(f"account:{account.casefold()}", self.clock.now())
            return 0 if record is None else record.failures


class HashPool:
    """At most ``slots`` password hashes at once and ``queue`` more waiting; the rest are
    refused at once (TooManyRequests), so a flood cannot take the server's memory.

    Example::

        pool = HashPool(slots=2, queue=8)
        with pool.slot():
            hasher.verify(stored, password)
    """

    def __init__(self, slots: int = 2, queue: int = 8, wait: float = 10.0) -> None:
        if slots < 1:
            raise ValidationError("hash_slots", "must be at least 1", slots)
        if queue < 0:
            raise ValidationError("hash_queue", "must be 0 or more", queue)
        self.slots = slots
        self.queue = queue
        self.wait = wait
        self._semaphore = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Hashes running or waiting now."""
        return self._admitted

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        busy = TooManyRequests("the server is busy checking passwords: try again", 1)
        with self._lock:
            if self._admitted >= self.slots + self.queue:
                raise busy
            self._admitted += 1
        try:
            if not self._semaphore.acquire(timeout=self.wait):
                raise busy
            try:
                yield
            finally:
                self._semaphore.release()
        finally:
            with self._lock:
                self._admitted -= 1
