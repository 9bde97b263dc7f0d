"""The chat page in headless Chromium: the user sees the robot's news arrive unasked."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright

from devtools.stack import ROOT, Service, free_port, web_service
from tests.e2e.stack import Stack

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium keeps calling home on a closed network.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chat_page_url(stack: Stack, tmp_path_factory) -> Iterator[str]:
    if not (
        ROOT / "web" / "node_modules" / "rasa-webchat" / "lib" / "index.js"
    ).exists():
        raise AssertionError("the widget is not installed: run `make setup`")
    port = free_port()
    web: Service = web_service(port, log=tmp_path_factory.mktemp("web") / "web.log")
    web.start(timeout=30)
    yield f"http://127.0.0.1:{port}/?rasa={stack.rasa_url}"
    web.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context()

        def loopback_only(route: Route) -> None:
            # The widget asks for Google Fonts; this machine has no internet.
            if route.request.url.startswith("http://127.0.0.1"):
                route.continue_()
            else:
                route.abort()

        context.route("**/*", loopback_only)
        yield context.new_page()
        browser.close()


def test_user_sees_started_and_completed_without_asking(page: Page, chat_page_url):
    page.goto(chat_page_url)
    replies = page.locator(".rw-messages-container .rw-response")
    # The page greets on connect (initPayload), which proves the socket works.
    expect(replies.filter(has_text="collect order details")).to_be_visible(
        timeout=30_000
    )
    box = page.locator(".rw-new-message")
    box.fill("get my orders")
    box.press("Enter")
    expect(
        replies.filter(has_text="OK, I started your order details report job")
    ).to_be_visible(timeout=30_000)
    # From here on the user types nothing: the rest is pushed by the robot.
    expect(replies.filter(has_text="robot is now working")).to_be_visible(
        timeout=30_000
    )
    expect(replies.filter(has_text="Progress: 50%")).to_be_visible(timeout=30_000)
    expect(replies.filter(has_text=re.compile(r"is ready: 10 orders"))).to_be_visible(
        timeout=30_000
    )


def test_failure_reason_reaches_the_widget(page: Page, chat_page_url):
    page.goto(chat_page_url)
    replies = page.locator(".rw-messages-container .rw-response")
    expect(replies.first).to_be_visible(timeout=30_000)
    box = page.locator(".rw-new-message")
    box.fill("get orders for customer Nobody Inc")
    box.press("Enter")
    expect(
        replies.filter(has_text="failed: Unknown customer 'Nobody Inc'")
    ).to_be_visible(timeout=30_000)


def test_user_answers_the_robots_question_with_a_button(page: Page, chat_page_url):
    """The robot asks which customer; a click on the answer finishes the report."""
    page.goto(chat_page_url)
    replies = page.locator(".rw-messages-container .rw-response")
    expect(replies.first).to_be_visible(timeout=30_000)
    box = page.locator(".rw-new-message")
    box.fill("get orders for customer Umbrella")
    box.press("Enter")
    expect(replies.filter(has_text="asks: Which customer did you mean?")).to_be_visible(
        timeout=30_000
    )
    answers = page.locator(".rw-reply")
    expect(answers).to_have_count(2)
    answers.filter(has_text="Umbrella Ltd").click()
    expect(replies.filter(has_text="Thanks, I passed your answer on")).to_be_visible(
        timeout=30_000
    )
    expect(replies.filter(has_text="Found 2 orders for Umbrella Ltd")).to_be_visible(
        timeout=30_000
    )
    expect(replies.filter(has_text=re.compile(r"is ready: 2 orders"))).to_be_visible(
        timeout=30_000
    )
