"""Credentials scrubbed out of what robots and vendors report, before it is stored.

A robot's error, chat text or outputs are shown to the user, sent to Rasa
and kept in the job store; a careless robot puts its own token in them
(``Fail    Token is %{RASA_RPA_TOKEN}``). Every string in an event's data
loses the job's own signing secret, every configured secret, and anything
shaped like a JWT or a ``whsec_`` secret, the same primitives the logs use
(:func:`rasa_rpa.logs.redact_credentials`). URLs keep their query: a link
in a chat line is meant for its reader.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from rasa_rpa.logs import redact_credentials
from rasa_rpa.models import JobEvent

__all__ = ["MIN_SECRET", "scrub", "scrub_event"]

#: Shorter configured values would blank out ordinary words (as in the logs).
MIN_SECRET = 6


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` with every string in it (keys included) scrubbed."""
    if isinstance(value, str):
        return redact_credentials(value, secrets)
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    return value


def scrub_event(event: JobEvent, secrets: Iterable[str]) -> JobEvent:
    """``event`` with credential-free data (the same object if it had none)."""
    kept = [s for s in secrets if len(s) >= MIN_SECRET]
    data = scrub(event.data, kept)
    return event if data == event.data else dataclasses.replace(event, data=data)
