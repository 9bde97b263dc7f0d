"""A vendor's webhook call through a provider's three webhook steps."""

from __future__ import annotations

from collections.abc import Mapping

from rasa_rpa.models import Job
from rasa_rpa.providers.base import Provider, WebhookEvent


async def receive(
    provider: Provider,
    headers: Mapping[str, str],
    body: bytes,
    job: Job | None = None,
) -> list[WebhookEvent]:
    """The events the webhook route would record, in the route's order.

    The route also checks the credential against the job; these tests are
    about translation, so only the provider's own checks run here.
    """
    provider.webhook_credential(headers, body)
    job = job or Job("job-1", "automation", provider.name, "conversation-1")
    events = []
    for event in provider.parse_webhook(headers, body):
        done = await provider.complete_webhook(event, job)
        if done is not None:
            events.append(done)
    return events
