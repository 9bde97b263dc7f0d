"""What `rasa-rpa domain` and `init` add for robots' questions, and that the
doctor asks for it."""

from __future__ import annotations

from rasa_rpa.lifecycle import INTENT_PREFIX
from rasa_rpa.ops import domain_snippet as needs
from rasa_rpa.ops.question_domain import QUESTION_INTENTS


def test_the_form_takes_no_message_that_means_something_else(make_config):
    config = make_config(handover={"intent": "EXTERNAL_handover_to_human"})
    domain = needs.domain_additions(config)
    assert domain["forms"] == {"rpa_answer_form": {"required_slots": ["rpa_answer"]}}
    [mapping] = domain["slots"]["rpa_answer"]["mappings"]
    assert mapping["type"] == "from_text"
    assert mapping["conditions"] == [
        {"active_loop": "rpa_answer_form", "requested_slot": "rpa_answer"}
    ]
    # Every intent the plugin sends, status and cancel, a button's answer,
    # and the hand-over keep their meaning while the form waits.
    assert set(mapping["not_intent"]) == {
        *needs.INTENTS,
        "EXTERNAL_handover_to_human",
    }
    assert set(QUESTION_INTENTS) <= set(domain["intents"])
    assert {"action_rpa_ask", "action_rpa_answer", "validate_rpa_answer_form"} <= set(
        domain["actions"]
    )


def test_every_interruption_returns_to_the_form():
    rules = needs.rules()["rules"]
    waiting = [{"active_loop": "rpa_answer_form"}]
    in_form = [r for r in rules if r.get("condition") == waiting]
    interrupting = {
        r["steps"][0]["intent"] for r in in_form if "intent" in r["steps"][0]
    }
    news = {INTENT_PREFIX + n for n in needs.NEWS}
    assert interrupting == {"job_status", "cancel_job", *QUESTION_INTENTS, *news}
    for rule in in_form:
        if "intent" in rule["steps"][0]:
            assert rule["steps"][-2:] == [
                {"action": "rpa_answer_form"},
                {"active_loop": "rpa_answer_form"},
            ]
    [submit] = [r for r in in_form if "intent" not in r["steps"][0]]
    assert submit["steps"][-1] == {"action": "action_rpa_answer"}


def test_the_doctor_asks_for_the_form():
    domain = needs.domain_additions()
    assert needs.check_domain(domain, "domain.yml") == []
    del domain["forms"]
    [problem] = needs.check_domain(domain, "domain.yml")
    assert problem[:2] == ("domain.forms", "error")
    assert "rpa_answer_form" in problem[2]
