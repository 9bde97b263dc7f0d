"""Text no store or transport can carry: NUL bytes and lone surrogates.

Both are valid in a Python ``str`` and in JSON (``\\u0000``, ``\\ud800``),
yet PostgreSQL text refuses NUL, UTF-8 cannot encode a lone surrogate (so
SQLite's driver, HTTP and most vendors refuse it), and a command line ends
at a NUL. Two policies, by who can fix the text:

* From the chat, refused at start (:func:`input_problem`): the user hears
  at once which input is to blame, whichever provider would have carried it,
  instead of a vendor failing the job minutes later.
* From a vendor (webhooks and status polls), cleaned (:func:`clean`): a
  refusal would only hurt. UiPath switches a webhook off for an hour after
  one failure, and a poll would fail the same way until the job expired.
  Each bad character becomes U+FFFD, so the rest of the text still reads.

Native robot callbacks keep their 422 (see :mod:`rasa_rpa.http.payloads`): the
robot's developer can fix what their robot sends.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["REPLACEMENT", "clean", "clean_event", "input_problem", "text_problem"]

#: What a character that cannot be kept becomes (U+FFFD REPLACEMENT CHARACTER).
REPLACEMENT = "\ufffd"
# Paired surrogates never reach here: json and Python join them into one
# character, so any surrogate code point left in a str is a lone one.
_UNKEEPABLE = re.compile("[\x00\ud800-\udfff]")
#: The fields of JobEvent and WebhookEvent that carry a vendor's text. A
#: WebhookEvent's ``token`` is not one of them: it is checked, never kept.
_TEXT_FIELDS = frozenset({"id", "event_id", "job_id", "provider_ref", "data"})

_Event = TypeVar("_Event", bound="DataclassInstance")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored or sent as it is, or None if it can.

    The words name no value: the text itself must not reach the log or the store.
    """
    if "\x00" in text:
        return "contains a NUL byte, which cannot be passed on as text"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (it has a lone surrogate)"
    return None


def input_problem(inputs: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first input holding unkeepable text and why, or None if all are fine.

    Nested values (lists, objects) are searched too; the top-level input's
    name is what the user knows, so that is the one named.
    """
    for name, value in inputs.items():
        for text in _texts(value):
            problem = text_problem(text)
            if problem is not None:
                return name, problem
    return None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [t for k, v in value.items() for t in (*_texts(k), *_texts(v))]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _texts(item)]
    return []


def clean(value: Any) -> Any:
    """``value`` with every NUL and lone surrogate in its text (keys too) replaced.

    Returns the very same object when there is nothing to replace, so the
    usual case copies nothing.
    """
    if isinstance(value, str):
        return _UNKEEPABLE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        pairs = [(clean(k), clean(v)) for k, v in value.items()]
        old = value.items()
        if all(a is k and b is v for (a, b), (k, v) in zip(pairs, old, strict=True)):
            return value
        return dict(pairs)
    if isinstance(value, (list, tuple)):
        items = [clean(item) for item in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items
    return value


def clean_event(event: _Event) -> _Event:
    """A vendor's event (a JobEvent or a WebhookEvent) with its text cleaned.

    Ids are cleaned as well as data: a vendor id holding a NUL would
    otherwise fail the store statement, or the lookup of its job.
    """
    changes = {
        f.name: clean(getattr(event, f.name))
        for f in dataclasses.fields(event)
        if f.name in _TEXT_FIELDS
    }
    return dataclasses.replace(event, **changes)
