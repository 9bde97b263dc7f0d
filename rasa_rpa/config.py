"""``rpa.yml``: what a bot can automate, with which provider, and where things live.

The file is YAML with ``${ENV_VAR}`` and ``${ENV_VAR:-default}`` placeholders,
so secrets stay in the environment. Every mistake is reported as a
:class:`~rasa_rpa.errors.ConfigError` naming the file, the dotted key and the
fix, before the action server takes its first request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from rasa_rpa.configfiles import (
    DEFAULT_CONTENT_TYPES,
    FileSettings,
    RetentionSettings,
)
from rasa_rpa.configvalues import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    PUBLIC_URL_ENV,
    Duration,
    fix_for,
    interpolate,
    nested_secrets,
    parse_duration,
)
from rasa_rpa.errors import ConfigError
from rasa_rpa.registry import check_provider_options, known_provider_types

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "DEFAULT_CONTENT_TYPES",
    "PUBLIC_URL_ENV",
    "Automation",
    "Duration",
    "FileSettings",
    "InputSource",
    "RetentionSettings",
    "RpaConfig",
    "ServerSettings",
    "config_from_dict",
    "find_config_path",
    "load_config",
    "parse_duration",
    "secret_values",
]


class _Model(BaseModel):
    # Unknown keys are typos until proven otherwise: refuse them by name.
    model_config = ConfigDict(extra="forbid", frozen=True)


class RasaSettings(_Model):
    """How to reach the Rasa server's HTTP API (``rasa run --enable-api``)."""

    url: str = "http://127.0.0.1:5005"
    token: SecretStr | None = None
    jwt_secret: SecretStr | None = None
    jwt_method: str = "HS256"
    timeout: Duration = 10.0


class CallbackSettings(_Model):
    """How robots call back, and how their calls are checked."""

    public_url: str = "http://127.0.0.1:5055"
    #: Master key for per-job tokens and signing secrets; generated if empty.
    secret: SecretStr | None = None

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and 0 < len(value.get_secret_value()) < 16:
            raise ValueError(
                "must be at least 16 characters (or empty to generate one)"
            )
        return value

    #: Extra Standard Webhooks secrets accepted for every job (integrations).
    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    token_ttl: Duration = 24 * 3600.0
    #: How long after a job ends its credential still works (late retries).
    grace: Duration = 300.0
    tolerance: Duration = 300.0
    max_body_bytes: int = 256 * 1024
    #: Longest a callback's whole body may take to arrive (408 and closed after):
    #: a client sending a byte at a time must not hold a connection for ever.
    body_timeout: Duration = Field(default=30.0, gt=0)
    #: Sustained callbacks per second one job may make (a token bucket).
    rate_limit: float = Field(default=50.0, gt=0)
    #: Callbacks a job may make in a burst above the sustained rate.
    rate_burst: int = Field(default=200, ge=1)


class ServerSettings(_Model):
    """Limits of the action server as a whole (rasa-rpa sets them on the app)."""

    #: Largest request body on any route, Rasa's /webhook included (Sanic's
    #: REQUEST_MAX_SIZE, 100 MB by default, bounds buffered memory per request).
    #: Rasa posts the whole tracker, every event since the conversation began,
    #: at ~2-5 KB per turn: 16 MiB fits some 3,000+ turns, and eight requests
    #: at the limit cost ~128 MB, not the gigabyte 100 MB bodies could. (Under
    #: 64 KiB Sanic would shrink its 8 KiB header limit too.)
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024)
    #: Longest a client may take to send a request's head (request line and
    #: headers), counted from the connection opening or the previous answer;
    #: also what an idle keep-alive connection is given. Sanic's own timeouts
    #: restart at every byte, so a line every few seconds would never end.
    head_timeout: Duration = Field(default=30.0, gt=0)


class HandoverSettings(_Model):
    """Hand a conversation to a human when a job fails (off without ``intent``)."""

    #: The intent to trigger after the failure, e.g. EXTERNAL_handover_to_human.
    intent: str | None = None
    states: tuple[Literal["failed", "expired", "cancelled"], ...] = (
        "failed",
        "expired",
    )


class AdminSettings(_Model):
    """The operator API (job listing, dead letters, replay)."""

    #: Bearer token for /rpa/v1/jobs and /rpa/v1/outbox; the API is off without it.
    token: SecretStr | None = None


class StoreSettings(_Model):
    """Where jobs, events and the outbox live."""

    url: str = "sqlite:///.rasa-rpa/jobs.db"


class DeliverySettings(_Model):
    """How the outbox is sent to Rasa."""

    poll_interval: Duration = 0.5
    initial_backoff: Duration = 0.5
    max_backoff: Duration = 30.0
    concurrency: int = Field(default=8, ge=1)
    #: A message still undelivered after this long is set aside as dead.
    max_age: Duration = 24 * 3600.0
    #: When progress updates of one job pile up behind a slow Rasa, send only
    #: the newest: the user hears the latest figure sooner, not every step.
    coalesce_progress: bool = True


class ReconcilerSettings(_Model):
    """How often jobs that are not final are checked (expiry, polling)."""

    interval: Duration = 2.0
    #: Upper bound on vendor status calls in flight at once.
    max_concurrent_polls: int = Field(default=8, ge=1)


class ProviderSettings(_Model):
    """A configured provider: its ``type`` picks the implementation."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str


class InputSource(_Model):
    """Where one automation input comes from; exactly one of the first three."""

    slot: str | None = None
    entity: str | None = None
    value: Any = None
    default: Any = None
    required: bool = False
    #: How the user is asked for it when missing ("the customer's name");
    #: the input's key otherwise.
    description: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> InputSource:
        given = [k for k in ("slot", "entity", "value") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of slot, entity or value, not {given}")
        return self


def _input_shorthand(value: Any) -> Any:
    # `customer: ACME` is a literal; the long form is a mapping.
    return value if isinstance(value, dict) else {"value": value}


class Automation(_Model):
    """A task the bot can start."""

    provider: str = "local"
    #: The provider's name for the work: a .robot file, a process key, a trigger.
    task: str
    description: str = ""
    intent: str | None = None
    action: str | None = None
    inputs: dict[str, Annotated[InputSource, BeforeValidator(_input_shorthand)]] = (
        Field(default_factory=dict)
    )
    timeout: Duration = 600.0
    #: Jobs of this automation one conversation may have unfinished (pending
    #: or running) at once; a start beyond it is refused, and the user told
    #: the earlier job still runs. Repeating a phrase must not fork robots.
    max_running: int = Field(default=1, ge=1)
    #: Take part in ``handover`` when this automation fails.
    handover: bool = True


class RpaConfig(_Model):
    """The whole of ``rpa.yml``."""

    version: Literal[1] = 1
    rasa: RasaSettings = Field(default_factory=RasaSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    reconciler: ReconcilerSettings = Field(default_factory=ReconcilerSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    handover: HandoverSettings = Field(default_factory=HandoverSettings)
    files: FileSettings = Field(default_factory=FileSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    providers: dict[str, ProviderSettings] = Field(
        default_factory=lambda: {"local": ProviderSettings(type="local")}
    )
    automations: dict[str, Automation] = Field(default_factory=dict)
    #: Directory relative paths are resolved against (the config file's).
    base_dir: Path = Path(".")
    #: The file this config was read from, as given; every error names it.
    source: str = DEFAULT_CONFIG

    @property
    def state_dir(self) -> Path:
        """Where the plugin keeps its files (SQLite store, run folders, key)."""
        return self.base_dir / ".rasa-rpa"

    @property
    def files_url(self) -> str:
        """Where users' browsers reach download links (no trailing slash)."""
        return (self.files.public_url or self.callbacks.public_url).rstrip("/")

    def titles(self) -> dict[str, str]:
        """Each automation's name for users: its ``description``, else its key."""
        return {
            name: automation.description or name
            for name, automation in self.automations.items()
        }

    def automation_for_intent(
        self, intent: str | None
    ) -> tuple[str, Automation] | None:
        """The automation started by ``intent``, if any."""
        for name, automation in self.automations.items():
            if intent is not None and automation.intent == intent:
                return name, automation
        return None

    def resolve_path(self, value: str | Path) -> Path:
        """``value`` made absolute against the config file's directory."""
        path = Path(value)
        return path if path.is_absolute() else self.base_dir / path

    def error(self, key: str, problem: str, fix: str) -> ConfigError:
        """The error for a mistake at ``key`` of this config, to be raised.

        The one way code holding a config reports a mistake in it (providers
        checking their options, the job service an automation's name): the
        message names the file this config was read from, never a guess.
        """
        return ConfigError(self.source, key, problem, fix)


def secret_values(config: RpaConfig) -> list[str]:
    """Every secret the config holds, so logs can hide them."""
    values = [
        s.get_secret_value()
        for s in (
            config.rasa.token,
            config.rasa.jwt_secret,
            config.callbacks.secret,
            config.admin.token,
            *config.callbacks.webhook_secrets,
        )
        if s is not None
    ]
    password = urlsplit(config.store.url).password
    if password:
        values += [password, unquote(password)]
    for provider in config.providers.values():
        values += nested_secrets(provider.model_extra or {})
    return [v for v in values if v]


def find_config_path(explicit: str | Path | None = None) -> Path:
    """The config file to use: argument, then ``$RASA_RPA_CONFIG``, then ./rpa.yml."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: str | Path | None = None) -> RpaConfig:
    """Read, interpolate and validate ``rpa.yml``; raise ConfigError on any mistake."""
    file = find_config_path(path)
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            source,
            "",
            f"file not found (looked in {file.parent.resolve()})",
            "run the command from the bot's folder, pass --config FILE, or set "
            f"{CONFIG_ENV}; `rasa-rpa init` writes one for a new bot",
        ) from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            source, "", f"not valid YAML ({exc})", "fix the syntax"
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(
            source,
            "",
            "the top level must be a mapping",
            "write the settings as `key: value` lines, e.g. `version: 1`",
        )
    callbacks = raw.get("callbacks") or {}
    default_url = os.environ.get(PUBLIC_URL_ENV)
    if default_url and isinstance(callbacks, dict) and "public_url" not in callbacks:
        # `rasa-rpa run --port N` for a config that names no public URL.
        raw["callbacks"] = {**callbacks, "public_url": default_url}
    return config_from_dict(raw, source=source, base_dir=file.resolve().parent)


def config_from_dict(
    raw: dict[str, Any], *, source: str = DEFAULT_CONFIG, base_dir: Path | None = None
) -> RpaConfig:
    """Validate an already-parsed config (tests and embedding use this)."""
    data = interpolate(raw, source)
    data["base_dir"] = base_dir or Path.cwd()
    data["source"] = source
    try:
        config = RpaConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(source, key, first["msg"], fix_for(first)) from None
    _check_references(config)
    return config


def _check_references(config: RpaConfig) -> None:
    """What one part of the config says about another (names, not shapes)."""
    types = known_provider_types()
    for name, provider in config.providers.items():
        if provider.type not in types:
            raise config.error(
                f"providers.{name}.type",
                f"unknown provider type {provider.type!r}",
                f"use one of: {', '.join(sorted(types))}",
            )
        # Each provider's own options model: a bad url or timeout stops
        # start-up here, not the first job.
        check_provider_options(name, provider.model_dump(), config.source)
    for name, automation in config.automations.items():
        if automation.provider not in config.providers:
            raise config.error(
                f"automations.{name}.provider",
                f"no provider named {automation.provider!r}",
                f"declare it under providers: or use one of: "
                f"{', '.join(sorted(config.providers))}",
            )
    if config.rasa.token is None and config.rasa.jwt_secret is None:
        return
    if config.rasa.token is not None and not config.rasa.token.get_secret_value():
        raise config.error(
            "rasa.token",
            "is empty",
            "set the environment variable it refers to, or remove the key",
        )
