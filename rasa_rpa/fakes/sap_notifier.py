"""What the fake SAP tenant's API notifiers send: SAP's default body or a template.

Both halves are guesses where SAP publishes nothing (marked ``GUESS``); they
live apart from the tenant so a test can render a template on its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_STATUS", "render_template"]

#: Notifier event -> the ``status`` SAP's default notifier body carries.
#: GUESS: SAP documents the events (Start, Success, Failure, Cancel,
#: Expired) but not the default body's values; these are the job statuses
#: Control Tower shows.
DEFAULT_STATUS = {
    "Start": "RUNNING",
    "Success": "COMPLETED",
    "Failure": "FAILED",
    "Cancel": "CANCELED",
    "Expired": "EXPIRED",
}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


def render_template(template: str, variables: Mapping[str, Any]) -> str:
    """A notifier payload template with its ``${name}`` / ``${name.field}`` filled.

    GUESS: SAP puts a text value in as it is and anything else (objects,
    lists, numbers, booleans, null) as JSON, and a variable the job does not
    have as ``null``. So ``"${error.details}"`` breaks when the details are
    an object, and a template is safe only where each variable stands whole
    where its type fits.
    """

    def value_of(match: re.Match[str]) -> str:
        value: Any = variables
        for part in match.group(1).split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value if isinstance(value, str) else json.dumps(value)

    return _VARIABLE.sub(value_of, template)
