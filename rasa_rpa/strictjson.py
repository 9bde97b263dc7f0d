"""JSON as RFC 8259 defines it, read and written: no NaN, no Infinity.

Python's :mod:`json` reads and writes ``NaN``, ``Infinity`` and ``-Infinity``
by default, and reads ``1e999`` as infinity. None of them is JSON: a browser's
``JSON.parse`` refuses the whole document (the monitor page then shows "Could
not reach the admin API"), and other parsers differ on what they make of them.

So there is one way in and one way out:

* :func:`loads` is the parser every route and vendor webhook uses; a
  non-finite number or a key given twice in one object is a 422 naming the
  problem, before anything is stored. Bytes must be UTF-8.
* :func:`dumps` (and :func:`rasa_rpa.http.common.json` for Sanic) is what the server
  writes with: store columns, calls to Rasa, the admin API, exports, logs.
  It never emits a non-finite number. Should one still be there (a row
  stored before the edges refused them, a vendor API's answer), it is
  written as ``null`` and logged, rather than failing the request.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from rasa_rpa.errors import InvalidPayload

__all__ = ["dumps", "finite", "loads"]

log = logging.getLogger(__name__)

#: json.dumps(value, allow_nan=False) builds this encoder on every call.
_STRICT = json.JSONEncoder(allow_nan=False)

NOT_FINITE = "numbers must be finite: NaN, Infinity and -Infinity are not JSON"


def _refuse_constant(name: str) -> Any:
    raise InvalidPayload(f"{name} in the body: {NOT_FINITE}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 and the like overflow to infinity
        raise InvalidPayload(f"{text[:40]} in the body is too large: {NOT_FINITE}")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys each appear once; parsers disagree on repeats.

    Python keeps the last ``"type"`` of ``{"type": "job.progress", "type":
    "job.succeeded"}``, other parsers the first or an error: a proxy or a
    robot's test suite could read a different event than the one recorded.
    """
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidPayload(
                    f"the key {key[:40]!r} appears twice in one object; send it once"
                )
            seen.add(key)
    return found


def loads(data: str | bytes) -> Any:
    """Parse strict JSON.

    Bytes must be UTF-8, as RFC 8259 requires between systems: json.loads
    would also guess UTF-16 or UTF-32, and decode what no one meant to send.

    Raises:
        ValueError: the text is not JSON at all (as :func:`json.loads` does),
            or bytes are not UTF-8 (UnicodeDecodeError is a ValueError), so
            callers keep their own 400 for malformed bodies.
        InvalidPayload: a number is NaN, Infinity or out of range, or a key
            appears twice in one object (422). Deliberately not a ValueError:
            handlers that turn ValueError into "not valid JSON" let it
            through with its own status and message.
    """
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    return json.loads(
        text,
        parse_constant=_refuse_constant,
        parse_float=_finite_float,
        object_pairs_hook=_unique_keys,
    )


def finite(value: Any) -> Any:
    """``value`` with every non-finite float inside it replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _has_non_finite(value: Any, seen: set[int] | None = None) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (dict, list, tuple)):
        seen = set() if seen is None else seen
        if id(value) in seen:  # a cycle: json.dumps fails on it for another reason
            return False
        seen.add(id(value))
        items = value.values() if isinstance(value, dict) else value
        return any(_has_non_finite(v, seen) for v in items)
    return False


def dumps(value: Any, **kwargs: Any) -> str:
    """:func:`json.dumps` that only ever writes strict JSON.

    The strict encoder runs first, so the usual case costs nothing extra; a
    non-finite number found on the way becomes ``null`` (and a warning,
    without the value's context: it may be a robot's data).
    """
    try:
        if not kwargs:  # the common case, without building an encoder each time
            return _STRICT.encode(value)
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        if not _has_non_finite(value):
            raise
    log.warning("NaN or Infinity in data being written as JSON; wrote null instead")
    return json.dumps(finite(value), allow_nan=False, **kwargs)
