"""The running action server's own state, as ``rasa-rpa doctor`` reads it.

The doctor's other checks read rpa.yml; the server read rpa.yml and its
environment when it started, and may hold something else (another token
in an environment variable, an older file). So when the server runs, the
doctor asks it (``GET /rpa/v1/diagnostics``, see
:mod:`rasa_rpa.http.diagnostics`) for what it actually uses and holds:

* its credentials, as fingerprints, compared key by key with the doctor's;
* messages to Rasa that keep failing or were set aside as dead;
* whether robots reach it at its ``callbacks.public_url``, tested from the
  server itself.

The server is looked for where ``rasa-rpa run`` left its address (see
:mod:`rasa_rpa.listening`), then at ``callbacks.public_url``, or only at
``--server`` when given. The doctor proves it may ask with an operator token
minted from the callback master key; it never creates that key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from rasa_rpa.config import RpaConfig
from rasa_rpa.listening import recorded_server
from rasa_rpa.ops.findings import Report, Status
from rasa_rpa.providers.http import safe_url
from rasa_rpa.security import JobKeys, fingerprints, keys_for

__all__ = ["LiveServer", "read_live"]

#: Seconds to wait for a server's health answer, then for its diagnostics
#: (which include its own call to its public URL, up to 5 s).
HEALTH_TIMEOUT = 3.0
DIAGNOSTICS_TIMEOUT = 20.0
#: Failing (or dead) messages reported one by one; the rest are counted.
SHOWN = 5
#: Credentials whose difference only costs an operator convenience.
_MINOR = ("admin.token",)


@dataclass(frozen=True)
class LiveServer:
    """The running server as the doctor found it."""

    #: Where the doctor reached it.
    url: str
    #: What its robots are told (its own ``callbacks.public_url``).
    public_url: str
    #: Whether its own call to ``public_url`` came back to it.
    reachable: bool
    #: Why not, in words.
    problem: str | None


async def read_live(
    config: RpaConfig, report: Report, server: str | None = None
) -> LiveServer | None:
    """Find the running server and report what it holds; None if it was not read."""
    candidates = [server] if server else [recorded_server(config), _public(config)]
    urls = list(dict.fromkeys(u.rstrip("/") for u in candidates if u))
    async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT) as client:
        url = await _find(client, urls)
        if url is None:
            report.add(
                "server",
                "warning",
                f"no action server answers at {' or '.join(urls)}: what a running "
                "server holds (failing deliveries, the credentials it uses) was "
                "not checked",
                "start it with `rasa-rpa run`, or pass --server with its address",
            )
            return None
        keys = _existing_keys(config)
        if keys is None:
            report.add(
                "server",
                "warning",
                f"the action server answers at {url}, but {config.source} has no "
                "callbacks.secret and there is no .rasa-rpa/master.key beside it, "
                "so the doctor cannot ask for its state",
                "run the doctor from the bot's folder, with the server's rpa.yml",
            )
            return None
        response = await client.get(
            f"{url}/rpa/v1/diagnostics",
            headers={"Authorization": f"Bearer {keys.mint_operator_token()}"},
            timeout=DIAGNOSTICS_TIMEOUT,
        )
    try:
        body: dict[str, Any] = response.json()
        probe = body["callbacks"]
        live = LiveServer(url, probe["url"], bool(probe["reachable"]), probe["problem"])
    except (ValueError, KeyError, TypeError):
        _refused(config, report, url, response.status_code)
        return None
    report.add("server", "ok", f"the action server at {url} runs with {body['config']}")
    _same_file(config, report, str(body["config"]))
    _credentials(config, report, keys, body)
    _outbox(config, report, body["outbox"])
    return live


def _public(config: RpaConfig) -> str:
    return config.callbacks.public_url


async def _find(client: httpx.AsyncClient, urls: list[str]) -> str | None:
    """The first of ``urls`` where rasa-rpa answers its health check."""
    for url in urls:
        try:
            response = await client.get(f"{url}/rpa/health")
            if response.status_code == 200 and response.json().get("status") == "ok":
                return url
        except (httpx.HTTPError, ValueError, AttributeError):
            continue
    return None


def _existing_keys(config: RpaConfig) -> JobKeys | None:
    """The master key the server uses, if it is here; the doctor never makes one."""
    secret = config.callbacks.secret
    if not (secret and secret.get_secret_value()):
        if not (config.state_dir / "master.key").is_file():
            return None
    return keys_for(config)


def _refused(config: RpaConfig, report: Report, url: str, status: int) -> None:
    if status == 401:
        report.add(
            "server",
            "error",
            f"the action server at {url} does not know this rpa.yml's key: it runs "
            f"with another callbacks.secret (or .rasa-rpa/master.key) than "
            f"{config.source}, so this check is not about the running server",
            "run the doctor with the rpa.yml and environment the server was "
            "started with (--config), or restart the server with this one",
        )
    elif status in (200, 404):  # 200: an answer the doctor cannot read
        report.add(
            "server",
            "warning",
            f"the action server at {url} does not tell its state (an older rasa-rpa?)",
            "upgrade rasa-rpa where the action server runs, and restart it",
        )
    else:
        report.add(
            "server",
            "warning",
            f"the action server at {url} answered {status} when asked for its state",
            "see the action server's log",
        )


def _same_file(config: RpaConfig, report: Report, theirs: str) -> None:
    """Warn when the server read another rpa.yml than the one checked here."""
    if not Path(theirs).is_absolute():
        return  # relative to the server's folder: cannot be compared from here
    ours = Path(config.source).resolve()
    if Path(theirs).resolve() != ours:
        report.add(
            "server.config",
            "warning",
            f"the running server reads {theirs}; this check read {ours}",
            f"pass --config {theirs} to check what the server runs with",
        )


def _credentials(
    config: RpaConfig, report: Report, keys: JobKeys, body: dict[str, Any]
) -> None:
    """Compare the server's Rasa URL and credential fingerprints with ours."""
    source = config.source
    restart = (
        "the server read another value when it started (an environment variable "
        f"set differently?): make {source} and the server's agree, then restart "
        "the action server"
    )
    found = 0
    # The server shows its URL without credentials: compare like with like.
    mine_url = safe_url(config.rasa.url).rstrip("/")
    plain = [("rasa.url", mine_url, str(body["rasa_url"]).rstrip("/"))]
    if config.rasa.jwt_secret is not None:
        plain.append(("rasa.jwt_method", config.rasa.jwt_method, body["jwt_method"]))
    for key, mine_plain, its_plain in plain:
        if mine_plain != its_plain:
            found += 1
            report.add(
                f"server.{key}",
                "error",
                f"the running server uses {key} {its_plain}, but {source} says "
                f"{mine_plain}",
                restart,
            )
    ours = fingerprints(config, keys)
    theirs: dict[str, str | None] = body["fingerprints"]
    named = {f"server.{key}" for key, m, i in plain if m != i}
    for key in sorted(set(ours) | set(theirs)):
        mine, its = ours.get(key), theirs.get(key)
        if mine == its or f"server.{key}" in named:  # said above, in plain words
            continue
        found += 1
        if its is None:
            what = f"{source} sets {key}, but the running server has none"
        elif mine is None:
            what = f"the running server uses a {key} that {source} does not set"
        else:
            what = f"{key} in {source} differs from the one the running server uses"
        status: Status = "warning" if key in _MINOR else "error"
        report.add(f"server.{key}", status, what, restart)
    if not found:
        report.add(
            "server.credentials",
            "ok",
            f"the running server uses the Rasa URL and credentials of {source}",
        )


def _outbox(config: RpaConfig, report: Report, outbox: dict[str, Any]) -> None:
    """Messages to Rasa that keep failing (errors) or were set aside (warnings)."""
    failing: list[dict[str, Any]] = outbox["failing"]
    dead: list[dict[str, Any]] = outbox["dead"]
    counts: dict[str, int] = outbox["counts"]
    for message in failing[:SHOWN]:
        report.add(
            "outbox.failing",
            "error",
            f"{_describe(message)} failed {message['attempts']} time(s) and is "
            f"being retried: {message['last_error']}",
            _fix_for(config, str(message["last_error"] or "")),
        )
    if len(failing) > SHOWN:
        report.add(
            "outbox.failing",
            "error",
            f"{len(failing) - SHOWN} more failing message(s) (or more)",
            "list them all: GET /rpa/v1/outbox?status=failing (admin API)",
        )
    for message in dead[:SHOWN]:
        seq = message["seq"]
        report.add(
            "outbox.dead",
            "warning",
            f"{_describe(message)} was set aside as dead: {message['last_error']}",
            f"once the cause is fixed, `rasa-rpa jobs replay {seq}`; to drop it "
            f"for good, `rasa-rpa jobs discard {seq}`",
        )
    if counts.get("dead", 0) > SHOWN:
        report.add(
            "outbox.dead",
            "warning",
            f"{counts['dead'] - SHOWN} more dead message(s)",
            "`rasa-rpa jobs replay --all-dead` or `rasa-rpa jobs discard --all-dead`",
        )
    if not failing and not dead:
        report.add(
            "outbox",
            "ok",
            f"no message to Rasa is failing or dead ({counts.get('pending', 0)} "
            f"pending, {counts.get('delivered', 0)} delivered)",
        )


def _describe(message: dict[str, Any]) -> str:
    return (
        f"message {message['seq']} to Rasa ({message['call']}, job {message['job_id']})"
    )


def _fix_for(config: RpaConfig, error: str) -> str:
    """What to do about a failing delivery, read from its last error."""
    source = config.source
    if "401" in error or "403" in error:
        return (
            "the server's rasa.token (or rasa.jwt_secret) is not the one Rasa "
            f"expects: correct it in {source} and restart the action server"
        )
    if "unreachable" in error or "no answer" in error:
        return f"start Rasa, or correct rasa.url in {source} and restart the server"
    return (
        "fix what the error says; the server retries the message until "
        "delivery.max_age, then sets it aside as dead"
    )
