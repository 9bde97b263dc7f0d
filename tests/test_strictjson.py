"""Strict JSON in and out: NaN and Infinity are refused on reading, never written."""

from __future__ import annotations

import json
import logging

import pytest

from rasa_rpa import strictjson
from rasa_rpa.errors import InvalidPayload


def refuse(constant: str) -> None:
    raise AssertionError(f"{constant} written")


@pytest.mark.parametrize(
    "text", ["NaN", "[Infinity]", '{"a": {"b": -Infinity}}', "1e999", "-1e400"]
)
def test_non_finite_numbers_are_a_422(text: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        strictjson.loads(text)
    assert caught.value.status == 422
    assert "finite" in caught.value.message


def test_malformed_json_is_still_a_value_error() -> None:
    """Callers keep their own 400 for text that is not JSON at all."""
    with pytest.raises(ValueError):
        strictjson.loads(b"{not json")
    assert strictjson.loads(b'{"a": [1.5, 2, "x"]}') == {"a": [1.5, 2, "x"]}


def test_dumps_writes_null_for_non_finite_numbers_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = {"a": float("nan"), "b": (float("inf"), 1.0), "c": "NaN"}
    with caplog.at_level(logging.WARNING, logger="rasa_rpa.strictjson"):
        text = strictjson.dumps(value)
    assert json.loads(text, parse_constant=refuse) == {
        "a": None,
        "b": [None, 1.0],
        "c": "NaN",
    }
    assert "wrote null" in caplog.text


def test_dumps_keeps_other_errors() -> None:
    looped: list[object] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular"):
        strictjson.dumps(looped)


def test_a_repeated_key_is_a_422_naming_it() -> None:
    """Python keeps the last of two keys, other parsers the first: refuse both."""
    with pytest.raises(InvalidPayload) as caught:
        strictjson.loads('{"a": {"type": "x", "type": "y"}}')
    assert caught.value.status == 422
    assert "'type'" in caught.value.message
    assert strictjson.loads('{"a": {"type": "x"}, "b": {"type": "y"}}')["b"]


def test_bytes_must_be_utf8() -> None:
    """json.loads would guess UTF-16 or UTF-32 from the first bytes."""
    with pytest.raises(ValueError):
        strictjson.loads('{"a": 1}'.encode("utf-16"))
    assert strictjson.loads('{"a": "\u00e4"}'.encode()) == {"a": "\u00e4"}
