"""The chat page in headless Chromium: the user sees the robot's news arrive unasked."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

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
    expect(replies.filter(has_text=re.compile(r"is ready: 8 orders"))).to_be_visible(
        timeout=30_000
    )


def test_the_report_link_downloads_the_robots_own_bytes(
    page: Page, chat_page_url, stack: Stack
):
    page.goto(chat_page_url)
    replies = page.locator(".rw-messages-container .rw-response")
    expect(replies.first).to_be_visible(timeout=30_000)
    box = page.locator(".rw-new-message")
    box.fill("get orders for customer ACME")
    box.press("Enter")
    expect(replies.filter(has_text="is ready: 3 orders")).to_be_visible(
        timeout=60_000
    )
    # The widget shows words, not an address, and links them.
    link = replies.locator("a", has_text="Download the order report")
    expect(link).to_have_text(re.compile(r"\(orders-ACME\.xlsx, \d+ KB\)"))
    assert "/rpa/files/" in (link.get_attribute("href") or "")
    # The link opens a new tab, which downloads instead of showing a page.
    with page.expect_download() as started:
        link.click()
    download = started.value
    assert download.suggested_filename == "orders-ACME.xlsx"
    got = Path(download.path()).read_bytes()
    session = page.evaluate("JSON.parse(sessionStorage.getItem('chat_session'))")
    job_id = stack.job_id(session["session_id"])
    written = stack.tmp / ".rasa-rpa" / "runs" / job_id / "orders-ACME.xlsx"
    assert got == written.read_bytes()


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
