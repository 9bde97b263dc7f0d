"""The benchmark's action server: ``rasa-rpa run`` plus two floor routes.

P1 divides stored callbacks per second by bare ``GET /health`` per second.
These routes split the distance between the two, in the same server and the
same run, so the table shows what bounds the ratio:

* ``POST /bench/floor/<job_id>/events`` answers 202 at once: what Sanic and
  rasa-sdk cost for a request the size of a signed callback.
* ``POST /bench/checks/<job_id>/events`` runs the callback route's checks
  (size, media type, signature, rate, payload) and answers 202 without
  storing: what verifying costs before the store is touched.

python -m benchmarks.floor --actions benchmarks.bench_actions --config rpa.yml
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

from rasa_rpa.cli import build_app, serve
from rasa_rpa.http.common import authenticate, check_body, check_rate, runtime_of
from rasa_rpa.http.payloads import parse_event

__all__ = ["build_floor_app"]


async def floor(request: Request, job_id: str) -> HTTPResponse:
    """Answer as the callback route does, having done nothing."""
    return json({"job_id": job_id, "state": "running"}, status=202)


async def checks(request: Request, job_id: str) -> HTTPResponse:
    """Everything the callback route does before it records the event."""
    runtime = runtime_of(request)
    check_body(runtime, request)
    authenticate(runtime, request, job_id)
    check_rate(runtime, job_id)
    event = parse_event(
        job_id, request.body, fallback_id=request.headers.get("webhook-id")
    )
    return json({"job_id": job_id, "event_id": event.id}, status=202)


def build_floor_app(actions: str, config_path: str) -> Sanic[Any, Any]:
    """The action server of ``rasa-rpa run`` with the floor routes added."""
    app = build_app(actions, config_path)
    app.add_route(floor, "/bench/floor/<job_id:str>/events", methods=["POST"])
    app.add_route(checks, "/bench/checks/<job_id:str>/events", methods=["POST"])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor")
    parser.add_argument("--actions", default="benchmarks.bench_actions")
    parser.add_argument("--config", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    serve(partial(build_floor_app, args.actions), args)


if __name__ == "__main__":
    main()
