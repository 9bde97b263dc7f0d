"""Logging: one line per fact, job and conversation ids on every job line, no secrets.

``RASA_RPA_LOG_FORMAT=json`` switches to one JSON object per line (for log
shippers); ``RASA_RPA_LOG_LEVEL`` sets the level. Whatever the format, every
configured secret, every JWT and every ``whsec_`` secret becomes
``[redacted]`` before a line is written, and so do the query values and user
info of every URL in a line (``?code=[redacted]&team=[redacted]``,
``postgresql://[redacted]@db/rpa``): httpx logs each request URL at INFO, and
a URL may carry a secret nobody declared as one. This holds for records from
any logger, third-party ones included, and for exception text.

Lines about a job carry ``job_id`` and ``conversation_id``: given as
``extra=job_fields(job)``, or taken from :func:`job_context`, which the
service sets around a job's provider calls so that lines written deep in a
library (httpx's request lines) name the job too.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import reprlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from rasa_rpa import strictjson
from rasa_rpa.controls import escape_controls
from rasa_rpa.variables import job_ref

if TYPE_CHECKING:
    from rasa_rpa.models import Job

__all__ = [
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "clip",
    "configure_logging",
    "job_context",
    "job_fields",
    "redact",
    "redact_credentials",
]

_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
_WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=]+")
#: A URL with a scheme (``https://``, ``postgresql://``), or a path with a
#: query as access logs write it (``GET /rpa/ui?token=...``), up to a blank,
#: a quote or an angle bracket (how URLs end inside messages and reprs).
_URL = re.compile(r"""(?:\b[A-Za-z][A-Za-z0-9+.-]*://|(?<![\w.~%-])/)[^\s"'<>`]*""")
_QUERY_SEPARATOR = re.compile(r"([&;])")
_REDACTED = "[redacted]"
#: Set on a record once its message and exception are redacted.
_DONE = "_rasa_rpa_redacted"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    _DONE,
}
TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s "
    "[job=%(job_id)s ref=%(job_ref)s conv=%(conversation_id)s]: "
    "%(message)s"
)


_clipper = reprlib.Repr()
_clipper.maxstring = _clipper.maxother = 60
_clipper.maxlist = _clipper.maxtuple = _clipper.maxdict = _clipper.maxset = 4
_clipper.maxlevel = 2


def clip(value: object) -> str:
    """``repr(value)`` cut short: for quoting what a vendor or a stranger sent.

    A 250 KB status must not become a 250 KB log line or error message.
    """
    return _clipper.repr(value)


#: (job id, conversation id) of the job whose work the current task does.
_current_job: ContextVar[tuple[str, str] | None] = ContextVar(
    "rasa_rpa_job", default=None
)


def job_fields(job: Job) -> dict[str, str]:
    """``extra`` for a log line about ``job``."""
    return {"job_id": job.id, "conversation_id": job.conversation_id}


@contextmanager
def job_context(job: Job) -> Iterator[None]:
    """Lines logged inside (by any logger) name ``job`` unless they say otherwise.

    A context variable, so it follows the task (and the tasks it starts)
    and never leaks into concurrent work for another job.
    """
    reset = _current_job.set((job.id, job.conversation_id))
    try:
        yield
    finally:
        _current_job.reset(reset)


def _redact_query(query: str) -> str:
    """Values go, keys stay (a log should still say what was asked for)."""
    parts = []
    for part in _QUERY_SEPARATOR.split(query):
        if part in ("", "&", ";"):
            parts.append(part)
            continue
        key, equals, value = part.partition("=")
        if not equals:
            parts.append(_REDACTED)  # a bare component (``?s3cret``) is all value
        else:
            parts.append(f"{key}={_REDACTED}" if value else part)
    return "".join(parts)


def _redact_url(match: re.Match[str]) -> str:
    url = match.group(0)
    if not any(c in url for c in "?#@"):
        return url  # the common case: nothing to hide
    head, rest = "", url
    scheme, sep, after = url.partition("://")
    if sep:
        cut = min((i for i in map(after.find, "/?#") if i >= 0), default=len(after))
        _, at, host = after[:cut].rpartition("@")  # all of the user info goes
        head = f"{scheme}{sep}{_REDACTED}@{host}" if at else f"{scheme}{sep}{host}"
        rest = after[cut:]
    rest, hash_sign, fragment = rest.partition("#")
    path, question_mark, query = rest.partition("?")
    if "=" in fragment:  # ``#access_token=...``; a plain anchor stays
        fragment = _redact_query(fragment)
    return head + path + question_mark + _redact_query(query) + hash_sign + fragment


def redact_credentials(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with secrets, JWTs and webhook secrets replaced, URLs kept.

    For what a robot says to a user (chat text, errors, outputs): a link's
    query is meant for the reader there, a credential never is.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return _WHSEC.sub(_REDACTED, _JWT.sub(_REDACTED, text))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with secrets, URL query values and user info, JWTs and
    webhook secrets replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return redact_credentials(_URL.sub(_redact_url, text))


def _redact_value(value: Any, secrets: Iterable[str]) -> Any:
    """An ``extra`` field redacted (Sanic's access log puts the URL there)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {k: _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v, secrets) for v in value]
    return redact(str(value), secrets)  # a URL object, an exception...


def _redact_record(record: logging.LogRecord, secrets: Iterable[str]) -> None:
    """Message (with its arguments, e.g. httpx's ``httpx.URL``) and exception
    text redacted, once; what a formatter would print is then all text."""
    try:
        message = record.getMessage()
    except Exception:  # arguments that do not format must not break the caller
        message = f"{record.msg!s} [arguments hidden: they did not format]"
    record.msg = redact(message, secrets)
    record.args = None
    if record.exc_info:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text, secrets)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, secrets)
    setattr(record, _DONE, True)


class RedactingFilter(logging.Filter):
    """Scrubs secrets from every record, and gives job fields a default."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if len(s) >= 6}

    def add(self, *secrets: str | None) -> None:
        """Also hide these values (short ones would blank out ordinary words)."""
        # A new set, not an update: another thread may be iterating this one.
        self.secrets = self.secrets | {s for s in secrets if s and len(s) >= 6}

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, _DONE, False):
            _redact_record(record, self.secrets)
        # ``extra`` fields arrive after the record factory ran: redact here.
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, _redact_value(value, self.secrets))
        current = _current_job.get() or ("-", "-")
        for field, value in zip(("job_id", "conversation_id"), current, strict=True):
            if not hasattr(record, field):
                setattr(record, field, value)
        if not hasattr(record, "job_ref"):
            # The reference the user was shown: what they quote to support.
            job_id = getattr(record, "job_id", "-")
            known = isinstance(job_id, str) and job_id != "-"
            record.job_ref = job_ref(job_id) if known else "-"
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


class TextFormatter(logging.Formatter):
    """:data:`TEXT_FORMAT` lines, one per record whatever the text in it.

    The message and the job fields hold text users choose (a conversation
    id, a customer name): their control characters are escaped, so a line
    feed cannot forge a line and an ESC cannot drive the terminal. A
    traceback keeps its lines (only its other control characters go).
    """

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        clean = copy.copy(record)  # other handlers see the record as it was
        clean.msg, clean.args = escape_controls(record.getMessage()), None
        clean.name = escape_controls(record.name)
        for field in ("job_id", "job_ref", "conversation_id"):
            setattr(clean, field, escape_controls(str(getattr(record, field, "-"))))
        if clean.exc_info and not clean.exc_text:
            clean.exc_text = self.formatException(clean.exc_info)
        clean.exc_info = None
        if clean.exc_text:
            clean.exc_text = escape_controls(clean.exc_text, multiline=True)
        if clean.stack_info:
            clean.stack_info = escape_controls(clean.stack_info, multiline=True)
        return super().format(clean)


_filter = RedactingFilter()
#: Our root handler's name: other handlers carry the filter too.
_HANDLER_NAME = "rasa_rpa"


def _redacting_factory(
    make: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        _redact_record(record, _filter.secrets)
        return record

    factory.rasa_rpa = True  # type: ignore[attr-defined]
    return factory


def _cover_every_handler() -> None:
    """Put the filter on every handler there is: a handler that is not ours
    (Sanic's own, or ``coloredlogs`` on the root when rasa-sdk runs the
    server) writes lines that never passed through our handler."""
    manager = logging.Logger.manager
    loggers = [logging.getLogger(), *manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if _filter not in handler.filters:
                handler.addFilter(_filter)


def configure_logging(secrets: Iterable[str] = ()) -> RedactingFilter:
    """Set up the root handler once per process; return the shared filter.

    Every record made in the process is redacted when it is made, whichever
    logger makes it and whichever handler writes it, and the filter goes on
    every handler that exists by now, so a handler that is not ours still
    gets ``extra`` fields redacted. Call again after a library adds handlers
    (the runtime does, once Sanic has set up its loggers).
    """
    _filter.add(*secrets)
    if not getattr(logging.getLogRecordFactory(), "rasa_rpa", False):
        logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.name == _HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler.set_name(_HANDLER_NAME)
        handler.addFilter(_filter)
        root.addHandler(handler)
        root.setLevel(os.environ.get("RASA_RPA_LOG_LEVEL", "INFO").upper())
    if os.environ.get("RASA_RPA_LOG_FORMAT", "text").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    _cover_every_handler()
    return _filter
