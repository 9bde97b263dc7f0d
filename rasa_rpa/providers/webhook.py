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
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from rasa_rpa.config import parse_duration
from rasa_rpa.errors import ConfigError, ProviderError
from rasa_rpa.providers.base import Provider, StartRequest
from rasa_rpa.providers.http import async_client, send

__all__ = ["WebhookProvider", "render_template"]

_PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[A-Za-z0-9_-]+)?)\}")
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
    """Values percent-encoded for a URL: user input must not add path or query."""
    quoted: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            quoted[key] = {k: quote(str(v), safe="") for k, v in value.items()}
        else:
            quoted[key] = quote(str(value), safe="")
    return quoted


def _dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


class WebhookProvider(Provider):
    """POSTs a templated JSON body; the automation reports back natively."""

    type_name = "webhook"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        url = self.option("url")
        if not url:
            raise ConfigError(
                self.config.source,
                f"providers.{self.name}.url",
                "is required",
                "set the URL that starts the automation",
            )
        self.url: str = str(url)
        self._client = async_client(timeout=parse_duration(self.option("timeout", 10)))

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
            url = str(render_template(self.url, _url_safe(values)))
            body = render_template(self.option("body", DEFAULT_BODY), values)
            headers = render_template(self.option("headers", {}), values)
        except KeyError as exc:
            # Input placeholders depend on the conversation, so this shows at start.
            raise ProviderError(
                self.name,
                f"the template in rpa.yml (providers.{self.name}) uses "
                f"{{{exc.args[0]}}}, which this job does not have",
                job_id=request.job.id,
            ) from None
        response = await send(
            self._client,
            self.name,
            "POST",
            url,
            what="starting the automation",
            json=body,
            headers={str(k): str(v) for k, v in headers.items()},
        )
        ref_path = self.option("ref")
        if not ref_path or not response.content:
            return None
        try:
            ref = _dig(response.json(), str(ref_path))
        except ValueError:
            return None
        return None if ref is None else str(ref)

    async def aclose(self) -> None:
        await self._client.aclose()
