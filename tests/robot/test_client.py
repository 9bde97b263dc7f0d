"""The robot-side client: signed, retried until accepted, refused calls surface."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from devtools.stack import free_port
from rasa_rpa.security import verify_webhook
from rasa_rpa_robot.client import CallbackRefused, RobotClient

SECRET = "whsec_dGVzdC1zaWduaW5nLXNlY3JldC0xMjM0NTY="


class Receiver:
    """An events endpoint that answers with a scripted list of statuses."""

    def __init__(self, port: int, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return None

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.paths.append(self.path)
                receiver.received.append(
                    ({k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 202
                payload = json.dumps({"status": status}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_events_are_signed_with_the_job_secret():
    port = free_port()
    receiver = Receiver(port, [])
    try:
        client = RobotClient(f"http://127.0.0.1:{port}/e", signing_secret=SECRET)
        client.send("job.progress", {"progress": 5})
        [(headers, body)] = receiver.received
        assert verify_webhook([SECRET], headers, body) == json.loads(body)["id"]
    finally:
        receiver.close()


def test_retries_keep_the_event_id_until_accepted():
    port = free_port()
    receiver = Receiver(port, [503, 500])
    try:
        client = RobotClient(f"http://127.0.0.1:{port}/e", token="t", retry_for=10)
        client.send("job.started")
        ids = {json.loads(body)["id"] for _, body in receiver.received}
        assert len(receiver.received) == 3
        assert len(ids) == 1
        assert receiver.received[0][0]["authorization"] == "Bearer t"
    finally:
        receiver.close()


def test_server_down_then_up_is_retried():
    port = free_port()
    client = RobotClient(f"http://127.0.0.1:{port}/e", token="t", retry_for=15)
    holder = {}
    refused = threading.Event()
    post = client._session.post

    def post_noting_refusals(*args, **kwargs):
        try:
            return post(*args, **kwargs)
        except requests.ConnectionError:
            refused.set()
            raise

    client._session.post = post_noting_refusals

    def start_once_refused():
        if refused.wait(15):  # the server comes up after the client found it down
            holder["receiver"] = Receiver(port, [])

    threading.Thread(target=start_once_refused).start()
    answer = client.send("job.succeeded", {"outputs": {"n": 1}})
    assert answer == {"status": 202}
    assert refused.is_set()
    holder["receiver"].close()


def test_refusal_is_raised_not_retried():
    port = free_port()
    receiver = Receiver(port, [422])
    try:
        client = RobotClient(f"http://127.0.0.1:{port}/e", token="t")
        with pytest.raises(CallbackRefused) as caught:
            client.send("job.progress", {"progress": 500})
        assert caught.value.status == 422
        assert len(receiver.received) == 1
    finally:
        receiver.close()


def test_gives_up_after_retry_window():
    client = RobotClient(f"http://127.0.0.1:{free_port()}/e", token="t", retry_for=0.5)
    with pytest.raises(ConnectionError, match=r"could not deliver job\.started"):
        client.send("job.started")


def test_from_env_outside_a_job_is_none():
    assert RobotClient.from_env({}) is None
    client = RobotClient.from_env(
        {"RASA_RPA_EVENTS_URL": "http://x/e", "RASA_RPA_TOKEN": "t"}
    )
    assert client is not None and client.events_url == "http://x/e"


@pytest.mark.parametrize("number", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_fail_clearly_before_anything_is_sent(number):
    """JSON has no NaN or Infinity; the server refuses them, so never send them."""
    port = free_port()
    receiver = Receiver(port, [])
    try:
        client = RobotClient(f"http://127.0.0.1:{port}/e", token="t", retry_for=0)
        with pytest.raises(ValueError, match="NaN or Infinity") as caught:
            client.send("job.progress", {"progress": 5, "stats": {"ratio": number}})
        assert "job.progress" in str(caught.value)
        assert receiver.received == []
    finally:
        receiver.close()


# -- asking the user -------------------------------------------------------------


def test_ask_waits_for_the_answer_given_in_the_chat(action_server):
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import running_job
    from tests.waiting import wait_until

    server = action_server()
    with running_job(server) as (job_id, sender):
        client = RobotClient(
            server.events_url(job_id), token=server.keys.mint_token(job_id, sender)
        )
        with ThreadPoolExecutor(1) as pool:
            asked = pool.submit(
                client.ask,
                "Which customer?",
                ["ACME Corp", {"title": "Ltd", "value": "acme-ltd"}],
                question_id="customer",
                poll=1,
            )

            def answered() -> bool:
                result = server.run_action(
                    "action_rpa_answer",
                    sender,
                    intent="rpa_answer",
                    entities=[
                        {"entity": "rpa_question_id", "value": "customer"},
                        {"entity": "rpa_choice", "value": "acme-ltd"},
                    ],
                )
                return "Thanks" in result["responses"][0]["text"]

            # The question is recorded once the robot's send returns.
            wait_until(answered, 10, "the question to take an answer")
            assert asked.result(timeout=10) == "acme-ltd"
        # Asking for the answer again, after a restart, gives the same one.
        assert client.answer_to("customer", timeout=5) == "acme-ltd"


def test_a_question_nobody_answers_raises_question_expired(action_server):
    from rasa_rpa_robot import QuestionExpired
    from tests.conftest import running_job

    server = action_server()
    with running_job(server) as (job_id, _):
        client = RobotClient(
            server.events_url(job_id), signing_secret=server.keys.signing_secret(job_id)
        )
        with pytest.raises(QuestionExpired, match="its timeout passed"):
            client.ask("Go on?", ["Yes", "No"], timeout=1, poll=5)


def test_questions_live_beside_the_events():
    client = RobotClient("http://h/rpa/v1/jobs/j1/events", token="t")
    assert client.question_url("q1") == "http://h/rpa/v1/jobs/j1/questions/q1"
    odd = RobotClient("http://h/hooks/robot", token="t")
    with pytest.raises(ValueError, match=r"expected \.\.\./jobs/<job_id>/events"):
        odd.question_url("q1")


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def report(tmp_path):
    path = tmp_path / "orders-ACME.xlsx"
    path.write_bytes(bytes(range(256)) * 2000)  # 512 KB: read in pieces
    return path


def test_files_go_with_the_token_and_keep_their_upload_id_across_retries(report):
    port = free_port()
    receiver = Receiver(port, [503, 202])
    try:
        client = RobotClient(
            f"http://127.0.0.1:{port}/rpa/v1/jobs/j1/events",
            signing_secret=SECRET,
            token="job-token",
            retry_for=10,
        )
        client.send_file(report, "order report")
        first, second = receiver.received
        assert first[0]["idempotency-key"] == second[0]["idempotency-key"]
        headers, body = second
        # A token can be checked before the body: preferred over signing.
        assert headers["authorization"] == "Bearer job-token"
        assert "webhook-signature" not in headers
        assert headers["content-type"] == XLSX
        assert body == report.read_bytes()
        assert receiver.paths[-1] == (
            "/rpa/v1/jobs/j1/files?name=orders-ACME.xlsx&title=order+report"
        )
    finally:
        receiver.close()


def test_a_file_is_signed_in_pieces_when_the_robot_has_only_a_secret(report):
    port = free_port()
    receiver = Receiver(port, [])
    try:
        client = RobotClient(f"http://127.0.0.1:{port}/e/events", signing_secret=SECRET)
        client.send_file(report, name="Bericht.xlsx", content_type="text/csv")
        [(headers, body)] = receiver.received
        assert verify_webhook([SECRET], headers, body) == headers["webhook-id"]
        assert headers["content-type"] == "text/csv"
        assert receiver.paths == ["/e/files?name=Bericht.xlsx"]
    finally:
        receiver.close()


def test_a_refused_file_surfaces_at_once(report):
    port = free_port()
    receiver = Receiver(port, [415])
    try:
        client = RobotClient(f"http://127.0.0.1:{port}/e/events", token="t")
        with pytest.raises(CallbackRefused) as refused:
            client.send_file(report)
        assert refused.value.status == 415
        assert len(receiver.received) == 1
    finally:
        receiver.close()
