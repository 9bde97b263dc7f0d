"""What both SQL stores share: the outbox status filters, the fields a plain
update may set, and how JSON columns are written."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["OUTBOX_STATUS", "UPDATABLE", "dump"]

#: SQL conditions for each outbox status (the same columns in both schemas).
OUTBOX_STATUS = {
    "pending": "delivered_at IS NULL AND dead_at IS NULL",
    "delivered": "delivered_at IS NOT NULL",
    "dead": "dead_at IS NOT NULL",
}
#: Job fields update_job may set; state changes only go through events.
UPDATABLE = frozenset({"provider_ref", "deadline_at", "output_channel", "message"})


def dump(value: Any) -> str:
    """Compact JSON text, the same bytes whichever store keeps it."""
    return json.dumps(value, separators=(",", ":"), default=str)
