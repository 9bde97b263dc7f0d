"""Every sentence a user can read is a response, and none shows internals.

Three views of the same promise: the code only speaks through named
responses (so a bot can reword and translate each one), a bot whose domain
overrides every response hears no built-in English on any path, and every
message the reference bot can send, rendered with a realistic job, names no
internal key, hex id, path or URL.
"""

from __future__ import annotations

import ast
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from rasa_rpa.config import load_config
from rasa_rpa.models import Job, JobState, new_job_id
from rasa_rpa.ops.domain_snippet import RESPONSES, domain_additions
from rasa_rpa.responses import ACTION_TEXTS, STATUS_RESPONSES, fallback
from rasa_rpa.variables import job_variables

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rasa_rpa"


# -- the code speaks only through responses ------------------------------------


def test_only_replies_say_anything_and_only_named_responses():
    speakers = []
    named: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "utter_message":
                speakers.append(path.relative_to(ROOT).as_posix())
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.fullmatch(r"utter_rpa_\w+[^_]", node.value):
                    named.add(node.value)
    assert sorted(set(speakers)) == ["rasa_rpa/replies.py"]
    news = {name for name in RESPONSES if name not in ACTION_TEXTS}
    assert named - news <= set(ACTION_TEXTS), named - set(ACTION_TEXTS)
    assert set(STATUS_RESPONSES.values()) <= set(ACTION_TEXTS)


# -- a bot that overrides every response hears no built-in English ------------

EVERY_RESPONSE = {"responses": {name: [{"text": f"«{name}»"}] for name in RESPONSES}}


@pytest.fixture
def server(action_server, rasa_stand_in):
    automations = {
        "idle": {
            "provider": "testbots",
            "task": "idle",
            "intent": "wait",
            "description": "waiting job",
            "inputs": {"duration": {"slot": "duration", "default": "60s"}},
        },
        "needs": {
            "provider": "testbots",
            "task": "idle",
            "intent": "needs",
            "inputs": {
                "who": {"entity": "who", "required": True, "description": "a name"}
            },
        },
        "missing": {"provider": "testbots", "task": "nope", "intent": "missing"},
    }
    return action_server(rasa_url=rasa_stand_in.url, automations=automations)


def replies(server: Any, action: str, sender: str, **kwargs: Any) -> list[str]:
    result = server.run_action(action, sender, domain=EVERY_RESPONSE, **kwargs)
    said = result["responses"]
    for reply in said:
        assert reply.get("text") is None, reply  # built-in English
        assert reply["response"] in RESPONSES, reply
    return [reply["response"] for reply in said]


def test_every_path_speaks_through_the_bots_own_responses(server):
    sender = uuid.uuid4().hex
    assert replies(server, "action_rpa_job_status", sender) == ["utter_rpa_no_job"]
    assert replies(server, "action_start_rpa_job", sender, intent="greet") == [
        "utter_rpa_unknown_automation"
    ]
    assert replies(server, "action_start_rpa_job", sender, intent="needs") == [
        "utter_rpa_missing_inputs"
    ]
    assert replies(server, "action_start_rpa_job", sender, intent="missing") == [
        "utter_rpa_job_start_failed"
    ]
    assert replies(server, "action_start_rpa_job", sender, intent="wait") == [
        "utter_rpa_job_started"
    ]
    assert replies(server, "action_start_rpa_job", sender, intent="wait") == [
        "utter_rpa_job_already_running"
    ]
    assert replies(server, "action_rpa_job_status", sender) == [
        "utter_rpa_status_pending"
    ] or replies(server, "action_rpa_job_status", sender) == [
        "utter_rpa_status_running"
    ]
    assert replies(server, "action_cancel_rpa_job", sender) == [
        "utter_rpa_job_cancelling"
    ]
    assert replies(server, "action_cancel_rpa_job", sender) == [
        "utter_rpa_job_already_finished"
    ]
    assert replies(server, "action_rpa_job_status", sender) == [
        "utter_rpa_status_cancelled"
    ]


# -- nothing the reference bot can send shows internals ------------------------

INTERNAL = [
    (re.compile(r"\b[0-9a-fA-F]{8,}\b"), "a hex id"),
    (re.compile(r"(?:^|[\s(\"'])(?:\.{0,2}|~)/\w"), "a path"),
    (re.compile(r"[A-Za-z]:\\"), "a Windows path"),
    (re.compile(r"://"), "a URL"),
    (re.compile(r"\b\w+(?:Error|Exception)\b|Traceback"), "an exception"),
    (re.compile(r"[{}]"), "an unfilled variable"),
]


def rendered_jobs(titles: dict[str, str]) -> list[dict[str, Any]]:
    """Variables of the order job in every state, as slots and arguments hold
    them, with the reference robot's outputs and an internal failure."""
    values = []
    for state in JobState:
        job = Job(
            new_job_id(),
            "collect_order_details",
            "local",
            uuid.uuid4().hex,
            state=state,
            created_at=0,
            finished_at=75 if state.is_final else None,
            progress=50.0,
            message="Found 3 orders for ACME",
            error="FileNotFoundError: [Errno 2] No such file: '/srv/bot/orders.csv'",
            outputs={
                "order_count": 3,
                "report_path": f"/srv/.rasa-rpa/runs/{uuid.uuid4().hex}/o.csv",
            },
        )
        variables = job_variables(job, titles, now=80)
        variables.setdefault("rpa_error", "no reason was given")
        values.append(
            {
                **{k: str(v) for k, v in job.outputs.items()},
                "rpa_job_id": job.id,  # a slot the bot has, which it must not show
                "customer": "ACME",
                "rpa_count": "2",
                "rpa_missing": "the customer's name",
                "rpa_question": "Which customer did you mean?",
                # What a file the robot sent brings (utter_rpa_job_file).
                "rpa_file_title": "order report",
                "rpa_file_name": "orders-ACME.xlsx",
                "rpa_file_size": "6 KB",
                "rpa_file_url": (
                    f"https://bot.example/rpa/files/{uuid.uuid4().hex}"
                    "?expires=1767225600&signature=0Zx_4-sig"
                ),
                **variables,
            }
        )
    return values


def response_texts(domain: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for name, variations in (domain.get("responses") or {}).items():
        for variation in variations:
            found.append((name, str(variation.get("text") or "")))
    return found


def interpolate(text: str, values: dict[str, Any]) -> str:
    """As Rasa fills a response: every {name} from slots and arguments."""
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), text)


def visible(sentence: str) -> str:
    """What the chat shows: a markdown link's words, not where it leads."""
    return re.sub(r"\[([^\]]*)\]\([^)\s]*\)", r"\1", sentence)


def test_no_message_of_the_reference_bot_shows_internals():
    config = load_config(ROOT / "rpa.yml")
    reference = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    texts = [
        *response_texts(reference),
        *response_texts(domain_additions(config)),
    ]
    keys = set(config.automations)
    problems = []
    for values in rendered_jobs(config.titles()):
        sentences = [(n, interpolate(t, values)) for n, t in texts]
        sentences += [(n, fallback(n, values)) for n in ACTION_TEXTS]
        for name, shown in sentences:
            sentence = visible(shown)
            for key in keys:
                if key in sentence:
                    problems.append((name, sentence, f"the key {key}"))
            for pattern, what in INTERNAL:
                if pattern.search(sentence):
                    problems.append((name, sentence, what))
    assert problems == []


def test_the_check_itself_catches_what_it_looks_for():
    config = load_config(ROOT / "rpa.yml")
    [values] = rendered_jobs(config.titles())[:1]
    leaky = "{rpa_automation} at {report_path} ({rpa_job_id})"
    sentence = interpolate(leaky, values)
    found = {what for pattern, what in INTERNAL if pattern.search(sentence)}
    assert found == {"a hex id", "a path"}
    assert "collect_order_details" in sentence


def test_a_link_shows_its_words_and_hides_where_it_leads():
    shown = "[Download the order report (orders-ACME.xlsx, 6 KB)](https://x/f?s=1)"
    assert visible(shown) == "Download the order report (orders-ACME.xlsx, 6 KB)"
    # Only a link's target is hidden: the same URL as words is still caught.
    assert visible("see https://x/f?s=1") == "see https://x/f?s=1"
