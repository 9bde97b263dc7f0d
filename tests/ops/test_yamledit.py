"""Adding entries to a user's YAML file: every existing byte stays where it can."""

from __future__ import annotations

import pytest
import yaml

from rasa_rpa.ops.yamledit import YamlEditError, add_entries


def added_lines(before: str, after: str) -> list[str]:
    """``after`` minus ``before``, asserting ``before`` is still there in order."""
    lines = after.splitlines()
    rest = iter(lines)
    assert all(line in rest for line in before.splitlines()), after
    kept = before.splitlines()
    return [line for line in lines if line not in kept]


def test_entries_go_at_the_end_of_their_section_in_its_indentation():
    before = (
        "intents:\n"
        "  - greet\n"
        "\n"
        "# My responses.\n"
        "responses:\n"
        "  utter_greet:\n"
        "  - text: Hi\n"
    )
    after = add_entries(
        before,
        {"intents": ["job_status"], "responses": {"utter_x": [{"text": "X"}]}},
        note="rasa-rpa",
    )
    assert after.startswith("intents:\n  - greet\n  # rasa-rpa\n  - job_status\n\n")
    assert added_lines(before, after) == [
        "  # rasa-rpa",
        "  - job_status",
        "  # rasa-rpa",
        "  utter_x:",
        "    - text: X",
    ]
    assert yaml.safe_load(after)["responses"]["utter_greet"] == [{"text": "Hi"}]


def test_a_missing_section_is_appended_and_an_empty_file_filled():
    assert yaml.safe_load(add_entries("", {"nlu": [{"intent": "a"}]})) == {
        "nlu": [{"intent": "a"}]
    }
    after = add_entries("# only comments\n", {"action_endpoint": {"url": "u"}})
    assert after == "# only comments\n\naction_endpoint:\n  url: u\n"


def test_an_empty_section_gets_its_first_entries():
    after = add_entries("slots:\nactions:\n  - a\n", {"slots": {"s": {"type": "text"}}})
    assert yaml.safe_load(after) == {"slots": {"s": {"type": "text"}}, "actions": ["a"]}


def test_a_hash_line_inside_a_block_scalar_is_text_not_a_boundary():
    before = "responses:\n  utter_a:\n  - text: |\n      hi\n      # not a comment\n"
    after = add_entries(before, {"responses": {"utter_b": [{"text": "b"}]}})
    assert after.startswith(before)  # inserted after the scalar, nothing moved
    assert yaml.safe_load(after)["responses"]["utter_a"] == [
        {"text": "hi\n# not a comment\n"}
    ]


def test_flow_style_falls_back_to_a_round_trip_that_keeps_comments():
    before = "# mine\nintents: [greet, goodbye]  # two\n"
    after = add_entries(before, {"intents": ["job_status"]})
    assert yaml.safe_load(after) == {"intents": ["greet", "goodbye", "job_status"]}
    assert "# mine" in after and "# two" in after


def test_nothing_to_add_leaves_the_text_as_it_is():
    assert (
        add_entries("a: 1  # odd   spacing\n", {"b": []}) == "a: 1  # odd   spacing\n"
    )


def test_what_is_not_a_mapping_is_refused():
    with pytest.raises(YamlEditError):
        add_entries("- a\n- b\n", {"intents": ["x"]})
    with pytest.raises(YamlEditError):
        add_entries("intents: [a\n", {"intents": ["x"]})
    with pytest.raises(YamlEditError, match="intents"):
        add_entries("intents: 3\n", {"intents": ["x"]})


def test_a_file_of_many_aliases_is_refused_unexpanded():
    # Nine levels of nine aliases each: 387 million strings once walked.
    bomb = 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n' + "".join(
        f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    with pytest.raises(YamlEditError, match="more than 50 YAML aliases"):
        add_entries(bomb + "intents: *i\n", {"intents": ["job_status"]})
