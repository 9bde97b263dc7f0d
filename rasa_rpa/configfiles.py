"""rpa.yml's ``files:`` and ``retention:`` sections: what robots may send, and
how long the store keeps things.

Kept apart from :mod:`rasa_rpa.config` (which includes them in
:class:`~rasa_rpa.config.RpaConfig`) so that module stays the map of the
file; the stores and the reconciler only need these two.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from rasa_rpa.configvalues import Duration

__all__ = ["DEFAULT_CONTENT_TYPES", "FileSettings", "Keep", "RetentionSettings"]


class _Model(BaseModel):
    # As in rasa_rpa.config: unknown keys are typos, refused by name.
    model_config = ConfigDict(extra="forbid", frozen=True)


#: Content types robots may upload unless ``files.content_types`` says
#: otherwise: documents, spreadsheets, archives and pictures people open.
#: Nothing a browser runs (HTML, SVG, XML, scripts); those can be allowed, and
#: are then still only ever downloaded, never shown (see rasa_rpa.files).
DEFAULT_CONTENT_TYPES = (
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.ms-excel",
    "application/msword",
    "application/zip",
    "text/csv",
    "text/plain",
    "application/json",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
)


def _media_type(value: str) -> str:
    kind = value.strip().lower()
    main, _, sub = kind.partition("/")
    if not main or not sub or ";" in kind or " " in kind:
        raise ValueError(
            f"{value!r} is not a media type; write e.g. text/csv or image/*"
        )
    return kind


class FileSettings(_Model):
    """Files robots send to the conversation (``POST /rpa/v1/jobs/{id}/files``)."""

    #: Largest file accepted; a larger upload gets 413 before it is read.
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    #: Media types accepted (``type/*`` for a whole family); others get 415.
    content_types: tuple[Annotated[str, AfterValidator(_media_type)], ...] = (
        DEFAULT_CONTENT_TYPES
    )
    #: How long a download link works after the file arrived.
    link_ttl: Duration = Field(default=24 * 3600.0, gt=0)
    #: Where users' browsers reach the download links; callbacks.public_url if unset.
    public_url: str | None = None
    #: Longest an upload's whole body may take to arrive (408 after).
    upload_timeout: Duration = Field(default=300.0, gt=0)


def _retention(value: Any) -> Any:
    # `off`, `never` and null all mean "keep for ever" (YAML reads `off` as False).
    if (
        value is None
        or value is False
        or str(value).strip().lower()
        in (
            "off",
            "never",
            "forever",
            "none",
        )
    ):
        return None
    return value


#: A retention period: a duration, or None (``off``) to keep for ever.
Keep = Annotated[Duration | None, BeforeValidator(_retention)]


class RetentionSettings(_Model):
    """How long the store keeps what it no longer needs (``off`` keeps it for ever).

    The reconciler prunes in small batches; nothing of a job that is still
    running, and no message not yet delivered (pending or dead), is touched.
    """

    #: Files robots sent, counted from their upload (their links expire sooner).
    files: Keep = 7 * 86400.0
    #: Messages delivered to Rasa (and dead ones an operator discarded).
    delivered: Keep = 7 * 86400.0
    #: The event log of a job, counted from the job's end.
    events: Keep = 30 * 86400.0
    #: Finished jobs themselves, with whatever is left of them.
    jobs: Keep = 90 * 86400.0
    #: How often the reconciler prunes.
    interval: Duration = Field(default=600.0, gt=0)
    #: Rows deleted per transaction: short transactions, no long locks.
    batch: int = Field(default=500, ge=1, le=10_000)
