"""Files robots send, over real HTTP: upload, the link the user gets, download.

One action server for the module, with a provider that starts nothing (the
``hooked`` jobs stay pending, no robot runs) and a Rasa stand-in that records
the file news and its link. Each test starts its own jobs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from rasa_rpa.config import DEFAULT_CONTENT_TYPES
from rasa_rpa.testing import RasaStandIn
from rasa_rpa_robot.signing import sign_webhook
from tests.conftest import TOKEN, ActionServer, running_action_server
from tests.rawhttp import post_partly, tree_rss_bytes
from tests.waiting import wait_until

ADMIN = "files-admin-token"
LIMIT = 600 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_INTENT = "EXTERNAL_rpa_job_file"


@pytest.fixture(scope="module")
def rasa() -> Iterator[RasaStandIn]:
    with RasaStandIn(token=TOKEN) as stand_in:
        yield stand_in


def hooked_server(folder: Any, rasa: RasaStandIn, **files: Any) -> Any:
    target = f"{rasa.url}/conversations/automation/trigger?token={TOKEN}"
    return running_action_server(
        folder,
        rasa={"url": rasa.url},
        admin={"token": ADMIN},
        files={"max_bytes": LIMIT, **files},
        providers={"hooked": {"type": "webhook", "url": target}},
        automations={
            "hooked": {
                "provider": "hooked",
                "task": "anything",
                "intent": "hooked",
                "description": "order report",
            }
        },
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory, rasa) -> Iterator[ActionServer]:
    types = [*DEFAULT_CONTENT_TYPES, "text/html"]
    folder = tmp_path_factory.mktemp("files")
    with hooked_server(folder, rasa, content_types=types) as running:
        yield running


class Job:
    """A pending job and what its robot holds: its id, conversation, token."""

    def __init__(self, server: ActionServer) -> None:
        self.server = server
        self.sender = uuid.uuid4().hex
        self.id = server.start_job(self.sender, intent="hooked")
        self.token = server.keys.mint_token(self.id, self.sender)

    @property
    def files_url(self) -> str:
        return f"{self.server.url}/rpa/v1/jobs/{self.id}/files"

    def upload(
        self,
        body: bytes,
        *,
        name: str | None = "orders-ACME.xlsx",
        title: str | None = "order report",
        content_type: str | None = XLSX,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> requests.Response:
        sent = {"Authorization": f"Bearer {token or self.token}"}
        if content_type:
            sent["Content-Type"] = content_type
        params = {k: v for k, v in (("name", name), ("title", title)) if v is not None}
        return requests.post(
            self.files_url,
            params=params,
            data=body,
            headers={**sent, **(headers or {})},
            timeout=20,
        )

    def timeline(self) -> dict[str, Any]:
        response = requests.get(
            f"{self.server.url}/rpa/v1/jobs/{self.id}/events",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=10,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def news(rasa: RasaStandIn, job: Job, count: int = 1) -> list[dict[str, Any]]:
    """The entities of the file news the user got, once ``count`` arrived."""

    def found() -> list[dict[str, Any]]:
        return [
            call.body["entities"]
            for call in rasa.calls_for(job.sender)
            if call.endpoint == "trigger_intent" and call.body["name"] == FILE_INTENT
        ]

    wait_until(lambda: len(found()) >= count, 20, "the file news reached Rasa")
    return found()


def payload(size: int) -> bytes:
    return os.urandom(size)


def test_a_file_reaches_the_user_as_a_link_and_downloads_byte_for_byte(server, rasa):
    job = Job(server)
    body = payload(300 * 1024)  # more than one stored chunk
    answer = job.upload(body)
    assert answer.status_code == 202, answer.text
    stored = answer.json()["file"]
    assert stored["sha256"] == hashlib.sha256(body).hexdigest()
    [entities] = news(rasa, job)
    assert entities["rpa_file_title"] == "order report"
    assert entities["rpa_file_name"] == "orders-ACME.xlsx"
    assert entities["rpa_file_size"] == "300 KB"
    assert entities["rpa_title"] == "order report"
    link = entities["rpa_file_url"]
    assert link.startswith(f"{server.url}/rpa/files/")
    download = requests.get(link, timeout=20)
    assert download.status_code == 200
    assert download.content == body
    assert download.headers["content-type"] == XLSX
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"orders-ACME.xlsx\"; filename*=UTF-8''orders-ACME.xlsx"
    )
    assert download.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in download.headers["content-security-policy"]
    # The operator sees it in the job's timeline, with a working link.
    [listed] = job.timeline()["files"]
    assert listed["name"] == "orders-ACME.xlsx" and listed["size"] == len(body)
    assert requests.get(listed["url"], timeout=20).content == body


def test_a_retried_upload_is_stored_and_told_once(server, rasa):
    job = Job(server)
    body = payload(1000)
    retry = {"Idempotency-Key": "upload-1"}
    first = job.upload(body, headers=retry)
    again = job.upload(body, headers=retry)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["file"]["id"] == first.json()["file"]["id"]
    news(rasa, job)
    wait_until(lambda: not job.timeline()["outbox"]["pending"], 20, "all delivered")
    assert len(news(rasa, job)) == 1
    assert len(job.timeline()["files"]) == 1


def signed(job: Job, body: bytes, secret: str | None = None) -> dict[str, str]:
    upload_id = uuid.uuid4().hex
    stamp = int(time.time())
    key = secret or job.server.keys.signing_secret(job.id)
    return {
        "webhook-id": upload_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_webhook(key, upload_id, stamp, body),
    }


def test_a_signed_upload_is_checked_over_the_whole_body(server, rasa):
    job = Job(server)
    body = payload(400 * 1024)
    headers = signed(job, body)
    bearerless = {"Content-Type": XLSX, **headers}
    url = f"{job.files_url}?name=report.xlsx"
    altered = body[:-1] + bytes([body[-1] ^ 1])
    refused = requests.post(url, data=altered, headers=bearerless, timeout=20)
    assert refused.status_code == 401, refused.text
    assert job.timeline()["files"] == []
    accepted = requests.post(url, data=body, headers=bearerless, timeout=20)
    assert accepted.status_code == 202, accepted.text
    [listed] = job.timeline()["files"]
    assert listed["sha256"] == hashlib.sha256(body).hexdigest()


def test_another_jobs_credentials_open_nothing(server):
    job, other = Job(server), Job(server)
    body = payload(100)
    assert job.upload(body, token=other.token).status_code == 403
    wrong_conversation = server.keys.mint_token(job.id, other.sender)
    assert job.upload(body, token=wrong_conversation).status_code == 403
    headers = {"Content-Type": XLSX, **signed(job, body, other_secret(other))}
    signed_by_other = requests.post(
        f"{job.files_url}?name=a.xlsx", data=body, headers=headers, timeout=20
    )
    assert signed_by_other.status_code == 401
    assert requests.post(f"{job.files_url}?name=a.xlsx", data=body).status_code == 401
    assert job.timeline()["files"] == []


def other_secret(job: Job) -> str:
    return job.server.keys.signing_secret(job.id)


def test_a_type_off_the_allow_list_is_refused_before_the_body(server):
    job = Job(server)
    for content_type in ("application/x-msdownload", None, "not a type"):
        answer = job.upload(payload(100), content_type=content_type)
        assert answer.status_code == 415, (content_type, answer.text)
        assert answer.json()["error"]["code"] == "unsupported_media_type"
    assert job.timeline()["files"] == []


def test_a_file_without_a_name_or_without_bytes_is_refused(server):
    job = Job(server)
    assert job.upload(payload(10), name=None).status_code == 422
    assert job.upload(payload(10), name="../../").status_code == 422
    empty = job.upload(b"")
    assert empty.status_code == 422 and "empty" in empty.text
    assert job.timeline()["files"] == []


def test_an_oversized_upload_is_refused_before_it_is_read(server):
    job = Job(server)
    path = f"/rpa/v1/jobs/{job.id}/files?name=big.xlsx"
    headers = {"Authorization": f"Bearer {job.token}", "Content-Type": XLSX}
    declared = post_partly(
        server.url, path, declared=95_000_000, send=1 << 20, headers=headers
    )
    assert declared.status == 413
    assert declared.json()["error"]["code"] == "too_large"
    assert declared.headers["connection"] == "close"
    assert declared.seconds < 3
    # Chunked, no length said: cut off once it passes the limit (no last
    # chunk is ever sent, so only a server that stops there answers at all).
    chunked = post_partly(
        server.url, path, declared=None, send=4 << 20, headers=headers
    )
    assert chunked.status == 413
    assert chunked.headers["connection"] == "close"
    # Credentials come first: a stranger's big body is refused unread too.
    stranger = post_partly(
        server.url,
        path,
        declared=95_000_000,
        send=1 << 20,
        headers={"Content-Type": XLSX},
    )
    assert stranger.status == 401 and stranger.headers["connection"] == "close"
    assert job.timeline()["files"] == []


def tampered(link: str, **changes: str) -> str:
    parts = urlsplit(link)
    query = {**dict(parse_qsl(parts.query)), **changes}
    return parts._replace(query=urlencode(query)).geturl()


def assert_plain_page(response: requests.Response, status: int, words: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    text = response.text
    assert words in text
    for internal in ("Traceback", "Error", "sanic", "signature", "sqlite"):
        assert internal not in text, internal


def test_a_tampered_link_gets_a_plain_page(server, rasa):
    job = Job(server)
    job.upload(payload(2000))
    link = news(rasa, job)[0]["rpa_file_url"]
    query = dict(parse_qsl(urlsplit(link).query))
    later = str(int(query["expires"]) + 3600)
    for bad in (
        tampered(link, signature=query["signature"][:-2] + "AA"),
        tampered(link, expires=later),
        tampered(link, signature=""),
        link.replace("/files/", "/files/0"),
        link.split("?")[0],
    ):
        assert_plain_page(requests.get(bad, timeout=10), 403, "not valid")


def test_an_expired_link_gets_a_plain_page(tmp_path, rasa):
    with hooked_server(tmp_path, rasa, link_ttl="1s") as short:
        job = Job(short)
        job.upload(payload(2000))
        link = news(rasa, job)[0]["rpa_file_url"]
        expires = int(dict(parse_qsl(urlsplit(link).query))["expires"])
        wait_until(lambda: time.time() > expires + 1, 5, "the link expired")
        assert_plain_page(requests.get(link, timeout=10), 410, "expired")


def test_an_html_file_downloads_and_never_renders(server, rasa):
    job = Job(server)
    page = b"<html><script>document.title = 'ran'</script><h1>hello</h1></html>"
    answer = job.upload(page, name="report.html", content_type="text/html")
    assert answer.status_code == 202
    download = requests.get(news(rasa, job)[0]["rpa_file_url"], timeout=10)
    assert download.content == page
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-security-policy"].startswith("sandbox")


def test_a_file_whose_bytes_changed_is_never_served_whole(server, rasa):
    job = Job(server)
    body = payload(600 * 1024)  # three chunks
    job.upload(body)
    link = news(rasa, job)[0]["rpa_file_url"]
    file_id = urlsplit(link).path.rsplit("/", 1)[1]
    # The disk (or someone) changed a byte of the middle chunk.
    with sqlite3.connect(server.tmp / "jobs.db") as db:
        db.execute(
            "UPDATE file_chunks SET data = ? WHERE file_id = ? AND n = 1",
            (b"\x00" * 256 * 1024, file_id),
        )
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(link, timeout=20).content  # noqa: B018 - read it all
    # A missing first chunk is a plain page, not a trace.
    with sqlite3.connect(server.tmp / "jobs.db") as db:
        db.execute("DELETE FROM file_chunks WHERE file_id = ? AND n = 0", (file_id,))
    assert_plain_page(requests.get(link, timeout=20), 503, "right now")


def test_uploads_and_downloads_hold_a_chunk_not_the_file(tmp_path, rasa):
    size = 24 << 20
    with hooked_server(tmp_path, rasa, max_bytes=size) as big:
        pid = big.service.process.pid
        jobs = [Job(big) for _ in range(4)]
        body = payload(size)
        Job(big).upload(payload(1 << 20))  # warm up: code paths, caches
        before = tree_rss_bytes(pid)
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda job: job.upload(body), jobs))
        assert [a.status_code for a in answers] == [202] * 4
        links = [job.timeline()["files"][0]["url"] for job in jobs]
        with ThreadPoolExecutor(4) as pool:
            downloads = list(
                pool.map(lambda link: requests.get(link, timeout=60).content, links)
            )
        assert all(got == body for got in downloads)
        grown = tree_rss_bytes(pid) - before
        # 4 uploads and 4 downloads of 24 MiB each went through the worker.
        print(f"[figures] files: 4 x 24 MiB up and down, RSS +{grown / 2**20:.1f} MiB")
        assert grown < 24 << 20, f"RSS grew by {grown / 2**20:.1f} MiB"


def test_a_signed_upload_tells_a_stranger_nothing_of_the_job(server):
    job = Job(server)
    ghost = uuid.uuid4().hex
    body = payload(1000)

    def post(job_id: str, secret: str) -> requests.Response:
        headers = {"Content-Type": XLSX, **signed(job, body, secret)}
        url = f"{server.url}/rpa/v1/jobs/{job_id}/files?name=a.xlsx"
        return requests.post(url, data=body, headers=headers, timeout=20)

    stranger = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    existing, missing = post(job.id, stranger), post(ghost, stranger)
    assert existing.status_code == missing.status_code == 401
    assert existing.json() == missing.json()
    # Whoever can sign for a job id learns that it does not exist.
    genuine = post(ghost, server.keys.signing_secret(ghost))
    assert genuine.status_code == 404
    assert job.timeline()["files"] == []
