"""The robot side: report a job's progress to the bot over the callback API.

Synchronous on purpose (``requests``, this distribution's one dependency):
robots are scripts. Every event gets a
unique id once and keeps it across retries, so a retry after a lost answer is
acknowledged without being shown twice. While the action server is down or
answers 5xx/503, the client retries with backoff for ``retry_for`` seconds.

A robot started by rasa-rpa finds its coordinates in the environment::

    client = RobotClient.from_env()
    client.send("job.progress", {"progress": 40, "message": "Reading orders"})
    customer = client.ask("Which customer?", ["ACME Corp", "ACME Ltd"], timeout=600)
    client.send_file("out/orders-ACME.xlsx", title="order report")

Any other robot can be handed ``events_url`` and a token (or a signing
secret) as job inputs and build the client itself.
"""

from __future__ import annotations

import json
import mimetypes
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from rasa_rpa_robot.signing import sign_pieces, signature_headers

__all__ = [
    "ENV_EVENTS_URL",
    "ENV_JOB_ID",
    "ENV_SIGNING_SECRET",
    "ENV_TOKEN",
    "CallbackRefused",
    "QuestionExpired",
    "RobotClient",
    "current_client",
]

ENV_EVENTS_URL = "RASA_RPA_EVENTS_URL"
ENV_JOB_ID = "RASA_RPA_JOB_ID"
ENV_SIGNING_SECRET = "RASA_RPA_SIGNING_SECRET"
ENV_TOKEN = "RASA_RPA_TOKEN"
#: How long a robot keeps retrying a callback the server cannot take (seconds).
ENV_RETRY_FOR = "RASA_RPA_RETRY_FOR"
#: Pieces a file is read (and signed) in: it is never held whole in memory.
_PIECE = 256 * 1024
_OOXML = "application/vnd.openxmlformats-officedocument."
#: Types Python's own table may lack where no /etc/mime.types is installed.
_TYPES = {
    ".xlsx": _OOXML + "spreadsheetml.sheet",
    ".docx": _OOXML + "wordprocessingml.document",
    ".pptx": _OOXML + "presentationml.presentation",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".csv": "text/csv",
    ".json": "application/json",
}


class CallbackRefused(Exception):
    """The bot refused the event (4xx): retrying would not help."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body
        super().__init__(f"callback refused with HTTP {status}: {body[:300]}")


class QuestionExpired(Exception):
    """Nobody answered the question in time (or its job ended first).

    A robot catches it to go on without the answer, or to fail with words
    the user reads (Robot Framework: ``EXCEPT    QuestionExpired*    type=glob``).
    """

    def __init__(self, question_id: str, status: str) -> None:
        self.question_id = question_id
        self.status = status
        why = "its job ended" if status == "closed" else "its timeout passed"
        super().__init__(f"nobody answered question {question_id!r}: {why}")


class RobotClient:
    """Sends events for one job."""

    def __init__(
        self,
        events_url: str,
        *,
        signing_secret: str | None = None,
        token: str | None = None,
        retry_for: float = 300.0,
        timeout: float = 10.0,
    ) -> None:
        if not (signing_secret or token):
            raise ValueError("a signing secret or a token is required")
        self.events_url = events_url
        self._secret = signing_secret
        self._token = token
        self.retry_for = retry_for
        self.timeout = timeout
        self._session = requests.Session()
        #: Outputs collected by ``Set Job Output``, sent with job.succeeded.
        self.outputs: dict[str, Any] = {}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RobotClient | None:
        """The client for the job this process runs, or None outside rasa-rpa."""
        env = os.environ if environ is None else environ
        url = env.get(ENV_EVENTS_URL)
        if not url:
            return None
        return cls(
            url,
            signing_secret=env.get(ENV_SIGNING_SECRET) or None,
            token=env.get(ENV_TOKEN) or None,
            retry_for=float(env.get(ENV_RETRY_FOR, "300")),
        )

    def send(
        self,
        event_type: str,
        data: dict[str, Any] | None = None,
        *,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """Send one event; return the server's answer. Retries until accepted.

        Raises:
            ValueError: ``data`` holds NaN or Infinity (nothing is sent).
            CallbackRefused: the server refused the event (4xx).
            ConnectionError: the server could not take it within ``retry_for``.
        """
        event_id = event_id or uuid.uuid4().hex
        try:
            # allow_nan=False: json.dumps would write NaN/Infinity, which are
            # not JSON; the server refuses them (422), so fail here, clearly.
            body = json.dumps(
                {"id": event_id, "type": event_type, "data": data or {}},
                separators=(",", ":"),
                default=str,
                allow_nan=False,
            ).encode()
        except ValueError:
            raise ValueError(
                f"cannot send {event_type}: its data holds NaN or Infinity, which "
                "JSON does not allow; send null or a string instead"
            ) from None
        return self._retrying(
            event_type,
            self.events_url,
            lambda: self._session.post(
                self.events_url,
                data=body,
                headers=self._headers(event_id, body),
                timeout=self.timeout,
            ),
        )

    @property
    def files_url(self) -> str:
        """Where this job's files go: beside its events URL."""
        base, found, _ = self.events_url.rstrip("/").rpartition("/events")
        return f"{base}/files" if found else f"{self.events_url.rstrip('/')}/files"

    def send_file(
        self,
        path: str | os.PathLike[str],
        title: str | None = None,
        *,
        name: str | None = None,
        content_type: str | None = None,
        upload_id: str | None = None,
    ) -> dict[str, Any]:
        """Send a file to the conversation: the user gets a link to download it.

        ``title`` is what the user reads it as ("Download the order report");
        ``name`` the file name they get (the file's own by default);
        ``content_type`` is guessed from the name when not given. The file
        is streamed, never read whole; a retry after a lost answer is not
        stored twice (``upload_id`` stays the same). Returns the server's
        answer (``file``: id, name, size, sha256).

        Raises:
            CallbackRefused: the server refused it (413 too large, 415 a type
                it does not take, 401/403 credentials).
            ConnectionError: the server could not take it within ``retry_for``.
            OSError: the file cannot be read.
        """
        file = Path(path)
        name = name or file.name
        kind = content_type or _guess_type(name)
        upload_id = upload_id or uuid.uuid4().hex
        params = {"name": name, **({"title": title} if title else {})}
        size = file.stat().st_size

        def attempt() -> requests.Response:
            headers = {
                "Content-Type": kind,
                "Content-Length": str(size),
                "Idempotency-Key": upload_id,
            }
            if self._token:
                # A token is checked before the body is read: preferred for files.
                headers["Authorization"] = f"Bearer {self._token}"
            else:
                assert self._secret is not None
                stamp = int(time.time())
                headers["webhook-id"] = upload_id
                headers["webhook-timestamp"] = str(stamp)
                headers["webhook-signature"] = sign_pieces(
                    self._secret, upload_id, stamp, _pieces(file)
                )
            with file.open("rb") as body:
                return self._session.post(
                    self.files_url,
                    params=params,
                    data=body,
                    headers=headers,
                    timeout=self.timeout,
                )

        return self._retrying(f"file {name}", self.files_url, attempt)

    def _retrying(
        self, what: str, url: str, attempt: Callable[[], requests.Response]
    ) -> dict[str, Any]:
        """``attempt()`` until the server takes it: retried with backoff while
        the server is away or answers 5xx or 429, for ``retry_for`` seconds."""
        deadline = time.monotonic() + self.retry_for
        delay = 0.25
        while True:
            try:
                response = attempt()
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code < 300:
                    answer: dict[str, Any] = response.json()
                    return answer
                if response.status_code < 500 and response.status_code != 429:
                    raise CallbackRefused(response.status_code, response.text)
                problem = f"HTTP {response.status_code}"
            if time.monotonic() + delay > deadline:
                raise ConnectionError(f"could not deliver {what} to {url}: {problem}")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def ask(
        self,
        text: str,
        choices: list[Any] | None = None,
        *,
        free_text: bool = False,
        timeout: float = 600.0,
        question_id: str | None = None,
        poll: float = 30.0,
    ) -> str:
        """Ask the user ``text`` in the chat and wait for the answer.

        ``choices`` are buttons: strings, or ``{"title", "value"}`` (the value
        is what comes back). With ``free_text`` the user may also type the
        answer. Blocks until the answer arrives, long-polling ``poll``
        seconds at a time, and rides out the action server restarting.

        Raises:
            QuestionExpired: nobody answered within ``timeout`` seconds, or
                the job ended first.
            CallbackRefused: the server refused the question (4xx).
            ConnectionError: the server stayed unreachable.
        """
        question_id = question_id or uuid.uuid4().hex
        data = {
            "text": text,
            "choices": list(choices or []),
            "free_text": free_text,
            "timeout": timeout,
        }
        self.send("question", data, event_id=question_id)
        return self.answer_to(question_id, timeout=timeout, poll=poll)

    def answer_to(self, question_id: str, *, timeout: float, poll: float = 30.0) -> str:
        """The answer to a question this job asked (see :meth:`ask`).

        Safe to call again (after a restart, say): the answer stays the same.
        """
        url = self.question_url(question_id)
        give_up = time.monotonic() + timeout + self.retry_for
        delay = 0.25
        while True:
            try:
                response = self._session.get(
                    url,
                    params={"wait": f"{poll:g}s"},
                    headers=self._headers(uuid.uuid4().hex, b""),
                    timeout=poll + self.timeout,
                )
            except requests.RequestException as exc:
                problem = type(exc).__name__
            else:
                status = response.status_code
                if status == 200:
                    body: dict[str, Any] = response.json()
                    if body["status"] == "answered":
                        return str(body["answer"])
                    if body["status"] != "open":
                        raise QuestionExpired(question_id, body["status"])
                    delay = 0.25
                    continue  # still open: wait again at once
                if status < 500 and status != 429:
                    raise CallbackRefused(status, response.text)
                problem = f"HTTP {status}"
            if time.monotonic() + delay > give_up:
                raise ConnectionError(
                    f"could not get the answer to question {question_id!r} from "
                    f"{url}: {problem}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def question_url(self, question_id: str) -> str:
        """Where a question of this job is read: beside its events."""
        base, _, last = self.events_url.rstrip("/").rpartition("/")
        if last != "events":
            raise ValueError(
                f"cannot tell where questions are from {self.events_url}: "
                "expected .../jobs/<job_id>/events"
            )
        return f"{base}/questions/{question_id}"

    def _headers(self, event_id: str, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._secret:
            # Signed afresh on each attempt: the timestamp must be current.
            headers.update(signature_headers(self._secret, event_id, body))
        else:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()


_current: list[RobotClient | None] = []


def current_client() -> RobotClient | None:
    """The process-wide client the listener and the keywords share."""
    if not _current:
        _current.append(RobotClient.from_env())
    return _current[0]


def _guess_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name)
    suffix = Path(name).suffix.lower()
    return guessed or _TYPES.get(suffix) or "application/octet-stream"


def _pieces(file: Path) -> Iterator[bytes]:
    with file.open("rb") as body:
        while piece := body.read(_PIECE):
            yield piece
