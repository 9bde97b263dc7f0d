"""Logging: one line per fact, job and conversation ids on every job line, no secrets.

``RASA_RPA_LOG_FORMAT=json`` switches to one JSON object per line (for log
shippers); ``RASA_RPA_LOG_LEVEL`` sets the level. Whatever the format, a
filter replaces every configured secret, every JWT and every ``whsec_``
secret with ``[redacted]`` before a line is written, including in
exception text from third-party libraries.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import Any

from rasa_rpa import strictjson

__all__ = ["JsonFormatter", "RedactingFilter", "configure_logging", "redact"]

_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
_WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=]+")
_REDACTED = "[redacted]"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [job=%(job_id)s conv=%(conversation_id)s]: "
    "%(message)s"
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with secrets, JWTs and webhook secrets replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return _WHSEC.sub(_REDACTED, _JWT.sub(_REDACTED, text))


class RedactingFilter(logging.Filter):
    """Scrubs secrets from every record, and gives job fields a default."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if len(s) >= 6}

    def add(self, *secrets: str | None) -> None:
        """Also hide these values (short ones would blank out ordinary words)."""
        self.secrets.update(s for s in secrets if s and len(s) >= 6)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info:
            record.exc_text = redact(
                logging.Formatter().formatException(record.exc_info), self.secrets
            )
            record.exc_info = None
        for field in ("job_id", "conversation_id"):
            if not hasattr(record, field):
                setattr(record, field, "-")
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and value != "-":
                entry[key] = value
        if record.exc_text:
            entry["exception"] = record.exc_text
        return strictjson.dumps(entry, default=str)


_filter = RedactingFilter()


def configure_logging(secrets: Iterable[str] = ()) -> RedactingFilter:
    """Set up the root handler once per process; return the shared filter."""
    _filter.add(*secrets)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if _filter in h.filters), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler.addFilter(_filter)
        root.addHandler(handler)
        root.setLevel(os.environ.get("RASA_RPA_LOG_LEVEL", "INFO").upper())
    if os.environ.get("RASA_RPA_LOG_FORMAT", "text").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    return _filter
