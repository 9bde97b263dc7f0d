"""Files: robots upload them for their job, users download them by link.

* ``POST /rpa/v1/jobs/{job_id}/files?name=&title=``: the raw file as the
  body, its media type as ``Content-Type``, with the job's credentials. 202
  when stored (the user is told), 200 when this upload id was stored before.
* ``GET /rpa/files/{file_id}?expires=&signature=``: the link the user got.

An upload is checked before a byte of its body is read: the bearer token
and the rate limit, the declared size against ``files.max_bytes``, the media
type against ``files.content_types``, the name, and the job. The body is
then read in pieces, each stored as it comes (:mod:`rasa_rpa.attachments`).
A signed upload's headers and timestamp are checked first too, but its
signature covers the body: it is checked (and the rate limit charged) once
the body is in, before the file counts as stored, and before any answer
that would tell a stranger about the job (404, a duplicate, expired
credentials).

A download answers with the file as an attachment, never as a page; a link
that is expired, tampered with or leads to a pruned file gets a short page
in plain words (HTML, since a person's browser opened it), never a trace.
"""

from __future__ import annotations

import html
import logging
import time
import uuid
from collections.abc import AsyncIterator

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, html as html_response

from rasa_rpa.attachments import Received
from rasa_rpa.errors import AuthenticationFailed, JobNotFound, StoreError
from rasa_rpa.files import (
    DOWNLOAD_HEADERS,
    LinkRefused,
    content_disposition,
    served_type,
)
from rasa_rpa.http.common import (
    authenticate,
    check_rate,
    credential_guard,
    install_error_handlers,
    json,
    load_job,
    runtime_of,
)
from rasa_rpa.http.limits import refuse_unread, stream_body, too_large
from rasa_rpa.runtime import Runtime
from rasa_rpa_robot.signing import SignatureError, SignedBody

__all__ = ["files_blueprint"]

log = logging.getLogger(__name__)
files_blueprint = Blueprint("rasa_rpa_files", url_prefix="/rpa")

#: What a person reads when a link does not lead to its file: (status, title, text).
_PAGES = {
    "tampered": (
        403,
        "This download link is not valid",
        "It may have been cut short when it was copied. Open it from the "
        "chat again, exactly as the assistant gave it.",
    ),
    "expired": (
        410,
        "This download link has expired",
        "Download links work for a limited time. Ask the assistant in the chat "
        "to run the task again for a new one.",
    ),
    "gone": (
        404,
        "This file is no longer available",
        "Files are kept for a limited time, and this one has been removed. "
        "Ask the assistant in the chat to run the task again.",
    ),
    "unavailable": (
        503,
        "The file cannot be fetched right now",
        "Please try again in a few minutes.",
    ),
}


@files_blueprint.post("/v1/jobs/<job_id:str>/files", stream=True, ctx_own_body=True)
async def upload_file(request: Request, job_id: str) -> HTTPResponse:
    """Store a file for ``job_id`` and send its user a link to it."""
    runtime = runtime_of(request)
    try:
        return await _upload(runtime, request, job_id)
    except BaseException:
        # Refused before or while reading: never read (or drain) the rest.
        refuse_unread(request)
        raise


async def _upload(runtime: Runtime, request: Request, job_id: str) -> HTTPResponse:
    settings = runtime.config.files
    headers = request.headers
    signed: SignedBody | None = None
    claims = None
    if "webhook-signature" in headers:
        signed = _signature(runtime, request, job_id)
    else:
        claims = authenticate(runtime, request, job_id)
        check_rate(runtime, job_id)
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_bytes:
        raise too_large(settings.max_bytes)
    upload_id = (
        headers.get("webhook-id") or headers.get("idempotency-key") or uuid.uuid4().hex
    )
    upload = runtime.files.describe(
        job_id,
        upload_id,
        request.args.get("name"),
        request.args.get("title"),
        headers.get("content-type"),
    )
    guard = credential_guard(runtime, claims)
    body = stream_body(request, settings.max_bytes, settings.upload_timeout)
    try:
        await load_job(runtime, job_id, claims)
        earlier = await runtime.store.file_by_upload(job_id, upload.upload_id)
    except (JobNotFound, AuthenticationFailed):
        # A signature is only known good once the whole body is in: until
        # then a stranger learns nothing of the job, not even that it exists.
        await _signed_by_the_job(runtime, job_id, body, signed)
        raise
    if earlier is not None:
        # A retry of an upload that was stored: announce it (once), done.
        await _signed_by_the_job(runtime, job_id, body, signed)
        refuse_unread(request)
        result = await runtime.files.announce(earlier, guard)
        return _stored(Received(earlier, result, new=False))

    def check() -> None:
        if signed is not None:
            _verify(signed)
            check_rate(runtime, job_id)  # only a genuine robot spends its budget

    received = await runtime.files.receive(
        upload,
        body if signed is None else _fed(body, signed),
        guard=guard,
        check=check,
    )
    return _stored(received)


async def _signed_by_the_job(
    runtime: Runtime, job_id: str, body: AsyncIterator[bytes], signed: SignedBody | None
) -> None:
    """For a signed upload, read the body (keeping nothing) and check the
    signature; 401 when it is not the job's. Nothing to do for a token."""
    if signed is None:
        return
    async for piece in body:
        signed.update(piece)
    _verify(signed)
    check_rate(runtime, job_id)


def _signature(runtime: Runtime, request: Request, job_id: str) -> SignedBody:
    """The signature's headers checked now; the body is checked as it arrives."""
    callbacks = runtime.config.callbacks
    secrets = [runtime.keys.signing_secret(job_id)]
    secrets += [s.get_secret_value() for s in callbacks.webhook_secrets]
    try:
        return SignedBody(secrets, request.headers, tolerance=callbacks.tolerance)
    except SignatureError as exc:
        raise AuthenticationFailed(str(exc)) from None


def _verify(signed: SignedBody) -> None:
    try:
        signed.verify()
    except SignatureError as exc:
        raise AuthenticationFailed(str(exc)) from None


async def _fed(body: AsyncIterator[bytes], signed: SignedBody) -> AsyncIterator[bytes]:
    async for piece in body:
        signed.update(piece)
        yield piece


def _stored(received: Received) -> HTTPResponse:
    file = received.file
    answer = {
        "job_id": file.job_id,
        "event_id": f"file:{file.upload_id}",
        "file": {key: value for key, value in file.public().items() if key != "job_id"},
        "duplicate": not received.new,
    }
    return json(answer, status=202 if received.new else 200)


@files_blueprint.get("/files/<file_id:str>")
async def download_file(request: Request, file_id: str) -> HTTPResponse | None:
    """The file behind a download link, as an attachment."""
    runtime = runtime_of(request)
    args = request.args
    try:
        runtime.links.check(
            file_id, args.get("expires"), args.get("signature"), time.time()
        )
    except LinkRefused as refused:
        return _page(refused.reason)
    try:
        file = await runtime.store.get_file(file_id)
    except StoreError as exc:
        log.error("download of file %s: %s", file_id, exc)
        return _page("unavailable")
    if file is None:
        return _page("gone")
    chunks = runtime.files.chunks(file)
    try:
        first = await anext(chunks)
    except (StoreError, StopAsyncIteration) as exc:
        log.error("download of file %s: %s", file_id, exc)
        return _page("unavailable")
    response = await request.respond(
        headers={
            **DOWNLOAD_HEADERS,
            "Content-Disposition": content_disposition(file.name),
            "Content-Length": str(file.size),
            "ETag": f'"{file.sha256}"',
        },
        content_type=served_type(file.content_type),
    )
    try:
        await response.send(first)
        async for data in chunks:
            await response.send(data)
    except StoreError as exc:
        # Cut short: the client sees a failed download, not a wrong file.
        log.error("download of file %s stopped: %s", file_id, exc)
        request.transport.close()
        return None
    await response.eof()
    return None


def _page(reason: str) -> HTTPResponse:
    status, title, text = _PAGES[reason]
    body = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>\n"
    )
    headers = {
        "Content-Security-Policy": "default-src 'none'",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
    }
    return html_response(body, status=status, headers=headers)


install_error_handlers(files_blueprint)
