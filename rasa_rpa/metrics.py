"""Prometheus metrics, served at ``/rpa/metrics``.

One registry per process (each Sanic worker reports its own numbers; scrape
every worker, or run one). Names follow Prometheus conventions:

* ``rasa_rpa_jobs_started_total{automation}`` and
  ``rasa_rpa_jobs_finished_total{automation,state}``;
* ``rasa_rpa_callback_seconds{route,status}``: callback handling latency;
* ``rasa_rpa_delivery_attempts_total{kind,outcome}``: calls to Rasa by result
  (``delivered``, ``retry``, ``dead``, ``skipped`` for in-doubt messages
  Rasa already had);
* ``rasa_rpa_outbox_messages{status}``: outbox depth, read at scrape time;
* ``rasa_rpa_poll_errors_total{provider}``: failed status polls.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    """The plugin's metrics, in their own registry (tests build several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs_started = Counter(
            "rasa_rpa_jobs_started",
            "Jobs handed to a provider.",
            ["automation"],
            registry=self.registry,
        )
        self.jobs_finished = Counter(
            "rasa_rpa_jobs_finished",
            "Jobs that reached a final state.",
            ["automation", "state"],
            registry=self.registry,
        )
        self.callback_seconds = Histogram(
            "rasa_rpa_callback_seconds",
            "Time to verify, record and answer a callback.",
            ["route", "status"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.delivery_attempts = Counter(
            "rasa_rpa_delivery_attempts",
            "Calls to Rasa's HTTP API, by outcome.",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.outbox_messages = Gauge(
            "rasa_rpa_outbox_messages",
            "Outbox messages by status (at scrape time).",
            ["status"],
            registry=self.registry,
        )
        self.poll_errors = Counter(
            "rasa_rpa_poll_errors",
            "Provider status polls that failed.",
            ["provider"],
            registry=self.registry,
        )
