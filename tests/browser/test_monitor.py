"""The operator monitor in headless Chromium, against real jobs on a real server.

The page is self-contained: every request outside 127.0.0.1 is blocked and
recorded, and the test fails if the page tried one, or if its
Content-Security-Policy blocked any of its own script or style.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import ConsoleMessage, Page, Route, expect, sync_playwright

from tests.browser.test_widget import CHROMIUM, FLAGS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

ADMIN = "monitor-admin-token"
LOCKED = "Invoice INV-7 is locked by another user"
TOKEN_KEY = "rasa-rpa.admin-token"
WAIT = 10_000  # ms, for what only the page's 5 s auto-refresh brings


@dataclass
class Browser:
    page: Page
    blocked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def open(self, url: str) -> None:
        self.page.goto(f"{url}/rpa/ui")

    def sign_in(self, token: str) -> None:
        self.page.get_by_label("Admin token").fill(token)
        self.page.get_by_test_id("sign-in").click()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = chromium.new_context()
        context.set_default_timeout(WAIT)
        page = context.new_page()
        result = Browser(page)

        def loopback_only(route: Route) -> None:
            if route.request.url.startswith("http://127.0.0.1"):
                route.continue_()
            else:
                result.blocked.append(route.request.url)
                route.abort()

        def console(message: ConsoleMessage) -> None:
            if "Content Security Policy" in message.text:
                result.problems.append(message.text)

        context.route("**/*", loopback_only)
        page.on("console", console)
        page.on("pageerror", lambda error: result.problems.append(str(error)))
        yield result
        chromium.close()
    assert result.blocked == [], "the page tried to leave 127.0.0.1"
    assert result.problems == []


def start_jobs(server) -> dict[str, str]:
    """One succeeded and two failed jobs, as Rasa would start them."""
    sender = uuid.uuid4().hex
    ok = server.start_job(sender, intent="chat")
    bad = server.start_job(
        sender, intent="chat", entities=[{"entity": "fail", "value": "yes"}]
    )
    missing = server.start_job(uuid.uuid4().hex, intent="missing")
    server.wait_job(ok, sender, "succeeded")
    assert server.wait_job(bad, sender, "failed")["error"] == LOCKED
    return {"ok": ok, "bad": bad, "missing": missing}


def test_operator_sees_jobs_timelines_failures_and_figures(
    action_server, rasa_stand_in, browser
):
    server = action_server(rasa_url=rasa_stand_in.url, admin={"token": ADMIN})
    ids = start_jobs(server)
    page = browser.page
    browser.open(server.url)

    # A wrong token is refused with a message that says what to do.
    browser.sign_in("not-the-token")
    alert = page.get_by_test_id("auth-error")
    expect(alert).to_contain_text("Wrong admin token")
    expect(alert).to_contain_text("admin.token")
    expect(page.get_by_test_id("dashboard")).to_be_hidden()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None

    browser.sign_in(ADMIN)
    rows = page.get_by_test_id("job-row")
    expect(rows).to_have_count(3)
    expect(alert).to_be_hidden()
    # Kept for this tab only, and not left in the form.
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == ADMIN
    assert page.evaluate("localStorage.length") == 0
    assert page.get_by_label("Admin token").input_value() == ""

    page.get_by_test_id("filter-state").select_option("failed")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=LOCKED)).to_have_count(1)
    page.get_by_test_id("filter-state").select_option("")
    page.get_by_test_id("filter-automation").select_option("missing")
    expect(rows).to_have_count(1)
    page.get_by_test_id("filter-automation").select_option("")
    page.get_by_test_id("filter-conversation").fill("no-such-conversation")
    expect(rows).to_have_count(0)
    page.get_by_test_id("filter-conversation").fill("")
    expect(rows).to_have_count(3)

    # The chatty job's timeline, and what was delivered to Rasa.
    page.locator(f'[data-testid=job-row][data-job-id="{ids["ok"]}"]').click()
    detail = page.get_by_test_id("job-detail")
    expect(detail).to_be_visible()
    expect(detail.get_by_role("heading", level=2)).to_contain_text(ids["ok"])
    events = detail.get_by_test_id("event-row")
    for kind in ("job.started", "message", "slots", "job.progress", "job.succeeded"):
        expect(events.and_(page.locator(f'[data-type="{kind}"]')).first).to_be_visible()
    expect(events.first).to_have_attribute("data-type", "job.started")
    expect(events.last).to_have_attribute("data-type", "job.succeeded")
    # The exit code's duplicate may land after the page opened: a refresh shows it.
    expect(events.last).to_contain_text("no (ignored)", timeout=WAIT)
    expect(detail).to_contain_text("Looking at 2 invoices")
    delivered = detail.locator('[data-testid=outbox-row][data-status="delivered"]')
    expect(delivered.first).to_be_visible()
    expect(delivered.filter(has_text="EXTERNAL_rpa_job_succeeded")).to_have_count(1)
    expect(detail.get_by_test_id("replay-button")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()

    reasons = page.get_by_test_id("failure-reason")
    expect(reasons.filter(has_text=LOCKED)).to_contain_text("1\u00d7")  # 1 times
    expect(reasons.filter(has_text=LOCKED)).to_contain_text("chatty")
    expect(reasons).to_have_count(2)  # INV-7, and the robot that does not exist

    chart = page.get_by_test_id("state-chart")
    succeeded = chart.locator('rect[data-state="succeeded"]')
    failed = chart.locator('rect[data-state="failed"]')
    expect(succeeded).to_have_attribute("data-count", "1")
    expect(failed).to_have_attribute("data-count", "2")
    assert int(failed.get_attribute("width") or 0) > int(
        succeeded.get_attribute("width") or 0
    )
    assert int(succeeded.get_attribute("width") or 0) > 0
    expect(chart.locator('rect[data-state="running"]')).to_have_attribute("width", "0")

    chatty = page.locator('[data-testid=percentile-row][data-automation="chatty"]')
    expect(chatty).to_be_visible()
    expect(chatty.locator("td").nth(0)).to_have_text("2")  # jobs
    expect(chatty.locator("td").nth(1)).to_have_text("2")  # finished
    expect(chatty.locator('[data-p="p50"]')).to_have_text(re.compile(r"^\d+\.\d+$"))

    # Auto-refresh: a new job shows up without any click.
    server.start_job(uuid.uuid4().hex, intent="missing")
    expect(rows).to_have_count(4, timeout=WAIT)
    expect(failed).to_have_attribute("data-count", "3", timeout=WAIT)

    # Signed in for the tab's life (a reload keeps it), out on request.
    page.reload()
    expect(rows).to_have_count(4)
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None


def test_admin_api_off_says_how_to_turn_it_on(action_server, browser):
    server = action_server()
    browser.open(server.url)
    browser.sign_in("anything")
    alert = browser.page.get_by_test_id("auth-error")
    expect(alert).to_contain_text("admin API is off")
    expect(alert).to_contain_text("set admin.token")
    expect(browser.page.get_by_test_id("dashboard")).to_be_hidden()


def test_dead_message_is_replayed_from_the_timeline(
    action_server, rasa_stand_in, browser
):
    # Rasa refuses intents missing from its domain for good: set aside as dead.
    rasa_stand_in.known_intents = {"EXTERNAL_rpa_job_running"}
    server = action_server(rasa_url=rasa_stand_in.url, admin={"token": ADMIN})
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="chat")
    server.wait_job(job_id, sender, "succeeded")
    page = browser.page
    browser.open(server.url)
    browser.sign_in(ADMIN)
    page.locator(f'[data-testid=job-row][data-job-id="{job_id}"]').click()
    detail = page.get_by_test_id("job-detail")
    dead = detail.locator('[data-testid=outbox-row][data-status="dead"]')
    expect(dead.first).to_be_visible()
    expect(dead.first).to_contain_text("does not exist in the domain")
    seq = dead.first.get_attribute("data-seq")
    with page.expect_response(lambda r: r.url.endswith(f"/outbox/{seq}/replay")) as r:
        dead.first.get_by_role("button", name=f"Replay message {seq}").click()
    assert r.value.status == 202
    expect(page.get_by_test_id("replay-status")).to_contain_text(
        f"Message {seq} is queued for delivery again"
    )


def test_a_question_and_its_answers_are_on_the_timeline(
    action_server, rasa_stand_in, browser
):
    server = action_server(rasa_url=rasa_stand_in.url, admin={"token": ADMIN})
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="wait")
    server.wait_job(job_id, sender, "running")
    question = {
        "id": "customer",
        "type": "question",
        "data": {"text": "Which customer did you mean?", "choices": ["Corp", "Ltd"]},
    }
    token = server.keys.mint_token(job_id, sender)
    assert server.send_with_token(job_id, question, token).status_code == 202
    for choice in ("Ltd", "Corp"):  # the first answer wins; the second is ignored
        server.run_action(
            "action_rpa_answer",
            sender,
            intent="rpa_answer",
            entities=[
                {"entity": "rpa_question_id", "value": "customer"},
                {"entity": "rpa_choice", "value": choice},
            ],
        )
    page = browser.page
    browser.open(server.url)
    browser.sign_in(ADMIN)
    page.locator(f'[data-testid=job-row][data-job-id="{job_id}"]').click()
    events = page.get_by_test_id("job-detail").get_by_test_id("event-row")
    asked = events.and_(page.locator('[data-type="question"]'))
    expect(asked).to_contain_text("Which customer did you mean?")
    answers = events.and_(page.locator('[data-type="answer"]'))
    expect(answers).to_have_count(2)
    expect(answers.first).to_contain_text('"answer":"Ltd"')
    expect(answers.first).to_have_attribute("data-applied", "true")
    expect(answers.last).to_have_attribute("data-applied", "false")
    server.run_action("action_cancel_rpa_job", sender)


def test_the_timeline_lists_the_files_a_job_sent(action_server, rasa_stand_in, browser):
    server = action_server(rasa_url=rasa_stand_in.url, admin={"token": ADMIN})
    sender = uuid.uuid4().hex
    job_id = server.start_job(
        sender, entities=[{"entity": "customer", "value": "ACME"}]
    )
    server.wait_job(job_id, sender, "succeeded")
    page = browser.page
    browser.open(server.url)
    browser.sign_in(ADMIN)
    page.locator(f'[data-testid=job-row][data-job-id="{job_id}"]').click()
    detail = page.get_by_test_id("job-detail")
    rows = detail.get_by_test_id("file-row")
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_contain_text("order report")
    expect(row).to_contain_text("spreadsheetml")
    expect(detail.get_by_test_id("files-summary")).to_contain_text("1 file(s)")
    events = detail.get_by_test_id("event-row")
    expect(events.and_(page.locator('[data-type="file"]'))).to_have_count(1)
    with page.expect_download() as started:
        row.get_by_role("link", name="orders-ACME.xlsx").click()
    assert started.value.suggested_filename == "orders-ACME.xlsx"
