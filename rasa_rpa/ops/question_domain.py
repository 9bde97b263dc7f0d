"""What a bot's domain and rules need for robots' questions, from the code.

:mod:`rasa_rpa.ops.domain_snippet` merges it into ``rasa-rpa domain``, the
doctor's checks and ``rasa-rpa init``. The shape, and why:

* ``EXTERNAL_rpa_job_question`` runs ``action_rpa_ask``, which says
  ``utter_rpa_question`` with the choices as buttons; a button sends the
  intent ``rpa_answer`` with the entities ``rpa_question_id`` and
  ``rpa_choice``, and ``action_rpa_answer`` passes it on.
* ``EXTERNAL_rpa_job_question_free_text`` asks the same way, then starts
  ``rpa_answer_form``: its one slot, ``rpa_answer``, takes the text of the
  user's next message, and the form's end runs ``action_rpa_answer``.
  The slot never takes status and cancel requests, a button's answer, or
  the plugin's own intents: those keep working while the form waits, and
  each has a rule that goes back to the form afterwards.
  ``validate_rpa_answer_form`` ends the form once its question is closed.
* ``EXTERNAL_rpa_job_question_expired`` says ``utter_rpa_question_expired``.
"""

from __future__ import annotations

from typing import Any

from rasa_rpa.lifecycle import (
    FREE_TEXT_QUESTION_INTENT,
    INTENT_PREFIX,
    QUESTION_EXPIRED_INTENT,
    QUESTION_INTENT,
)
from rasa_rpa.questions import (
    ANSWER_INTENT,
    ANSWER_SLOT,
    ANSWERING_SLOT,
    CHOICE_ENTITY,
    FORM,
    QUESTION_ID_ENTITY,
)
from rasa_rpa.responses import QUESTION_NEWS_TEXTS

__all__ = [
    "ASK_ACTION",
    "QUESTION_ACTIONS",
    "QUESTION_ENTITIES",
    "QUESTION_FORMS",
    "QUESTION_INTENTS",
    "QUESTION_NEWS_RESPONSES",
    "QUESTION_SLOTS",
    "question_rules",
]

ASK_ACTION = "action_rpa_ask"
ANSWER_ACTION = "action_rpa_answer"
VALIDATE_ACTION = f"validate_{FORM}"
QUESTION_ACTIONS = (ASK_ACTION, ANSWER_ACTION, VALIDATE_ACTION)
#: The question intents the plugin sends, and the one a button sends.
QUESTION_INTENTS = (
    QUESTION_INTENT,
    FREE_TEXT_QUESTION_INTENT,
    QUESTION_EXPIRED_INTENT,
    ANSWER_INTENT,
)
#: Sent with the question intents (the job's entities come too), and by buttons.
QUESTION_ENTITIES = ("rpa_question", QUESTION_ID_ENTITY, CHOICE_ENTITY)
#: The rules say it; a missing one breaks training.
QUESTION_NEWS_RESPONSES = dict(QUESTION_NEWS_TEXTS)
QUESTION_FORMS: dict[str, Any] = {FORM: {"required_slots": [ANSWER_SLOT]}}


def question_slots(never_an_answer: list[str]) -> dict[str, dict[str, Any]]:
    """The slots: the question's words and id, the form's answer and target.

    ``never_an_answer``: intents whose message is never taken as the words
    of an answer (they keep their own meaning while the form waits).
    """
    quiet = {"influence_conversation": False}
    return {
        "rpa_question": {
            "type": "text",
            **quiet,
            "mappings": [{"type": "from_entity", "entity": "rpa_question"}],
        },
        QUESTION_ID_ENTITY: {
            "type": "text",
            **quiet,
            "mappings": [{"type": "from_entity", "entity": QUESTION_ID_ENTITY}],
        },
        ANSWER_SLOT: {
            "type": "text",
            **quiet,
            "mappings": [
                {
                    "type": "from_text",
                    "not_intent": never_an_answer,
                    "conditions": [
                        {"active_loop": FORM, "requested_slot": ANSWER_SLOT}
                    ],
                }
            ],
        },
        # Set by action_rpa_ask for a free-text question, never by the user.
        ANSWERING_SLOT: {"type": "text", **quiet, "mappings": [{"type": "custom"}]},
    }


#: The slots, with the intents of any bot (the caller adds its hand-over).
QUESTION_SLOTS = question_slots([])


def _steps(intent: str, *actions: str) -> list[dict[str, Any]]:
    return [{"intent": intent}, *({"action": action} for action in actions)]


def _back_to_form(title: str, intent: str, action: str) -> dict[str, Any]:
    return {
        "rule": f"{title} while a question waits for words",
        "condition": [{"active_loop": FORM}],
        "steps": [*_steps(intent, action, FORM), {"active_loop": FORM}],
    }


def question_rules(news: dict[str, str], status: str, cancel: str) -> list[Any]:
    """The rules for questions; ``news`` maps each news intent to its response.

    ``status`` and ``cancel`` are the actions for ``job_status`` and
    ``cancel_job``, which keep working while the form waits.
    """
    found: list[dict[str, Any]] = [
        {
            "rule": "a robot asks a question",
            "steps": _steps(QUESTION_INTENT, ASK_ACTION),
        },
        {
            "rule": "a robot asks a question that takes words",
            "steps": [
                *_steps(FREE_TEXT_QUESTION_INTENT, ASK_ACTION, FORM),
                {"active_loop": FORM},
            ],
        },
        {
            "rule": "the user answers with a button",
            "steps": _steps(ANSWER_INTENT, ANSWER_ACTION),
        },
        {
            "rule": "a robot's question expired",
            "steps": _steps(QUESTION_EXPIRED_INTENT, "utter_rpa_question_expired"),
        },
        {
            "rule": "the user's words answer the question",
            "condition": [{"active_loop": FORM}],
            "steps": [
                {"action": FORM},
                {"active_loop": None},
                {"slot_was_set": [{"requested_slot": None}]},
                {"action": ANSWER_ACTION},
            ],
        },
    ]
    interruptions = [
        ("status", "job_status", status),
        ("cancel", "cancel_job", cancel),
        ("a button answer", ANSWER_INTENT, ANSWER_ACTION),
        ("another question", QUESTION_INTENT, ASK_ACTION),
        ("another question for words", FREE_TEXT_QUESTION_INTENT, ASK_ACTION),
        ("an expired question", QUESTION_EXPIRED_INTENT, "utter_rpa_question_expired"),
        *(
            (f"robot {intent.removeprefix(INTENT_PREFIX)}", intent, utter)
            for intent, utter in news.items()
        ),
    ]
    found += [_back_to_form(*interruption) for interruption in interruptions]
    return found
