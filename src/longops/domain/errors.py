"""Exceptions raised by longops.

The tree::

    LongopsError
    ├── ValidationError        bad input; names the field and the rule; nothing was written
    ├── NotFound               no such operation, company, category, task or session
    ├── PermissionDenied       the actor may see the target but not do this to it
    ├── InvalidTransition      the action is not allowed from the operation's current status
    ├── Conflict               a request clashes with an existing one (an Operation-Id reused)
    ├── ConfigurationError     the application or database is not set up as required
    │   └── DatabaseFull       no room left in the database; nothing was written; try again
    ├── DatabaseBusy           the database did not answer in time (a lock held elsewhere, a
    │                          statement past its timeout); nothing was written; try again
    ├── TooManyRequests        refused for now (sign-in back-off, a full hashing pool); retry later
    └── OperationCancelled     raised inside task code when its operation is being cancelled

Example::

    try:
        app.enqueue("post_invoices", max_attempts=0)
    except ValidationError as exc:
        print(exc.field, exc.rule)   # max_attempts  must be between 1 and 10
"""

from __future__ import annotations

from typing import Any


class LongopsError(Exception):
    """Base class of every error longops raises on purpose."""


class ValidationError(LongopsError, ValueError):
    """Input broke a rule. ``field`` names the input, ``rule`` says what it must be.

    Example::

        raise ValidationError("rerun_delay", "must be between 0 and 3600 seconds", 4000)
    """

    def __init__(self, field: str, rule: str, value: Any = None) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"{field}: {rule}{shown}")


class NotFound(LongopsError, LookupError):
    """A named thing does not exist (or is not visible to the caller)."""

    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!s} not found")


class PermissionDenied(LongopsError):
    """The actor may see the target but may not do this to it.

    A target in a company the actor holds no permission set in is reported as
    :class:`NotFound` instead, so that its existence does not leak.

    Example::

        raise PermissionDenied("alice", "set on hold", "operation 12", "own operations only")
        # alice may not set on hold (operation 12): own operations only
    """

    def __init__(self, who: str, action: str, target: str = "", why: str = "") -> None:
        self.who = who
        self.action = action
        self.target = target
        self.why = why
        where = f" ({target})" if target else ""
        reason = f": {why}" if why else ""
        super().__init__(f"{who} may not {action}{where}{reason}")


class InvalidTransition(LongopsError):
    """The action cannot be applied to an operation in its current status."""

    def __init__(self, action: str, status: str, operation_id: object = None) -> None:
        self.action = action
        self.status = status
        self.operation_id = operation_id
        which = f" operation {operation_id}" if operation_id is not None else " an operation"
        super().__init__(f"cannot {action}{which} whose status is {status}")


class Conflict(LongopsError):
    """The request clashes with what exists: an Operation-Id already used for another
    request. ``code`` is the stable name front ends report (``OperationIdConflict``)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class TooManyRequests(LongopsError):
    """Refused for now, not for good: too many failed sign-ins for an account or a client
    address, or every password-hashing slot is busy. ``retry_after`` is whole seconds.

    Example::

        raise TooManyRequests("sign-in for alice is locked after 5 failures", 900)
    """

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message)


class ConfigurationError(LongopsError):
    """The application, its settings or its database are not usable as they are."""


class DatabaseFull(ConfigurationError):
    """The database has no room left (SQLite: the disk or the file's size limit). Nothing was
    written; once space is freed the same call succeeds, so a worker's loops wait it out."""

    transient = True


class DatabaseBusy(LongopsError):
    """The database did not do the work in time: a lock another session held was not
    granted within ``lock_timeout`` (SQLite: ``busy_timeout``), or a statement ran past
    ``statement_timeout``. The transaction was rolled back, so nothing was written; the
    same call may succeed later. ``setting`` names the setting that bounded the wait and
    ``retry_after`` suggests, in seconds, when to try again.

    Example::

        try:
            app.enqueue("post_invoices")
        except DatabaseBusy as exc:
            print(exc.setting, exc.retry_after)   # LONGOPS_LOCK_TIMEOUT 5.0
    """

    transient = True
    """A worker's loops wait this out with back-off like a lost connection (store/faults.py)."""

    def __init__(self, message: str, *, setting: str, retry_after: float) -> None:
        self.setting = setting
        self.retry_after = retry_after
        super().__init__(message)

    @classmethod
    def waited(cls, what: str, limit: str, seconds: float, setting: str) -> DatabaseBusy:
        """``what`` did not happen within ``limit`` (``seconds``, set by ``setting``).

        Example::

            DatabaseBusy.waited("a lock held by another session was not granted",
                                "lock_timeout", 5.0, "LONGOPS_LOCK_TIMEOUT")
        """
        return cls(
            f"the database is busy: {what} within {limit} ({seconds:g} s, setting {setting}); "
            "nothing was written, try again later",
            setting=setting,
            retry_after=max(seconds, 1.0),
        )


NO_SCHEMA = "the database has no longops schema yet: run `longops db upgrade` (or app.migrate())"


class OperationCancelled(LongopsError):
    """Raised inside task code once its operation is asked to stop.

    Task code may let it propagate (the run ends ``cancelled``) or catch it to clean up
    and re-raise.
    """

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        super().__init__(reason or "operation cancelled")
