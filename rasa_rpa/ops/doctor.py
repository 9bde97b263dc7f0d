"""``rasa-rpa doctor``: find what keeps a deployment from working, and say the fix.

A bot that never hears back from its robot can fail in a dozen places: Rasa
down or started without ``--enable-api``, a token that does not match, a
domain without the ``EXTERNAL_rpa_job_*`` intents, a callback URL robots
cannot reach, a vendor secret that expired. Each shows up far from its cause
(a dead outbox message, a job that never starts), so the doctor asks every
party in turn and reports each :class:`Finding` with its cause and its fix.
When the action server runs, it is asked too (:mod:`rasa_rpa.ops.live`): the
server may hold other credentials than the file says, and failing deliveries.
Last, the job store: its size, and what retention would free
(:mod:`rasa_rpa.ops.storage`).

Secrets are never part of a finding: vendor errors come from
:class:`~rasa_rpa.errors.ProviderError`, whose messages are secret-free.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import yaml

from rasa_rpa.config import RasaSettings, RpaConfig, load_config
from rasa_rpa.errors import ConfigError, ProviderError, ProviderUnavailable
from rasa_rpa.listening import is_loopback
from rasa_rpa.models import JobEvent
from rasa_rpa.ops.domain_snippet import check_domain, load_domain_file
from rasa_rpa.ops.findings import Finding, Report, Status
from rasa_rpa.ops.live import LiveServer, read_live
from rasa_rpa.ops.storage import check_storage
from rasa_rpa.providers import Provider, provider_class

__all__ = ["Finding", "ProgressFn", "Report", "diagnose"]

#: ``progress(done, total, label)``: long checks report how far they are.
ProgressFn = Callable[[int, int, str], None]
#: How findings name the domain the running Rasa serves (``GET /domain``).
RASA_DOMAIN = "Rasa's domain"
_ENABLE_API = "start Rasa with --enable-api (and --auth-token <rasa.token>)"
#: What Rasa's answer to ``GET /status`` means, when it is not 200.
_STATUS: dict[int, tuple[str, Status, str, str]] = {
    404: ("rasa.api", "error", "Rasa's HTTP API is off", _ENABLE_API),
    405: ("rasa.api", "error", "Rasa's HTTP API is off", _ENABLE_API),
    403: (
        "rasa.api",
        "error",
        "Rasa (or a proxy before it) refuses the API to us",
        "start Rasa with --enable-api and use --auth-token, or an admin JWT",
    ),
    409: (
        "rasa.model",
        "warning",
        "Rasa runs without a trained model, so it cannot take any news",
        "train a model (rasa train) and restart Rasa with it",
    ),
}
#: Provider options that name where the vendor (and so its robots) lives.
_URL_OPTIONS = ("url", "service_key_url", "trigger_url_template")


def _rasa_auth(settings: RasaSettings) -> tuple[dict[str, str], dict[str, str]]:
    """Query parameters and headers, as the outbox dispatcher sends them."""
    params: dict[str, str] = {}
    headers: dict[str, str] = {}
    if settings.token is not None:
        params["token"] = settings.token.get_secret_value()
    if settings.jwt_secret is not None:
        bearer = jwt.encode(
            {"user": {"username": "rasa-rpa", "role": "admin"}},
            settings.jwt_secret.get_secret_value(),
            algorithm=settings.jwt_method,
        )
        headers["Authorization"] = f"Bearer {bearer}"
    return params, headers


async def _ignore(event: JobEvent) -> None:
    return None


class _Doctor:
    def __init__(self, config: RpaConfig, report: Report) -> None:
        self.config = config
        self.report = report

    async def rasa(self) -> dict[str, Any] | None:
        """Reachable, API on, credentials accepted; Rasa's domain if it gives it."""
        settings = self.config.rasa
        url = settings.url.rstrip("/")
        params, headers = _rasa_auth(settings)
        client = httpx.AsyncClient(base_url=url, timeout=settings.timeout)
        try:
            hello = await client.get("/")
            # Rasa's "/" says "Hello from Rasa: 3.6.21" (and is served API or not).
            _, said, version = hello.text.strip().strip('"').partition("Rasa: ")
            reached = f"Rasa {version if said else ''} answers at {url}"
            self.report.add("rasa.reachable", "ok", " ".join(reached.split()))
            status = await client.get("/status", params=params, headers=headers)
            if not self._api_status(url, status.status_code):
                return None
            accept = {**headers, "Accept": "application/json"}
            found = await client.get("/domain", params=params, headers=accept)
        except httpx.HTTPError as exc:
            self.report.add(
                "rasa.reachable",
                "error",
                f"nothing answers at rasa.url {url} ({type(exc).__name__})",
                "start Rasa (rasa run --enable-api --auth-token ...) or correct "
                f"rasa.url in {self.config.source}",
            )
            return None
        finally:
            await client.aclose()
        try:
            domain = found.json() if found.status_code == 200 else None
        except ValueError:
            domain = None
        if not isinstance(domain, dict):
            self.report.add(
                "rasa.domain",
                "warning",
                f"Rasa answered {found.status_code} for GET /domain, not a domain",
                "pass --domain domain.yml to check the file instead",
            )
            return None
        return domain

    def _api_status(self, url: str, code: int) -> bool:
        settings = self.config.rasa
        if code == 200:
            ok = "Rasa's HTTP API is on and accepts our credentials"
            self.report.add("rasa.api", "ok", ok)
            return True
        if code == 401:
            if settings.token is not None:
                cause = "rasa.token does not match Rasa's --auth-token"
                fix = "set rasa.token (or its variable) to Rasa's --auth-token"
            elif settings.jwt_secret is not None:
                cause = "rasa.jwt_secret does not match Rasa's --jwt-secret"
                fix = "set rasa.jwt_secret/jwt_method to Rasa's --jwt-secret/-method"
            else:
                cause = f"Rasa requires a token and {self.config.source} has none"
                fix = "set rasa.token to Rasa's --auth-token"
            self.report.add("rasa.token", "error", f"401 from {url}: {cause}", fix)
            return False
        check, status, cause, fix = _STATUS.get(
            code, ("rasa.api", "error", "unexpected answer", "check Rasa's log")
        )
        message = f"{url} answered {code} for GET /status: {cause}"
        self.report.add(check, status, message, fix)
        return False

    async def callbacks(self, live: LiveServer | None) -> None:
        """Robots reach ``public_url``; a loopback URL only works for local robots.

        With the running server's state, its own call to its public URL is
        the verdict (it runs where local robots run); without it, the doctor
        calls the URL from here. Either way an unreachable URL is an error:
        robots would run and never be heard.
        """
        check = "callbacks.public_url"
        source = self.config.source
        if live is not None:
            public = live.public_url.rstrip("/")
            if live.reachable:
                self.report.add(
                    check,
                    "ok",
                    f"robots reach the action server at {public} (tested from "
                    "the server itself)",
                )
            else:
                self.report.add(
                    check,
                    "error",
                    f"robots cannot call back: {live.problem} (tested from the "
                    "action server itself)",
                    f"set callbacks.public_url in {source} to an address that "
                    f"reaches the server (on its machine: {live.url}), then "
                    "restart it",
                )
        else:
            public = self.config.callbacks.public_url.rstrip("/")
            await self._from_here(public)
        remote = [
            name
            for name, settings in self.config.providers.items()
            if not all(
                is_loopback(str((settings.model_extra or {}).get(key) or ""))
                for key in _URL_OPTIONS
            )
        ]
        if is_loopback(public) and remote:
            self.report.add(
                check,
                "warning",
                f"{public} is this machine only, but the robots of "
                f"{', '.join(remote)} run elsewhere and cannot call back",
                f"set callbacks.public_url in {source} to an address those "
                "robots can reach",
            )

    async def _from_here(self, public: str) -> None:
        health = f"{public}/rpa/health"
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(health)
        except httpx.HTTPError as exc:
            self.report.add(
                "callbacks.public_url",
                "error",
                f"nothing answers at {health} ({type(exc).__name__}): the action "
                "server is not running, or robots would call another address",
                "start it (rasa-rpa run), or set callbacks.public_url in "
                f"{self.config.source} to where robots reach it",
            )
        else:
            self._health(health, response)

    def _health(self, url: str, response: httpx.Response) -> None:
        if response.status_code != 200:
            self.report.add(
                "callbacks.public_url",
                "error",
                f"{url} answered {response.status_code}: the server there does not "
                "run rasa-rpa",
                "start the action server with `rasa-rpa run` (or add the "
                "rasa_sdk_plugins shim), or correct callbacks.public_url in "
                f"{self.config.source}",
            )
            return
        self.report.add("callbacks.public_url", "ok", f"the plugin answers at {url}")
        try:
            dead = int(response.json().get("outbox", {}).get("dead", 0))
        except (ValueError, AttributeError, TypeError):
            dead = 0
        if dead:
            self.report.add(
                "outbox",
                "warning",
                f"{dead} message(s) never reached Rasa and were set aside",
                "see why with `rasa-rpa jobs show <job>`, then `rasa-rpa jobs "
                "replay --all-dead` (or `rasa-rpa jobs discard --all-dead`)",
            )

    async def providers(self, progress: ProgressFn | None) -> None:
        """Build each provider, ask its vendor for a token, find every task."""
        total = len(self.config.providers)
        for done, (name, settings) in enumerate(self.config.providers.items()):
            if progress:
                progress(done, total, f"provider {name}")
            check = f"providers.{name}"
            try:
                cls = provider_class(settings.type, source=self.config.source)
                provider = cls(name, settings, self.config, _ignore)
            except ConfigError as exc:
                fix = exc.fix or "see the provider's page under docs/providers/"
                self.report.add(check, "error", f"{exc.key}: {exc.problem}", fix)
                continue
            try:
                await self._provider(check, provider)
            except ProviderUnavailable as exc:
                fix = "check the URL, the network, and that the service is up"
                self.report.add(check, "error", exc.message, fix)
            except ProviderError as exc:
                source = self.config.source
                fix = f"correct the credentials of providers.{name} in {source}"
                self.report.add(check, "error", exc.message, fix)
            finally:
                await provider.aclose()
        if progress:
            progress(total, total, "providers checked")

    async def _provider(self, check: str, provider: Provider) -> None:
        """Ask the provider's own :meth:`~Provider.diagnose`; file its verdicts."""
        automations: dict[str, list[str]] = {}
        for name, settings in self.config.automations.items():
            if settings.provider == provider.name:
                automations.setdefault(settings.task, []).append(name)
        for found in await provider.diagnose(list(automations)):
            if found.task is None:
                self.report.add(check, found.status, found.message, found.fix)
                continue
            for name in automations.get(found.task, []):
                where = f"automations.{name}"
                task_key = f"{where}.task"
                fix = found.fix.replace("{task_key}", task_key) or f"correct {task_key}"
                self.report.add(where, found.status, found.message, fix)


async def diagnose(
    config_path: str | Path | None,
    domain_path: str | Path | None = None,
    *,
    progress: ProgressFn | None = None,
    server: str | None = None,
) -> Report:
    """Run every check; the report says what is wrong and how to fix it.

    ``server``: the running action server's base URL, if the doctor is not
    to look for it (where ``rasa-rpa run`` recorded it, then public_url).
    """
    report = Report()
    config: RpaConfig | None = None
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        where = f"{exc.source}: {exc.key}" if exc.key else exc.source
        # A provider's options are checked at load: file it under the provider.
        parts = exc.key.split(".")
        check = ".".join(parts[:2]) if parts[0] == "providers" else "config"
        report.add(check, "error", f"{where}: {exc.problem}", exc.fix)
    else:
        providers = ", ".join(sorted(config.providers))
        summary = f"{len(config.automations)} automation(s), providers: {providers}"
        report.add("config", "ok", f"{config.source}: {summary}")
        if not config.automations:
            report.add(
                "automations",
                "warning",
                "no automations: action_start_rpa_job has nothing to start",
                f"add automations: to {config.source}",
            )
    doctor = _Doctor(config, report) if config else None
    from_rasa = await doctor.rasa() if doctor else None
    default = (config.base_dir if config else Path.cwd()) / "domain.yml"
    if domain_path is not None:
        _domain_file(Path(domain_path), config, report)
    elif from_rasa is not None:
        _domain(from_rasa, RASA_DOMAIN, config, report)
    elif default.is_file():
        _domain_file(default, config, report)
    else:
        report.add(
            "domain",
            "warning",
            "the domain was not checked: Rasa did not give it and no file was named",
            "pass --domain domain.yml",
        )
    if doctor is not None:
        live = await read_live(doctor.config, report, server)
        await doctor.callbacks(live)
        await doctor.providers(progress)
        await check_storage(doctor.config, report)
    return report


def _domain(
    domain: dict[str, Any], source: str, config: RpaConfig | None, report: Report
) -> None:
    problems = check_domain(domain, source, config)
    for check, status, cause, fix in problems:
        if source == RASA_DOMAIN:
            # The running Rasa serves the model it started with: the most
            # common cause is an edit made since, not a missing one.
            fix += "; if domain.yml has it already, train and restart Rasa"
        report.add(check, "error" if status == "error" else "warning", cause, fix)
    if not problems:
        report.add("domain", "ok", f"{source} holds everything rasa-rpa needs")


def _domain_file(path: Path, config: RpaConfig | None, report: Report) -> None:
    try:
        domain = load_domain_file(path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        report.add(
            "domain",
            "error",
            f"cannot read {path}: {type(exc).__name__}: {str(exc)[:200]}",
            "pass --domain with the bot's domain.yml (or its domain folder)",
        )
        return
    _domain(domain, str(path), config, report)
