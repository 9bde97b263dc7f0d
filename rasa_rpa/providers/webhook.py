"""Generic webhook provider: start any HTTP-triggered automation.

POSTs a JSON body built from a template to a URL; the automation calls back
through the native API (``/rpa/v1/jobs/{job_id}/events``) with the token or
signing secret it was given. rpa.yml::

    providers:
      n8n:
        type: webhook
        url: https://automation.example.com/hooks/{task}
        headers: {X-Api-Key: "${AUTOMATION_KEY}"}
        body:
          job: "{job_id}"
          conversation: "{conversation_id}"
          callback: {url: "{events_url}", token: "{token}"}
          params: "{inputs}"              # the whole inputs object
          customer: "{inputs.customer}"   # one input
        ref: run.id                       # where the answer names the run (optional)

Placeholders: ``{job_id}``, ``{conversation_id}``, ``{task}``, ``{events_url}``,
``{token}``, ``{signing_secret}``, ``{inputs}`` and ``{inputs.<name>}``. A
string that is exactly one placeholder keeps the value's JSON type.

Values put into the URL are percent-encoded (``/``, ``?``, ``#`` cannot
reshape it); a value that would make a ``.`` or ``..`` path segment, or a URL
longer than 8000 characters, fails the job at start, as does a header value
with non-ASCII or control characters. Put such inputs in the body instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, Field

from rasa_rpa.errors import ProviderError, UnsendableInput
from rasa_rpa.providers.base import Diagnosis, Provider, StartRequest
from rasa_rpa.providers.http import async_client, send
from rasa_rpa.providers.options import HttpUrl, OptionError, StrictOptions, Timeout

__all__ = ["WebhookOptions", "WebhookProvider", "render_template"]

_PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[A-Za-z0-9_-]+)?)\}")
#: RFC 9110 (4.1) asks every party to take URLs of at least 8000 octets; longer
#: ones are refused by common servers (414) and httpx stops at 65536.
MAX_URL_LENGTH = 8000
#: What an HTTP field value may hold (RFC 9110 5.5) and httpx can encode:
#: visible ASCII, space and tab. Anything else (non-ASCII, CR/LF, NUL) is refused.
_HEADER_SAFE = re.compile(r"[\t\x20-\x7e]*")
_DOT_SEGMENTS = (".", "..")
DEFAULT_BODY = {
    "job_id": "{job_id}",
    "conversation_id": "{conversation_id}",
    "task": "{task}",
    "inputs": "{inputs}",
    "callback": {"url": "{events_url}", "token": "{token}"},
}


def render_template(template: Any, values: dict[str, Any]) -> Any:
    """``template`` with placeholders filled from ``values`` (nested lookups too)."""
    if isinstance(template, dict):
        return {k: render_template(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render_template(v, values) for v in template]
    if not isinstance(template, str):
        return template
    whole = _PLACEHOLDER.fullmatch(template)
    if whole:
        return _lookup(values, whole.group(1))
    return _PLACEHOLDER.sub(lambda m: str(_lookup(values, m.group(1))), template)


def _lookup(values: dict[str, Any], name: str) -> Any:
    head, _, key = name.partition(".")
    if head not in values:
        raise KeyError(name)
    value = values[head]
    if key:
        if not isinstance(value, dict) or key not in value:
            raise KeyError(name)
        value = value[key]
    return value


def _url_safe(values: dict[str, Any]) -> dict[str, Any]:
    """Values percent-encoded for a URL: user input must not add path or query.

    Raises UnicodeEncodeError for text UTF-8 cannot encode (a lone surrogate).
    """
    quoted: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            quoted[key] = {k: quote(str(v), safe="") for k, v in value.items()}
        else:
            quoted[key] = quote(str(value), safe="")
    return quoted


def _placeholders(template: Any) -> list[str]:
    """The placeholder names used in a template string, in order."""
    return _PLACEHOLDER.findall(template) if isinstance(template, str) else []


def _input_name(placeholder: str) -> str | None:
    head, _, key = placeholder.partition(".")
    return key if head == "inputs" and key else None


def _dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _no_dot_segments(url: str) -> str:
    # Every dot segment left after templating must then come from an input
    # (and is refused at start); a literal one here is a typo.
    if any(seg in _DOT_SEGMENTS for seg in urlsplit(url).path.split("/")):
        raise OptionError(
            "url",
            "has a '.' or '..' path segment",
            "write the path without dot segments",
        )
    return url


class WebhookOptions(StrictOptions):
    """``providers.<name>`` keys of ``type: webhook`` (see the module docstring)."""

    fixes = {"url": "set the URL that starts the automation"}

    url: Annotated[HttpUrl, AfterValidator(_no_dot_segments)]
    headers: dict[str, Any] = Field(default_factory=dict)
    body: Any = Field(default_factory=lambda: DEFAULT_BODY)
    #: Where in the answer the run's id is (``run.id``); optional.
    ref: str | None = None
    timeout: Timeout = 10.0


class WebhookProvider(Provider):
    """POSTs a templated JSON body; the automation reports back natively."""

    type_name = "webhook"

    Options = WebhookOptions
    options: WebhookOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url: str = self.options.url
        self._client = async_client(timeout=self.options.timeout)

    async def diagnose(self, tasks: Sequence[str]) -> list[Diagnosis]:
        """Nothing is called: a call to the URL would start work."""
        ok = "webhook: url is set (not called: that would start work)"
        return [Diagnosis("ok", ok)]

    async def start(self, request: StartRequest) -> str | None:
        creds = request.credentials
        values: dict[str, Any] = {
            "job_id": request.job.id,
            "conversation_id": request.job.conversation_id,
            "task": request.task,
            "events_url": creds.events_url,
            "token": creds.token,
            "signing_secret": creds.signing_secret,
            "inputs": request.inputs,
        }
        try:
            url = self._render_url(values, request)
            body = render_template(self.options.body, values)
            headers = render_template(self.options.headers, values)
        except KeyError as exc:
            # Input placeholders depend on the conversation, so this shows at start.
            raise ProviderError(
                self.name,
                f"the template in rpa.yml (providers.{self.name}) uses "
                f"{{{exc.args[0]}}}, which this job does not have",
                job_id=request.job.id,
                user_message="it is not set up correctly",
            ) from None
        self._check_headers(headers, values, request)
        response = await send(
            self._client,
            self.name,
            "POST",
            url,
            what="starting the automation",
            json=body,
            headers={str(k): str(v) for k, v in headers.items()},
        )
        ref_path = self.options.ref
        if not ref_path or not response.content:
            return None
        try:
            ref = _dig(response.json(), str(ref_path))
        except ValueError:
            return None
        return None if ref is None else str(ref)

    def _render_url(self, values: dict[str, Any], request: StartRequest) -> str:
        """The URL with its placeholders filled, or UnsendableInput."""
        used = [_input_name(p) for p in _placeholders(self.url)]
        names = [name for name in used if name]
        try:
            quoted = _url_safe(values)
        except UnicodeEncodeError:
            raise UnsendableInput(
                self.name,
                None,
                "an input is not valid Unicode text (it has a lone surrogate)",
                job_id=request.job.id,
            ) from None
        url = str(render_template(self.url, quoted))
        # Refused, not encoded as %2E: servers and proxies (nginx, for one)
        # decode %2E before they resolve dot segments, so /hooks/%2E%2E/run
        # can still reach /run behind them; and a segment that is only dots
        # is never meaningful data. httpx itself would drop "/hooks/.." here.
        if any(seg in _DOT_SEGMENTS for seg in urlsplit(url).path.split("/")):
            # To blame one input, it must fill a whole segment on its own.
            alone = [
                _input_name(whole.group(1))
                for seg in urlsplit(self.url).path.split("/")
                if (whole := _PLACEHOLDER.fullmatch(seg))
            ]
            blamed = [
                n for n in alone if n and quoted["inputs"].get(n) in _DOT_SEGMENTS
            ]
            problem = (
                "would make a '.' or '..' segment in the URL path, "
                "which would change where the request goes"
            )
            raise UnsendableInput(
                self.name,
                blamed[0] if blamed else None,
                problem if blamed else f"the inputs together {problem}",
                job_id=request.job.id,
            )
        if len(url) > MAX_URL_LENGTH:
            longest = max(
                names, key=lambda n: len(quoted["inputs"].get(n, "")), default=None
            )
            raise UnsendableInput(
                self.name,
                longest,
                f"makes the URL {len(url)} characters long; "
                f"at most {MAX_URL_LENGTH} are sent",
                job_id=request.job.id,
            )
        return url

    def _check_headers(
        self, headers: Any, values: dict[str, Any], request: StartRequest
    ) -> None:
        """Refuse header values HTTP cannot carry, naming the input to blame."""
        templates = self.options.headers
        for key, value in headers.items():
            if _HEADER_SAFE.fullmatch(str(value)):
                continue
            names = [_input_name(p) for p in _placeholders(templates.get(key))]
            blamed = [
                n
                for n in names
                if n and not _HEADER_SAFE.fullmatch(str(values["inputs"].get(n)))
            ]
            cannot = f"non-ASCII or control characters, which header {key} cannot carry"
            if blamed:
                problem = f"has {cannot}"
            else:  # e.g. a conversation id from a channel that allows any text
                problem = f"the value for header {key} has {cannot}"
            raise UnsendableInput(
                self.name, blamed[0] if blamed else None, problem, job_id=request.job.id
            )

    async def aclose(self) -> None:
        await self._client.aclose()
