"""Files robots send to the user: names, sizes, content types and download links.

A robot uploads a file for its job (``POST /rpa/v1/jobs/{job_id}/files``,
:mod:`rasa_rpa.http.files`); the store keeps it, checksummed, and the user
gets a message with a link (``utter_rpa_job_file``). What the user reads of
the file comes from here: its name made safe to show and to save
(:func:`clean_name`), its size in words (:func:`size_words`).

The link is the only key to the file: ``/rpa/files/<id>?expires=<unix
seconds>&signature=<HMAC>``. The id is random (128 bits), the signature
binds that id to the expiry with a key derived from the master key
(:meth:`rasa_rpa.security.JobKeys.link_signature`), so a link can neither
be guessed, nor pointed at another file, nor made to last longer. Files
are always served as downloads (``Content-Disposition: attachment``,
``nosniff``, a sandboxing CSP), and content a browser would run (HTML, SVG,
XML, scripts) as ``application/octet-stream`` on top.
"""

from __future__ import annotations

import math
import unicodedata
import uuid
from collections.abc import Sequence
from urllib.parse import quote, urlencode

from rasa_rpa.security import JobKeys, same_text

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_TITLE",
    "DOWNLOAD_HEADERS",
    "FileLinks",
    "LinkRefused",
    "clean_name",
    "clean_title",
    "content_disposition",
    "is_active",
    "media_type",
    "new_file_id",
    "served_type",
    "size_words",
    "type_allowed",
]

#: Files are stored and read back in pieces of this size: what any one
#: upload or download holds in memory, whatever the file's size.
CHUNK_BYTES = 256 * 1024
#: What a file is called when its robot gave no title ("Download the file ...").
DEFAULT_TITLE = "file"
#: Longest name and title kept (a name keeps its extension).
MAX_NAME = 120
MAX_TITLE = 80
#: Headers every download carries, whatever the file: save it, never show it.
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Should a browser render it anyway, it runs nothing and fetches nothing.
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
}
#: Characters that would break the chat's markdown link or a file system.
_UNSAFE = set('[]()<>`*|"\\:?{}')
_TEXT_INERT = {"plain", "csv", "tab-separated-values"}
_ACTIVE_SUBTYPES = {
    "xml",
    "javascript",
    "ecmascript",
    "x-javascript",
    "wasm",
    "x-shockwave-flash",
    "java-archive",
    "x-java-archive",
}


def new_file_id() -> str:
    """A file id: random, so the link's path itself cannot be guessed."""
    return uuid.uuid4().hex


def size_words(size: int) -> str:
    """``512 bytes``, ``6 KB``, ``1.5 MB``: a size a person reads at a glance.

    Binary units (1 KB = 1024 bytes), rounded up as file managers show them:
    a file of 5,139 bytes is "6 KB", never less than it is.
    """
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    if size < 1024**2:
        return f"{math.ceil(size / 1024)} KB"
    for unit, scale in (("MB", 1024**2), ("GB", 1024**3)):
        value = size / scale
        if value < 1024 or unit == "GB":
            shown = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            return f"{shown.removesuffix('.0')} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def _visible(text: str) -> str:
    """``text`` without control or format characters, its spaces collapsed."""
    kept = "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text
    )
    return " ".join(kept.split())


def clean_name(raw: str) -> str:
    """A file name safe to show in the chat and to save: no folders, no
    control characters, nothing markdown or a file system would read.

    Raises:
        ValueError: nothing usable is left.
    """
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join("-" if c in _UNSAFE else c for c in _visible(base))
    name = name.strip(" .")
    if len(name) > MAX_NAME:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = stem[: MAX_NAME - len(extension) - 1].rstrip() + "." + extension
        else:
            name = name[:MAX_NAME].rstrip()
    if not name:
        raise ValueError("the file needs a name, e.g. orders.xlsx")
    return name


def clean_title(raw: str | None) -> str:
    """What the user reads the file as ("order report"); ``file`` if none."""
    title = "".join(" " if c in _UNSAFE else c for c in _visible(raw or ""))
    title = " ".join(title.split())[:MAX_TITLE].strip()
    return title or DEFAULT_TITLE


def media_type(header: str | None) -> str:
    """The ``type/subtype`` of a Content-Type header, lower-case; "" if none."""
    kind = (header or "").split(";", 1)[0].strip().lower()
    main, slash, sub = kind.partition("/")
    return kind if main and slash and sub and " " not in kind else ""


def type_allowed(media: str, allowed: Sequence[str]) -> bool:
    """Whether ``media`` is on the allow-list (``image/*`` covers a family)."""
    if not media:
        return False
    family = media.split("/", 1)[0] + "/*"
    return media in allowed or family in allowed or "*/*" in allowed


def is_active(media: str) -> bool:
    """Whether a browser would run or render ``media`` as a page: HTML, SVG,
    XML, scripts. Such files are served as ``application/octet-stream``."""
    main, _, sub = media.partition("/")
    if main == "text":
        return sub not in _TEXT_INERT
    return main == "multipart" or sub.endswith("+xml") or sub in _ACTIVE_SUBTYPES


def served_type(media: str) -> str:
    """The Content-Type a download is served with."""
    return "application/octet-stream" if not media or is_active(media) else media


def content_disposition(name: str) -> str:
    """``attachment`` with the name for every browser (RFC 6266, RFC 8187).

    ``filename`` is an ASCII stand-in for old clients; ``filename*`` is the
    real name, UTF-8 and percent-encoded.
    """
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\;%' else "_" for c in name
    )
    return (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    )


class LinkRefused(Exception):
    """A download link that does not open its file; ``expired`` or ``tampered``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FileLinks:
    """Mints and checks the signed, expiring download links of files."""

    def __init__(self, keys: JobKeys, base_url: str, ttl: float) -> None:
        self._keys = keys
        self._base = base_url.rstrip("/")
        self.ttl = ttl

    def path(self, file_id: str) -> str:
        """The link's path (without the signature)."""
        return f"/rpa/files/{quote(file_id, safe='')}"

    def url(self, file_id: str, now: float) -> str:
        """A link to ``file_id`` that works until ``now + ttl``."""
        expires = int(now + self.ttl)
        query = urlencode(
            {
                "expires": expires,
                "signature": self._keys.link_signature(file_id, expires),
            }
        )
        return f"{self._base}{self.path(file_id)}?{query}"

    def check(
        self, file_id: str, expires: str | None, signature: str | None, now: float
    ) -> None:
        """Accept a link to ``file_id`` or say why not (tampered, then expired).

        The signature is checked first, in constant time: an altered expiry
        or id is tampering, whatever the time.
        """
        raw = (expires or "").strip()
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 12 and signature):
            raise LinkRefused("tampered")
        expected = self._keys.link_signature(file_id, int(raw))
        if not same_text(expected, signature):
            raise LinkRefused("tampered")
        if now > int(raw):
            raise LinkRefused("expired")
