"""The chat page in headless Chromium: the user sees the robot's news arrive unasked.

Every request the page makes is recorded, and each test fails if one left
127.0.0.1: the page works on a machine without internet.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Locator,
    Page,
    Route,
    WebSocket,
    expect,
    sync_playwright,
)

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
#: What web/index.html loads: the widget as web/build-widget.mjs writes it.
WIDGET = ROOT / "web" / "build" / "rasa-webchat.js"
LOOPBACK = ("http://127.0.0.1:", "ws://127.0.0.1:")
WAIT = 30_000  # ms: Rasa answers, robots run

# Keeps every socket.io message in window.arrivals the moment the browser
# receives it, before the widget sees it (it sets its own onmessage later).
RECORD_ARRIVALS = """
(() => {
  const Native = window.WebSocket;
  window.arrivals = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        window.arrivals.push(String(event.data));
      });
    }
  };
})();
"""
# The texts of the bot messages (socket.io's 42["bot_uttered", {...}]) that arrived.
BOT_ARRIVALS = """
() => window.arrivals
  .filter((data) => data.startsWith('42["bot_uttered"'))
  .map((data) => JSON.parse(data.slice(2))[1].text)
"""

# Resolves once the fonts the page uses are loaded: is bold Inter among them?
INTER_BOLD_LOADED = """
async () => {
  await document.fonts.ready;
  return [...document.fonts].some(
    (face) => face.family.replace(/["']/g, "") === "Inter"
      && face.weight === "700" && face.status === "loaded"
  );
}
"""


def bot_messages(page: Page) -> Locator:
    """The bot's messages on the page, in order."""
    return page.locator(".rw-messages-container .rw-response")


def say(page: Page, text: str) -> None:
    box = page.locator(".rw-new-message")
    box.fill(text)
    box.press("Enter")


@pytest.fixture(scope="module")
def chat_page_url(stack: Stack, tmp_path_factory) -> Iterator[str]:
    if not WIDGET.exists():
        raise AssertionError(f"{WIDGET} is missing: run `make setup`")
    port = free_port()
    web: Service = web_service(port, log=tmp_path_factory.mktemp("web") / "web.log")
    web.start(timeout=30)
    yield f"http://127.0.0.1:{port}/?rasa={stack.rasa_url}"
    web.stop()


@pytest.fixture
def requests_made() -> list[str]:
    """Every URL the page asked for, web sockets included, in order."""
    return []


@pytest.fixture
def page(requests_made: list[str]) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context()

        def loopback_only(route: Route) -> None:
            # Recorded by the listeners below; aborted so that a page that
            # does reach out fails at once instead of waiting on a closed network.
            if route.request.url.startswith(LOOPBACK):
                route.continue_()
            else:
                route.abort()

        def websocket(socket: WebSocket) -> None:
            requests_made.append(socket.url)

        context.on("request", lambda request: requests_made.append(request.url))
        context.on("page", lambda page: page.on("websocket", websocket))
        context.route("**/*", loopback_only)
        context.add_init_script(RECORD_ARRIVALS)
        yield context.new_page()
        browser.close()
    outside = [url for url in requests_made if not url.startswith(LOOPBACK)]
    assert not outside, f"the chat page reached outside the machine: {outside}"


def test_page_is_self_contained_and_shows_its_title(
    page: Page, chat_page_url, requests_made
):
    page.goto(chat_page_url)
    expect(bot_messages(page).first).to_be_visible(timeout=WAIT)
    # The configured title and subtitle, which the embedded widget hides by default.
    title = page.locator(".rw-header .rw-title")
    expect(title).to_have_text("Order robot")
    expect(title).to_be_visible()
    expect(page.locator(".rw-header")).to_contain_text("rasa-rpa reference bot")
    # The widget's font is there (the title is bold), and came from this server.
    assert page.evaluate(INTER_BOLD_LOADED), "Inter 700 is not loaded"
    fonts = [url for url in requests_made if url.endswith(".woff2")]
    assert fonts, requests_made
    assert all("/node_modules/@fontsource/inter/" in url for url in fonts), fonts
    assert any(url.startswith("ws://127.0.0.1:") for url in requests_made)


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


def test_pushed_news_is_shown_as_it_arrives(page: Page, chat_page_url):
    """No bot message waits on a timer: with the page's clock stopped, each shows.

    rasa-webchat holds every bot message back 0.8 to 3 s by default, one after
    the other, so a 3-second job looked like a 10-second one. The page's clock
    is stopped once the job started; the robot's news still reaches the
    socket, and moving the clock by one millisecond must put each on screen.
    """
    page.clock.install()
    page.goto(chat_page_url)
    expect(bot_messages(page).first).to_be_visible(timeout=WAIT)
    say(page, "get my orders")
    expect(bot_messages(page).filter(has_text="OK, I started")).to_be_visible(
        timeout=WAIT
    )
    # pause_at takes seconds; a time in the page's past would be refused.
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.1)

    # Running, halfway, and the result (": 10 orders", however the domain words it).
    for news in ("robot is now working", "Progress: 50%", ": 10 orders"):
        page.wait_for_function(
            "news => window.arrivals.some((data) => data.includes(news))",
            arg=news,
            polling=100,
            timeout=WAIT,
        )
        # The clock stays stopped: only a message that waits on no timer shows.
        # A few page milliseconds: messages arriving together (the report's
        # link, then the result) are shown one zero-delay tick after another.
        shown = bot_messages(page).filter(has_text=news)
        for _ in range(10):
            page.clock.run_for(1)  # ms
            if shown.count():
                break
        expect(shown).to_have_count(1)

    # Every message that arrived is on screen, in the order it arrived (the
    # socket's first messages may have come before its upgrade to a web socket).
    arrived = page.evaluate(BOT_ARRIVALS)
    assert len(arrived) >= 3, arrived  # running, progress, done at least
    shown = [text.strip() for text in bot_messages(page).all_inner_texts()]
    # A link arrives as markdown and shows as its text.
    arrived = [re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text) for text in arrived]
    assert shown[-len(arrived) :] == arrived


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
