"""Operations over HTTP, under ``/v1/companies/{company}/``: one router made of the
resource's parts, in the order the OpenAPI document lists them: enqueue (``enqueue.py``),
reads and streams (``reads.py``), actions on one operation (``actions.py``) and batches
(``batches.py``). What they share is in ``presenting.py``."""

from __future__ import annotations

from fastapi import APIRouter

from longops.api import actions, batches, enqueue, reads
from longops.api.presenting import ERRORS, present

__all__ = ["ERRORS", "present", "router"]

router = APIRouter()
for _part in (enqueue, reads, actions, batches):
    router.include_router(_part.router)
