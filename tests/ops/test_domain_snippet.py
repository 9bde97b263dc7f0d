"""What a bot's domain needs: the automations' inputs are part of it."""

from __future__ import annotations

from rasa_rpa.config import config_from_dict
from rasa_rpa.ops.domain_snippet import (
    ENTITIES,
    SLOTS,
    check_domain,
    domain_additions,
    input_domain,
)


def config_with_inputs(inputs: dict) -> object:
    return config_from_dict(
        {"automations": {"a": {"task": "a", "intent": "start_a", "inputs": inputs}}}
    )


def test_entity_and_slot_inputs_need_their_entity_and_slot():
    config = config_with_inputs(
        {
            "customer": {"entity": "customer", "default": "ALL"},
            "month": {"slot": "invoice_month"},
            "fixed": "literal values need nothing",
            "again": {"entity": "customer"},
            "job": {"slot": "rpa_job_id"},  # the plugin's own slot stays its own
        }
    )
    entities, slots = input_domain(config)
    assert entities == ["customer", "invoice_month"]
    # A slot input is filled from the entity of its name: users can say it.
    assert slots == {
        "invoice_month": {
            "type": "text",
            "influence_conversation": False,
            "mappings": [{"type": "from_entity", "entity": "invoice_month"}],
        }
    }
    domain = domain_additions(config)
    assert domain["entities"] == ["customer", "invoice_month", *ENTITIES]
    assert domain["slots"] == {**slots, **SLOTS}
    assert check_domain(domain, "printed", config) == []


def test_without_a_config_only_the_plugins_own():
    assert input_domain(None) == ([], {})
    assert domain_additions()["entities"] == list(ENTITIES)


def test_the_doctor_names_input_entities_and_slots_the_domain_lacks():
    config = config_with_inputs(
        {"customer": {"entity": "customer"}, "month": {"slot": "invoice_month"}}
    )
    complete = domain_additions(config)
    assert [p for p in check_domain(complete, "domain.yml", config)
            if p[0] == "domain.inputs"] == []
    lacking = {**complete, "entities": list(ENTITIES), "slots": dict(SLOTS)}
    [(_, status, cause, _)] = [
        p for p in check_domain(lacking, "domain.yml", config)
        if p[0] == "domain.inputs"
    ]
    assert status == "warning"
    assert "customer" in cause and "slot invoice_month" in cause
