"""A robot asks the user in the chat and goes on with the answer: real Rasa
3.6.21 with the reference model, the action server, real robots.

The order robot asks which customer when a name fits several ("Umbrella":
Umbrella Corp and Umbrella Ltd). tests/robots/asker.robot asks whatever its
inputs say, for free text, timeouts and restarts.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.e2e.stack import Stack
from tests.waiting import knocks_on, wait_until

pytestmark = pytest.mark.e2e

STARTED = r"OK, I started your order details report job"
QUESTION = r"Your order details report job \(\w{3}-\w{3}\) asks: Which customer"
DONE = r"Your order details report \(\w{3}-\w{3}\) is ready"
THANKS = r"Thanks, I passed your answer on to your"
ASKER_QUESTION = r"Your report naming job \(\w{3}-\w{3}\) asks: "


def button(message: dict[str, Any], title: str) -> str:
    """The payload of the button titled ``title``."""
    found = [b["payload"] for b in message.get("buttons") or [] if b["title"] == title]
    assert found, f"no button {title!r} in {message}"
    return str(found[0])


def question_of(payload: str) -> str:
    """The question id a button's payload names."""
    return str(json.loads(payload[payload.index("{") :])["rpa_question_id"])


def say_hello(stack: Stack, sender: str) -> None:
    """A first message, so Rasa knows the conversation's channel."""
    stack.say(sender, "hi")
    stack.inbox.wait_text(sender, r"I can collect order details")


def greetings(stack: Stack, sender: str) -> int:
    return sum("I can collect order details" in t for t in stack.inbox.texts(sender))


def test_the_order_robot_asks_which_customer_and_a_button_answers(stack: Stack):
    sender = stack.new_sender()
    stack.say(sender, "get orders for customer Umbrella")
    stack.inbox.wait_text(sender, STARTED)
    asked = stack.inbox.wait_message(sender, QUESTION)
    assert [b["title"] for b in asked["buttons"]] == ["Umbrella Corp", "Umbrella Ltd"]
    stack.say(sender, button(asked, "Umbrella Ltd"))
    stack.inbox.wait_text(sender, THANKS)
    stack.inbox.wait_text(sender, r"Progress: 50% - Found 2 orders for Umbrella Ltd")
    done = stack.inbox.wait_text(sender, DONE)
    assert done.endswith("is ready: 2 orders.")
    # A second answer, the other button: the first one stands.
    stack.say(sender, button(asked, "Umbrella Corp"))
    stack.inbox.wait_text(sender, r"already answered, so I kept the first answer")
    texts = stack.inbox.texts(sender)
    assert not any("Umbrella Corp" in t for t in texts if t.startswith("Progress"))
    assert texts.count(done) == 1


def test_an_answer_from_another_conversation_is_refused(stack: Stack):
    victim, intruder = stack.new_sender(), stack.new_sender()
    say_hello(stack, intruder)
    stack.say(victim, "get orders for customer Umbrella")
    asked = stack.inbox.wait_message(victim, QUESTION)
    # The intruder knows the question's id and sends the button's payload.
    stack.say(intruder, button(asked, "Umbrella Corp"))
    stack.inbox.wait_text(intruder, r"I don't know which question that answers")
    # The victim's question is still open: their answer is the one taken.
    stack.say(victim, "what is the status of my job?")
    stack.inbox.wait_text(victim, r"waiting for your answer to: Which customer")
    stack.say(victim, button(asked, "Umbrella Ltd"))
    done = stack.inbox.wait_text(victim, DONE)
    assert done.endswith("is ready: 2 orders.")
    assert not any(THANKS.split(",")[0] in t for t in stack.inbox.texts(intruder))


def test_a_free_text_answer_is_the_users_next_message(stack: Stack):
    sender = stack.new_sender()
    say_hello(stack, sender)
    job_id = stack.start_asker(sender, question="What should the report be called?")
    stack.inbox.wait_text(sender, ASKER_QUESTION + "What should the report be called")
    # Status works while the question waits, and mentions it; the form goes on.
    stack.say(sender, "what is the status of my job?")
    stack.inbox.wait_text(sender, r"waiting for your answer to: What should the report")
    stack.say(sender, "Quarterly review for Globex")
    stack.inbox.wait_text(sender, THANKS)
    stack.inbox.wait_text(sender, r"The robot got your answer: Quarterly review for")
    wait_until(lambda: stack.job(job_id, sender)["state"] == "succeeded", 30, "done")
    outputs = stack.job(job_id, sender)["outputs"]
    assert outputs["answer"] == "Quarterly review for Globex"
    # The question is answered: the next words are the user's own again.
    stack.say(sender, "hi")
    wait_until(lambda: greetings(stack, sender) == 2, 30, "a second greeting")


def test_a_question_nobody_answers_expires(stack: Stack):
    sender = stack.new_sender()
    say_hello(stack, sender)
    job_id = stack.start_asker(
        sender, question="Go on?", choices="Yes, No", free_text="yes", timeout="3s"
    )
    asked = stack.inbox.wait_message(sender, ASKER_QUESTION + "Go on")
    stack.inbox.wait_text(sender, r"Nobody answered in time, so the question from")
    # The robot's wait failed with QuestionExpired, and the robot said why.
    failed = stack.inbox.wait_text(sender, r"report naming job .* failed")
    assert failed.endswith("failed: Nobody answered the question in time")
    assert stack.job(job_id, sender)["state"] == "failed"
    stack.say(sender, button(asked, "Yes"))
    stack.inbox.wait_text(sender, r"that question has expired")
    # The form waiting for words was left: "hi" is a greeting again.
    stack.say(sender, "hi")
    wait_until(lambda: greetings(stack, sender) == 2, 30, "a second greeting")


def test_the_answer_reaches_a_robot_whose_action_server_was_killed(stack: Stack):
    sender = stack.new_sender()
    say_hello(stack, sender)
    job_id = stack.start_asker(
        sender, question="Send it?", choices="Yes, No", free_text="no"
    )
    asked = stack.inbox.wait_message(sender, ASKER_QUESTION + "Send it")
    stack.actions.kill()  # kill -9 while the robot holds its long poll
    # The robot's wait breaks off; it asks again while the server is away.
    assert knocks_on(stack.actions_port, timeout=30), "the robot never asked again"
    stack.actions.start(timeout=60)
    stack.say(sender, button(asked, "Yes"))
    stack.inbox.wait_text(sender, THANKS)
    stack.inbox.wait_text(sender, r"The robot got your answer: Yes", timeout=60)
    wait_until(lambda: stack.job(job_id, sender)["state"] == "succeeded", 30, "done")
    assert stack.job(job_id, sender)["outputs"]["answer"] == "Yes"
    assert re.fullmatch(r"[A-Za-z0-9._~-]+", question_of(button(asked, "Yes")))


def test_cancel_while_a_question_waits_for_words(stack: Stack):
    sender = stack.new_sender()
    say_hello(stack, sender)
    job_id = stack.start_asker(sender, question="Which quarter?")
    stack.inbox.wait_text(sender, ASKER_QUESTION + "Which quarter")
    stack.say(sender, "cancel my job")
    stack.inbox.wait_text(sender, r"OK, I'm stopping your report naming job")
    stack.inbox.wait_text(sender, r"report naming job \(\w{3}-\w{3}\) was cancelled")
    assert stack.job(job_id, sender)["state"] == "cancelled"
    # The form ended with its question: "hi" is a greeting again, not an answer.
    stack.say(sender, "hi")
    wait_until(lambda: greetings(stack, sender) == 2, 30, "a second greeting")
    assert not any("passed your answer" in t for t in stack.inbox.texts(sender))
