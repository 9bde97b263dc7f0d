"""A stock ``rasa init`` bot, ``rasa-rpa init``, training, and a conversation.

What a Rasa developer does to adopt the plugin, with the real Rasa 3.6.21:
Rasa's own starter project, then ``rasa-rpa init`` in it, ``rasa train`` with
the bot's own config, Rasa and ``rasa-rpa run`` started in the bot's folder,
and a user who asks for the example robot in words. Nothing of the bot is
edited by hand except the ports (free ones, for the test).

``rasa init --no-prompt`` would train a model of the stock bot first, which
this test throws away (about 70 s here). Its files come from Rasa's own
scaffold function instead, the one ``rasa init`` calls; only that training
run is skipped.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from devtools.stack import (
    RASA_VENV,
    action_service,
    free_port,
    rasa_python,
    rasa_service,
)
from rasa_rpa.ops.domain_snippet import domain_additions
from tests.e2e.stack import Inbox
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

TOKEN = "e2e-init-rasa-token"
SCAFFOLD = (
    "import sys; from rasa.cli.scaffold import create_initial_project; "
    "create_initial_project(sys.argv[1])"
)


def run(command: list[str], cwd: Path, log: Path, timeout: float) -> str:
    """Run ``command`` to the end; its output, or a failure with the output's tail."""
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
    )
    output = result.stdout + result.stderr
    log.write_text(output)
    assert result.returncode == 0, (
        f"{command[:3]} exited {result.returncode}:\n{output[-3000:]}"
    )
    return result.stdout


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}


def pattern(response: str) -> str:
    """A regex for what ``response`` (as init wrote it) says, any slot values."""
    text = domain_additions()["responses"][response][0]["text"]
    return ".+?".join(re.escape(part) for part in re.split(r"\{\w+\}", text))


class Chat:
    """A user on Rasa's callback channel: what they say, and what the bot keeps."""

    def __init__(self, rasa_url: str, inbox: Inbox, sender: str) -> None:
        self.rasa_url, self.inbox, self.sender = rasa_url, inbox, sender

    def say(self, text: str) -> None:
        response = requests.post(
            f"{self.rasa_url}/webhooks/callback/webhook",
            json={"sender": self.sender, "message": text},
            timeout=60,
        )
        assert response.status_code == 200, response.text

    def wait(self, regex: str, timeout: float = 60) -> str:
        return self.inbox.wait_text(self.sender, regex, timeout)

    def events(self) -> list[dict[str, Any]]:
        response = requests.get(
            f"{self.rasa_url}/conversations/{self.sender}/tracker",
            params={"token": TOKEN},
            timeout=30,
        )
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    def intent_of(self, text: str) -> str:
        """The intent Rasa recognised when the user said ``text``."""
        for event in self.events():
            if event["event"] == "user" and event.get("text") == text:
                return str(event["parse_data"]["intent"]["name"])
        raise AssertionError(f"{text!r} is not in the tracker")

    def answered(self, text: str) -> list[str]:
        """The bot's messages after the user said ``text`` (in the tracker)."""
        events, said = self.events(), []
        start = next(
            i
            for i, e in enumerate(events)
            if e["event"] == "user" and e.get("text") == text
        )
        for event in events[start + 1 :]:
            if event["event"] == "user":
                break
            if event["event"] == "bot":
                said.append(str(event.get("text")))
        return said


@pytest.mark.timeout(900)
def test_stock_bot_with_rasa_rpa_init_runs_the_example_robot(tmp_path: Path) -> None:
    began = time.monotonic()
    bot = tmp_path / "bot"
    bot.mkdir()
    run(
        [str(rasa_python()), "-c", SCAFFOLD, str(bot)],
        bot,
        tmp_path / "scaffold.log",
        120,
    )
    nlu_before = (bot / "data" / "nlu.yml").read_text()

    out = run(
        [sys.executable, "-m", "rasa_rpa.cli", "init", str(bot)],
        bot,
        tmp_path / "init.log",
        60,
    )
    assert re.search(r"domain\.yml\s+added \d+ intents", out), out
    assert "rasa-rpa run" in out and "--enable-api" in out  # the next steps
    assert (bot / "data" / "nlu.yml").read_text() == nlu_before  # the user's own
    again = run(
        [sys.executable, "-m", "rasa_rpa.cli", "init", str(bot)],
        bot,
        tmp_path / "init-again.log",
        60,
    )
    assert "Nothing to change" in again, again

    trained = time.monotonic()
    run(
        [str(RASA_VENV / "bin" / "rasa"), "train", "--fixed-model-name", "bot"],
        bot,
        tmp_path / "train.log",
        600,
    )
    trained = time.monotonic() - trained

    rasa_port, actions_port = free_port(), free_port()
    endpoints = bot / "endpoints.yml"
    # The only hand edit: the free port instead of 5055 (as a user moving it would).
    endpoints.write_text(endpoints.read_text().replace(":5055/", f":{actions_port}/"))
    assert yaml.safe_load(endpoints.read_text())["action_endpoint"]["url"].endswith(
        f":{actions_port}/webhook"
    )
    inbox = Inbox()
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(
        yaml.safe_dump({"rest": None, "callback": {"url": inbox.url}})
    )
    rasa = rasa_service(
        rasa_port,
        token=TOKEN,
        endpoints=endpoints,
        credentials=credentials,
        log=tmp_path / "rasa.log",
        model=bot / "models" / "bot.tar.gz",
        cwd=bot,
    )
    actions = action_service(
        actions_port,
        config=bot / "rpa.yml",
        log=tmp_path / "actions.log",
        cwd=bot,
        # rpa.yml as init wrote it reads these (with defaults for a real run).
        env={
            "RASA_PORT": str(rasa_port),
            "ACTIONS_PORT": str(actions_port),
            "RASA_TOKEN": TOKEN,
            "EXAMPLE_STEP_DELAY": "2s",
        },
    )
    try:
        actions.start(timeout=60)
        rasa.start(timeout=180)
        chat = Chat(f"http://127.0.0.1:{rasa_port}", inbox, "init-user")
        _conversation(chat)
    finally:
        for service in (rasa, actions):
            service.stop()
    total = time.monotonic() - began
    print(f"\ne2e init: rasa train {trained:.0f}s, whole test {total:.0f}s")


def _conversation(chat: Chat) -> None:
    chat.say("run the example robot for Ada")
    assert chat.intent_of("run the example robot for Ada") == "run_example"
    chat.wait(pattern("utter_rpa_job_started"))
    # The robot's own words, pushed to the user as they happen...
    chat.wait(r"Getting ready to greet Ada")
    chat.wait(r"Wrote the greeting: Hello, Ada!")
    done = chat.wait(pattern("utter_rpa_job_succeeded"))
    # ... and kept in the conversation: the news is the bot's, with the output.
    events = chat.events()
    said = [e.get("text") for e in events if e["event"] == "bot"]
    assert done in said
    assert any("Getting ready to greet Ada" in (text or "") for text in said)
    news = [
        e
        for e in events
        if e["event"] == "user"
        and e["parse_data"]["intent"]["name"].startswith("EXTERNAL_rpa_job_")
    ]
    intents = [e["parse_data"]["intent"]["name"] for e in news]
    assert intents[0] == "EXTERNAL_rpa_job_running", intents
    assert intents[-1] == "EXTERNAL_rpa_job_succeeded", intents
    outputs = {
        entity["entity"]: entity["value"]
        for entity in news[-1]["parse_data"]["entities"]
    }
    assert outputs.get("greeting") == "Hello, Ada!", outputs

    for phrasing in ("status", "is my job done?"):
        chat.say(phrasing)
        assert chat.intent_of(phrasing) == "job_status"
        wait_until(
            lambda p=phrasing: chat.answered(p), 30, f"an answer to {phrasing!r}"
        )

    chat.say("start the example robot")
    chat.wait(r"Getting ready to greet World")  # no name given: rpa.yml's default
    chat.say("cancel my job")
    assert chat.intent_of("cancel my job") == "cancel_job"
    chat.wait(pattern("utter_rpa_job_cancelled"))


#: Rasa's warnings that a bot with rasa-rpa has by design: the EXTERNAL_
#: intents come from the plugin, never from users, and the actions (not
#: rules) say the utter_rpa_ responses.
EXPECTED_WARNINGS = (
    # External intents come from the plugin, rpa_answer from answer buttons:
    # no user types them, so they have no NLU examples by design.
    r"The intent '(EXTERNAL_rpa_job_\w+|rpa_answer)' is listed in the domain file, "
    r"but is not "
    r"found in the NLU training data",
    r"The utterance 'utter_rpa_\w+' is not used in any story or rule",
)


@pytest.mark.timeout(300)
def test_the_starter_bot_passes_rasas_own_validation(tmp_path: Path) -> None:
    bot = tmp_path / "starter"
    command = [sys.executable, "-m", "rasa_rpa.cli", "init", str(bot)]
    run(command, tmp_path, tmp_path / "init.log", 60)
    rasa = str(RASA_VENV / "bin" / "rasa")
    run([rasa, "data", "validate"], bot, tmp_path / "validate.log", 240)
    log = (tmp_path / "validate.log").read_text()
    assert "No story structure conflicts found" in log
    warnings = re.findall(r"UserWarning: (.+)", log)
    unexpected = [
        w for w in warnings if not any(re.match(p, w) for p in EXPECTED_WARNINGS)
    ]
    assert not unexpected, unexpected
