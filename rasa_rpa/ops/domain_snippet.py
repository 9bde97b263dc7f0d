"""What a bot's domain and rules need for rasa-rpa, generated from the code.

``rasa-rpa domain`` prints it and ``rasa-rpa doctor`` checks a domain
against it. The names are derived from the modules that produce them (the
intents from :func:`rasa_rpa.lifecycle.intent_for`, the entities from
:func:`rasa_rpa.lifecycle.status_entities`), so a new job state or entity
cannot reach Rasa without also reaching this list.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rasa_rpa.config import RpaConfig
from rasa_rpa.lifecycle import FILE_INTENT, INTENT_PREFIX, intent_for, status_entities
from rasa_rpa.models import EventType, Job
from rasa_rpa.ops.question_domain import (
    QUESTION_ACTIONS,
    QUESTION_ENTITIES,
    QUESTION_FORMS,
    QUESTION_INTENTS,
    QUESTION_NEWS_RESPONSES,
    question_rules,
    question_slots,
)
from rasa_rpa.responses import ACTION_TEXTS, GENERIC_NEWS_TEXT, NEWS_TEXTS
from rasa_rpa.variables import FILE_VARIABLES

__all__ = [
    "ACTIONS",
    "ACTION_RESPONSES",
    "DOMAIN_VERSION",
    "ENTITIES",
    "FORMS",
    "INTENTS",
    "JOB_SLOT",
    "NEWS",
    "NEWS_INTENTS",
    "NEWS_RESPONSES",
    "RESPONSES",
    "SLOTS",
    "START_ACTION",
    "Problem",
    "check_domain",
    "domain_additions",
    "input_domain",
    "load_domain_file",
    "render",
    "rules",
]

DOMAIN_VERSION = "3.1"
START_ACTION = "action_start_rpa_job"
STATUS_ACTION = "action_rpa_job_status"
CANCEL_ACTION = "action_cancel_rpa_job"
ACTIONS = (START_ACTION, STATUS_ACTION, CANCEL_ACTION, *QUESTION_ACTIONS)
#: The slot the start action sets; it must equal ``rasa_rpa.actions.JOB_SLOT``.
JOB_SLOT = "rpa_job_id"


def _news() -> tuple[str, ...]:
    # Every event that moves a job produces one intent; "started" and
    # "progress" both mean running, so collect the distinct suffixes in order.
    found: list[str] = []
    for event_type in EventType:
        if event_type.target_state is None:
            continue
        suffix = intent_for(event_type)[len(INTENT_PREFIX) :]
        if suffix not in found:
            found.append(suffix)
    # A file the robot sent: news too, though it moves no state.
    return (*found, FILE_INTENT[len(INTENT_PREFIX) :])


#: What the bot hears about: running, progress, succeeded, failed, ..., file
NEWS = _news()
NEWS_INTENTS = tuple(INTENT_PREFIX + news for news in NEWS)
INTENTS = ("job_status", "cancel_job", *NEWS_INTENTS, *QUESTION_INTENTS)


def _entities() -> tuple[str, ...]:
    # A job with every optional field set shows every entity the plugin sends.
    job = Job("j", "a", "p", "c", progress=1.0, message="m", error="e")
    # rpa_job_id names the job for the bot's actions; the rest are the
    # response variables (rasa_rpa.variables.JOB_VARIABLES), then the file's,
    # which come with EXTERNAL_rpa_job_file.
    return (*status_entities(job), *FILE_VARIABLES)


#: Entities sent with every EXTERNAL_rpa_job_* intent (robot outputs come on top).
STATUS_ENTITIES = _entities()
#: ... and those of robots' questions and of the buttons that answer them.
ENTITIES = (*STATUS_ENTITIES, *QUESTION_ENTITIES)


def _slot(name: str) -> dict[str, Any]:
    if name == JOB_SLOT:
        # Set by the start action (SlotSet), never by an entity of the user.
        mappings: list[dict[str, Any]] = [{"type": "custom"}]
    else:
        mappings = [{"type": "from_entity", "entity": name}]
    kind = "any" if name == "rpa_progress" else "text"
    return {"type": kind, "influence_conversation": False, "mappings": mappings}


def _handover_intent(config: RpaConfig | None) -> str | None:
    """rpa.yml's ``handover.intent``: Rasa must know it to take the hand-over."""
    intent = getattr(getattr(config, "handover", None), "intent", None)
    return intent if isinstance(intent, str) and intent else None


def _never_an_answer(config: RpaConfig | None) -> list[str]:
    """Intents a question's form never takes as the words of an answer."""
    handover = _handover_intent(config)
    return [name for name in (*INTENTS, handover) if name]


def slots(config: RpaConfig | None = None) -> dict[str, dict[str, Any]]:
    """Every slot: the job's entities', and the questions' (form included)."""
    return {
        **{name: _slot(name) for name in STATUS_ENTITIES},
        **question_slots(_never_an_answer(config)),
    }


SLOTS = slots()
#: Slots filled from the entity of their name (the doctor checks the mapping).
ENTITY_SLOTS = tuple(
    name
    for name, slot in SLOTS.items()
    if slot["mappings"] == [{"type": "from_entity", "entity": name}]
)
FORMS = QUESTION_FORMS

#: Responses the EXTERNAL_ rules utter: a missing one breaks training.
NEWS_RESPONSES: dict[str, str] = {
    **{
        f"utter_rpa_job_{news}": NEWS_TEXTS.get(news, GENERIC_NEWS_TEXT)
        for news in NEWS
    },
    **QUESTION_NEWS_RESPONSES,
}
#: Responses the actions utter; without one an action says the English default.
ACTION_RESPONSES: dict[str, str] = dict(ACTION_TEXTS)
RESPONSES = {**NEWS_RESPONSES, **ACTION_RESPONSES}


def _automation_intents(config: RpaConfig | None) -> list[str]:
    """The intents rpa.yml names: automations' and the optional hand-over."""
    if config is None:
        return []
    found = [a.intent for a in config.automations.values() if a.intent]
    handover = _handover_intent(config)
    return [*found, handover] if handover else found


def _automation_actions(config: RpaConfig | None) -> list[str]:
    if config is None:
        return []
    return [a.action for a in config.automations.values() if a.action]


def input_domain(
    config: RpaConfig | None,
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The entities and slots the automations' inputs read (rpa.yml ``inputs``).

    An ``entity:`` input needs the entity, or the NLU never extracts it. A
    ``slot:`` input needs the slot; it is filled from the entity of the same
    name, so a user can give the value in words (a form may fill it too).
    """
    entities: list[str] = []
    slots: dict[str, dict[str, Any]] = {}
    for automation in config.automations.values() if config else ():
        for source in automation.inputs.values():
            name = source.entity or source.slot
            if name and name not in ENTITIES and name not in entities:
                entities.append(name)
            if source.slot and source.slot not in SLOTS:
                slots[source.slot] = _slot(source.slot)
    return entities, slots


def domain_additions(config: RpaConfig | None = None) -> dict[str, Any]:
    """The domain.yml keys rasa-rpa needs, with the automations' intents if known."""
    input_entities, input_slots = input_domain(config)
    return {
        "version": DOMAIN_VERSION,
        "intents": [*_automation_intents(config), *INTENTS],
        "entities": [*input_entities, *ENTITIES],
        "slots": {**input_slots, **slots(config)},
        "forms": FORMS,
        "responses": {name: [{"text": text}] for name, text in RESPONSES.items()},
        "actions": [*ACTIONS, *_automation_actions(config)],
    }


def _rule(title: str, intent: str, action: str) -> dict[str, Any]:
    return {"rule": title, "steps": [{"intent": intent}, {"action": action}]}


def rules(config: RpaConfig | None = None) -> dict[str, Any]:
    """The data/rules.yml rules: start, status, cancel and one per piece of news."""
    found: list[dict[str, Any]] = []
    for name, automation in (config.automations if config else {}).items():
        if automation.intent:
            action = automation.action or START_ACTION
            found.append(_rule(f"start {name}", automation.intent, action))
    found.append(_rule("job status", "job_status", STATUS_ACTION))
    found.append(_rule("cancel job", "cancel_job", CANCEL_ACTION))
    said = {INTENT_PREFIX + news: f"utter_rpa_job_{news}" for news in NEWS}
    for intent, response in said.items():
        found.append(_rule(f"robot {intent[len(INTENT_PREFIX) :]}", intent, response))
    found += question_rules(said, STATUS_ACTION, CANCEL_ACTION)
    return {"version": DOMAIN_VERSION, "rules": found}


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=88)


def render(config: RpaConfig | None = None, part: str = "all") -> str:
    """YAML to paste: ``domain``, ``rules`` or both as two YAML documents."""
    docs: list[str] = []
    if part in ("all", "domain"):
        docs.append("# rasa-rpa: add to domain.yml\n" + _dump(domain_additions(config)))
    if part in ("all", "rules"):
        docs.append("# rasa-rpa: add to data/rules.yml\n" + _dump(rules(config)))
    return "---\n".join(docs)


#: ``(check, status, cause, fix)``; status is ``error`` or ``warning``.
Problem = tuple[str, str, str, str]
_HOW = "`rasa-rpa domain` prints every addition"


def _names(items: Any) -> set[str]:
    """Names in a domain section: a list of names or ``{name: props}``, or a map."""
    if isinstance(items, dict):
        return {str(k) for k in items}
    found: set[str] = set()
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            found.update(str(k) for k in item)
        elif item is not None:
            found.add(str(item))
    return found


def check_domain(
    domain: dict[str, Any], source: str, config: RpaConfig | None = None
) -> list[Problem]:
    """What ``domain`` lacks for the plugin and the automations; [] if nothing.

    Rasa gives its domain (``GET /domain``) in the shape of domain.yml, so one
    check serves the running bot and the file alike.
    """
    intents, actions = _names(domain.get("intents")), _names(domain.get("actions"))
    responses = _names(domain.get("responses"))
    raw_slots = domain.get("slots")
    have_slots: dict[str, Any] = raw_slots if isinstance(raw_slots, dict) else {}
    groups = [
        ("intents", INTENTS, intents, "error", ""),
        ("entities", ENTITIES, _names(domain.get("entities")), "error", ""),
        ("slots", tuple(SLOTS), set(have_slots), "error", ""),
        ("actions", ACTIONS, actions, "error", ""),
        ("forms", tuple(FORMS), _names(domain.get("forms")), "error", ""),
        ("responses", tuple(NEWS_RESPONSES), responses, "error", "rules utter them"),
        (
            "responses",
            tuple(ACTION_RESPONSES),
            responses,
            "warning",
            "without them the actions speak plain English",
        ),
    ]
    found: list[Problem] = []
    for key, wanted, have, status, why in groups:
        missing = [name for name in wanted if name not in have]
        if missing:
            cause = f"{source} lacks {key} {', '.join(missing)}"
            fix = f"add them under {key}: in domain.yml ({_HOW})"
            cause += f"; {why}" if why else ""
            found.append((f"domain.{key}", status, cause, fix))
    for name in ENTITY_SLOTS:
        if not isinstance(have_slots.get(name), dict):
            continue
        mappings = have_slots[name].get("mappings") or []
        if not any(isinstance(m, dict) and m.get("entity") == name for m in mappings):
            cause = f"slot {name} in {source} is not filled from the entity {name}"
            fix = f"give it mappings: [{{type: from_entity, entity: {name}}}]"
            found.append(("domain.slots", "warning", cause, fix))
    intent = _handover_intent(config)
    if intent and intent not in intents:
        cause = f"the hand-over intent {intent!r} (rpa.yml handover.intent) is "
        cause += f"not in {source}, so Rasa refuses it after a failed job"
        fix = f"add {intent} to intents: and a rule for it, or unset handover"
        found.append(("handover.intent", "error", cause, fix))
    for name, automation in (config.automations if config else {}).items():
        if automation.intent and automation.intent not in intents:
            cause = (
                f"its intent {automation.intent!r} is not in {source}, so the "
                "automation can never start"
            )
            fix = (
                f"add {automation.intent} to intents: (with NLU examples) or "
                f"change automations.{name}.intent"
            )
            found.append((f"automations.{name}", "error", cause, fix))
        if automation.action and automation.action not in actions:
            cause = f"its action {automation.action!r} is not in {source}"
            fix = f"add {automation.action} under actions: in domain.yml"
            found.append((f"automations.{name}", "error", cause, fix))
    found.extend(_input_problems(domain, source, config))
    return found


def _input_problems(
    domain: dict[str, Any], source: str, config: RpaConfig | None
) -> list[Problem]:
    """The automations' input entities and slots the domain lacks."""
    entities, slots = input_domain(config)
    have_entities = _names(domain.get("entities"))
    have_slots = _names(domain.get("slots"))
    missing = [e for e in entities if e not in have_entities]
    missing += [f"slot {s}" for s in slots if s not in have_slots]
    if not missing:
        return []
    cause = f"{source} lacks what automations' inputs read: {', '.join(missing)}"
    cause += "; those inputs stay at their default"
    fix = "run `rasa-rpa init` again, or add them (`rasa-rpa domain --config rpa.yml`)"
    return [("domain.inputs", "warning", cause, fix)]


def load_domain_file(
    path: Path, read: Callable[[Path], str | None] | None = None
) -> dict[str, Any]:
    """A domain file, or a folder of them merged the way Rasa merges them.

    ``read`` reads one file (init's refuses FIFOs, devices, huge files and
    alias bombs); by default a plain read.
    """
    files = sorted(path.glob("**/*.y*ml")) if path.is_dir() else [path]
    merged: dict[str, Any] = {}
    for file in files:
        text = read(file) if read else file.read_text(encoding="utf-8")
        data = yaml.safe_load(text or "") or {}
        if not isinstance(data, dict):
            raise ValueError(f"{file} is not a YAML mapping")
        for key, value in data.items():
            if isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = [*merged[key], *value]
            elif isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged
