"""Robot Framework keywords for robots that talk to a Rasa conversation.

``Library    rasa_rpa_robot.keywords`` gives:

* ``Report Progress    40    Reading orders``
* ``Send Chat Message    Found 3 orders    buttons=...    image=...``
* ``Set Conversation Slot    customer    ACME``
* ``Set Job Output    order_count    3`` (sent when the job succeeds)
* ``${answer}=    Ask User    Which customer?    choices=ACME Corp, ACME Ltd
  timeout=10m`` (``free_text=True`` lets the user type the answer)


* ``Send File    ${report}    title=order report`` (the user gets a download link)

Outside a rasa-rpa job (no ``RASA_RPA_EVENTS_URL``) they only log, so the
same robot runs from a plain ``robot`` command while it is being written;
``Ask User`` then returns its ``default=``, and fails without one.

Needs Robot Framework: ``pip install 'rasa-rpa-robot[robotframework]'``.
"""

from __future__ import annotations

import json
from typing import Any

from robot.api import logger
from robot.utils import timestr_to_secs

from rasa_rpa_robot.client import RobotClient, current_client

__all__ = [
    "ask_user",
    "report_progress",
    "send_chat_message",
    "send_file",
    "set_conversation_slot",
    "set_job_output",
]

ROBOT_LIBRARY_SCOPE = "GLOBAL"


def _client() -> RobotClient | None:
    client = current_client()
    if client is None:
        logger.info("Not running as a rasa-rpa job: nothing is reported.")
    return client


def report_progress(percent: float, message: str = "") -> None:
    """Tell the user how far the job is (0-100) and what it is doing."""
    value = float(percent)
    if not 0 <= value <= 100:
        raise ValueError(f"progress must be between 0 and 100, not {percent}")
    client = _client()
    if client:
        client.send("job.progress", {"progress": value, "message": message or None})


def send_chat_message(text: str, buttons: Any = None, image: str | None = None) -> None:
    """Show ``text`` in the conversation; ``buttons`` is a list or JSON text."""
    data: dict[str, Any] = {"text": text}
    if buttons:
        data["buttons"] = json.loads(buttons) if isinstance(buttons, str) else buttons
    if image:
        data["image"] = image
    client = _client()
    if client:
        client.send("message", data)


def set_conversation_slot(name: str, value: Any) -> None:
    """Set a slot in the conversation that started this job."""
    client = _client()
    if client:
        client.send("slots", {"slots": {name: value}})


def set_job_output(name: str, value: Any) -> None:
    """Record an output; outputs travel with ``job.succeeded`` as entities."""
    client = _client()
    if client:
        client.outputs[name] = value
    else:
        logger.info(f"Job output {name} = {value}")


def ask_user(
    question: str,
    choices: Any = None,
    timeout: str = "10m",
    free_text: bool = False,
    default: str | None = None,
) -> str:
    """Ask the user ``question`` in the chat; return the answer.

    ``choices`` become buttons: a list, comma-separated text
    (``ACME Corp, ACME Ltd``) or JSON (``[{"title": "ACME", "value": "acme"}]``).
    With ``free_text`` the user may also type the answer. Fails with
    ``QuestionExpired`` when nobody answers within ``timeout``.
    """
    client = _client()
    if client is None:
        if default is None:
            raise RuntimeError(
                "Ask User needs a rasa-rpa job: there is nobody to ask "
                "(RASA_RPA_EVENTS_URL is not set); give default= to run without one"
            )
        logger.info(f"Asked {question!r}; answering {default!r} (no rasa-rpa job)")
        return default
    return client.ask(
        question,
        _choices(choices),
        free_text=free_text,
        timeout=timestr_to_secs(timeout),
    )


def _choices(choices: Any) -> list[Any]:
    if not choices:
        return []
    if isinstance(choices, str):
        text = choices.strip()
        if text.startswith("["):
            parsed: list[Any] = json.loads(text)
            return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    return list(choices)


def send_file(
    path: str,
    title: str | None = None,
    name: str | None = None,
    content_type: str | None = None,
) -> None:
    """Send a file to the conversation; the user gets a link to download it.

    ``title`` is how the user reads it ("Download the order report ..."),
    ``name`` the file name they get (the file's own by default),
    ``content_type`` is guessed from the name when not given.
    """
    client = _client()
    if client:
        answer = client.send_file(path, title, name=name, content_type=content_type)
        stored = answer.get("file") or {}
        logger.info(f"Sent {stored.get('name')} ({stored.get('size')} bytes)")
    else:
        logger.info(f"File {path} ({title or 'no title'}) would be sent")
