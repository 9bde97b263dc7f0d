"""The one exception tree of rasa-rpa.

Every error the library raises derives from :class:`RpaError`, so a bot can
catch one type. Third-party errors are translated at the boundary with
``raise ... from exc`` so the original cause stays in the traceback::

    RpaError
    ├── ConfigError            rpa.yml is wrong: names the file, the key and the fix
    ├── StoreError             the job store cannot be reached or is corrupt
    ├── JobNotFound            no job with that id
    ├── JobLimitReached        the conversation already runs as many jobs as allowed
    ├── CallbackError          a robot's call is refused (carries the HTTP status)
    │   ├── AuthenticationFailed   401: no or bad credential
    │   ├── Forbidden              403: a good credential for another job
    │   ├── InvalidPayload         400/413/415/422: the body is wrong
    │   ├── QuestionNotFound       404: the job asked no such question
    │   └── RateLimited            429: too many callbacks for one job
    ├── ProviderError          an RPA backend refused or failed (carries the provider)
    │   ├── ProviderUnavailable    the backend did not answer (retry later)
    │   └── UnsendableInput        an input the provider cannot carry (NUL in argv...)
    └── DeliveryError          Rasa refused or failed an outbox message
        └── DeliveryRejected       Rasa said no for good (4xx): do not retry
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rasa_rpa.models import Job

__all__ = [
    "AuthenticationFailed",
    "CallbackError",
    "ConfigError",
    "DeliveryError",
    "DeliveryRejected",
    "Forbidden",
    "InvalidPayload",
    "JobLimitReached",
    "JobNotFound",
    "ProviderError",
    "ProviderUnavailable",
    "QuestionNotFound",
    "RateLimited",
    "RpaError",
    "StoreError",
    "UnsendableInput",
]


class RpaError(Exception):
    """Root of every rasa-rpa error."""


class ConfigError(RpaError):
    """The configuration cannot be used; the message says where and how to fix it."""

    def __init__(self, source: str, key: str, problem: str, fix: str = "") -> None:
        self.source = source
        self.key = key
        self.problem = problem
        self.fix = fix
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}" + (f" Fix: {fix}" if fix else ""))


class StoreError(RpaError):
    """The job store failed; callers answer 503 so robots retry."""


class JobNotFound(RpaError):
    """No job has this id."""

    def __init__(self, job_id: str, message: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(message or f"job {job_id!r} does not exist")


class JobLimitReached(RpaError):
    """A conversation already has ``limit`` unfinished jobs of this automation.

    Raised by the store instead of creating one more, so two starts racing
    in two workers cannot both get through. ``running`` holds those jobs,
    newest first: the start action points the user (and the slot) at them.
    """

    def __init__(self, automation: str, limit: int, running: list[Job]) -> None:
        self.automation = automation
        self.limit = limit
        self.running = running
        super().__init__(
            f"{len(running)} {automation} job(s) still unfinished in this "
            f"conversation (limit {limit})"
        )


class CallbackError(RpaError):
    """A callback is refused; ``status`` is the HTTP status to answer with."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class AuthenticationFailed(CallbackError):
    """The caller gave no credential, or one that does not verify."""

    status = 401
    code = "unauthenticated"


class Forbidden(CallbackError):
    """The credential verifies but belongs to another job or conversation."""

    status = 403
    code = "forbidden"


class InvalidPayload(CallbackError):
    """The body is not a valid event."""

    def __init__(self, message: str, *, status: int = 422, code: str = "invalid_event"):
        super().__init__(message)
        self.status = status
        self.code = code


class QuestionNotFound(CallbackError):
    """A robot waits for a question its job never asked."""

    status = 404
    code = "question_not_found"

    def __init__(self, job_id: str, question_id: str) -> None:
        super().__init__(
            f"job {job_id} asked no question {question_id!r}: send the question "
            "event first, and wait with its id"
        )


class RateLimited(CallbackError):
    """Too many callbacks for one job; ``retry_after`` says when to try again."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderError(RpaError):
    """An RPA backend refused or failed a request.

    ``message`` is for operators and the log: it may name URLs, paths and
    the vendor's own words (never secrets). ``user_message`` is what the
    chat may show: plain words, no internals.
    """

    #: What the user reads when the raiser gave nothing more specific.
    default_user_message = "the automation system refused it"

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        job_id: str | None = None,
        user_message: str | None = None,
    ):
        self.provider = provider
        self.job_id = job_id
        self.message = message
        self.user_message = user_message or self.default_user_message
        super().__init__(f"{provider}: {message}")


class ProviderUnavailable(ProviderError):
    """The backend could not be reached or timed out; the call may be retried."""

    default_user_message = (
        "the automation system is not answering right now; please try again later"
    )


class UnsendableInput(ProviderError):
    """An input holds something this provider's transport cannot carry.

    A NUL byte on a command line, non-ASCII or a line break in an HTTP
    header, a value too long for a URL, a ``..`` URL path segment. Raised
    before anything is sent, so retrying the same input is pointless.
    ``input_name`` is None when no single input is to blame; ``problem``
    then says what is wrong on its own.
    """

    def __init__(
        self,
        provider: str,
        input_name: str | None,
        problem: str,
        *,
        job_id: str | None = None,
    ):
        self.input_name = input_name
        told = f"the {input_name} you gave" if input_name else "what you gave me"
        super().__init__(
            provider,
            f"input {input_name!r} {problem}" if input_name else problem,
            job_id=job_id,
            user_message=f"{told} cannot be passed on to it as it is",
        )


class DeliveryError(RpaError):
    """Rasa did not accept an outbox message; it will be retried.

    ``maybe_sent`` is true when Rasa may have processed it anyway (a timeout
    or a 5xx after the request went out), so the retry checks first.
    """

    def __init__(self, message: str, *, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class DeliveryRejected(DeliveryError):
    """Rasa refused an outbox message for good (e.g. an intent not in the domain)."""
