"""A file's link in a real browser: always a download, and a plain page when
the link does not lead to its file. Headless Chromium against a real action
server (no Rasa needed: the link is read from the Rasa stand-in)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError, Page

from rasa_rpa.config import DEFAULT_CONTENT_TYPES
from tests.conftest import TOKEN
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

ACTIVE = b"""<!doctype html><html><head><title>report</title></head><body>
<h1>Orders</h1><script>document.title = "it ran"</script></body></html>"""


@pytest.fixture
def link(action_server, rasa_stand_in):
    """The link a user got for an HTML file a robot sent."""
    target = f"{rasa_stand_in.url}/conversations/automation/trigger?token={TOKEN}"
    server = action_server(
        rasa_url=rasa_stand_in.url,
        files={"content_types": [*DEFAULT_CONTENT_TYPES, "text/html"]},
        providers={"hooked": {"type": "webhook", "url": target}},
        automations={
            "hooked": {"provider": "hooked", "task": "anything", "intent": "hooked"}
        },
    )
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="hooked")
    uploaded = requests.post(
        f"{server.url}/rpa/v1/jobs/{job_id}/files",
        params={"name": "report.html", "title": "report"},
        data=ACTIVE,
        headers={
            "Authorization": f"Bearer {server.keys.mint_token(job_id, sender)}",
            "Content-Type": "text/html",
        },
        timeout=20,
    )
    assert uploaded.status_code == 202, uploaded.text

    def url() -> str | None:
        for call in rasa_stand_in.calls_for(sender):
            if call.body.get("name") == "EXTERNAL_rpa_job_file":
                return str(call.body["entities"]["rpa_file_url"])
        return None

    found = wait_until(url, 20, "the file news reached Rasa")
    assert found is not None
    return found


def test_an_html_file_downloads_and_never_renders(page: Page, link: str):
    page.goto("about:blank")
    with page.expect_download() as started:
        try:
            page.goto(link)
        except PlaywrightError as exc:  # Chromium aborts a navigation that downloads
            assert "Download is starting" in str(exc)
    download = started.value
    assert download.suggested_filename == "report.html"
    assert Path(download.path()).read_bytes() == ACTIVE
    # The page never showed the file, and its script never ran.
    assert page.url == "about:blank"
    assert page.title() == ""


def test_a_tampered_link_shows_a_plain_page(page: Page, link: str):
    response = page.goto(link.replace("signature=", "signature=x"))
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "This download link is not valid"
    assert "exactly as the assistant gave it" in page.locator("p").inner_text()
