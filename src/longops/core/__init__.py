"""The application service every front end uses: enqueue, read, and Business Central's
actions (set ready, hold, restart, run now, cancel, delete, remove failed)."""

from longops.core.service import EnqueueRequest, OperationService

__all__ = ["EnqueueRequest", "OperationService"]
