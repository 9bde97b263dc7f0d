"""Prometheus metrics at /rpa/metrics reflect what happened."""

from __future__ import annotations

import uuid

import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(server) -> dict[tuple[str, tuple], float]:
    text = requests.get(f"{server.url}/rpa/metrics", timeout=5).text
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def test_metrics_count_jobs_callbacks_and_deliveries(action_server, rasa_stand_in):
    server = action_server(rasa_url=rasa_stand_in.url)
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="chat")
    server.wait_job(job_id, sender, "succeeded")
    server.start_job(uuid.uuid4().hex, intent="missing")
    rasa_stand_in.wait_for(lambda calls: any(
        isinstance(c.body, dict) and c.body.get("name") == "EXTERNAL_rpa_job_succeeded"
        for c in calls))
    token = server.keys.mint_token(job_id, sender)
    refused = server.send_with_token(job_id, {"type": "job.started"}, token)
    assert refused.status_code == 422
    values = scrape(server)
    assert values[("rasa_rpa_jobs_started_total", (("automation", "chatty"),))] == 1
    assert values[("rasa_rpa_jobs_finished_total",
                   (("automation", "chatty"), ("state", "succeeded")))] == 1
    assert values[("rasa_rpa_jobs_finished_total",
                   (("automation", "missing"), ("state", "failed")))] == 1
    accepted = values[("rasa_rpa_callback_seconds_count",
                       (("route", "post_event"), ("status", "202")))]
    assert accepted >= 5  # started, message, slots, progress x2, succeeded
    assert values[("rasa_rpa_callback_seconds_count",
                   (("route", "post_event"), ("status", "422")))] == 1
    assert values[("rasa_rpa_delivery_attempts_total",
                   (("kind", "intent"), ("outcome", "delivered")))] >= 3
    assert ("rasa_rpa_outbox_messages", (("status", "pending"),)) in values
