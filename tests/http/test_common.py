"""The helpers every route shares (rasa_rpa.http.common)."""

from __future__ import annotations

import json

from rasa_rpa.http.common import json as json_response


def refuse(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def test_json_answers_are_strict_and_compact() -> None:
    response = json_response({"r": float("-inf"), "ok": 1}, status=201)
    assert response.status == 201
    assert response.body == b'{"r":null,"ok":1}'
    assert json.loads(response.body, parse_constant=refuse) == {"r": None, "ok": 1}
