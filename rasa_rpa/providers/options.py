"""Typed provider options: a pydantic model per provider, checked when rpa.yml loads.

A provider declares its ``providers.<name>`` keys as a subclass of
:class:`ProviderOptions` and names it in its ``Options`` class attribute.
The config loader finds the class through :mod:`rasa_rpa.registry` and
validates every entry before the action server starts, so a bad ``url`` or
``timeout`` stops start-up (and ``rasa-rpa check-config``) with the file,
the key and the fix, instead of failing the first job a user starts.

Built-in options refuse unknown keys (a typo is a mistake, not a no-op);
the base class keeps them, for third-party providers that have no model yet.
"""

from __future__ import annotations

import builtins
from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
)

from rasa_rpa.config import Duration
from rasa_rpa.errors import ConfigError

__all__ = [
    "HttpUrl",
    "OptionError",
    "ProviderOptions",
    "Required",
    "StrictOptions",
    "Timeout",
    "reveal",
]

_O = TypeVar("_O", bound="ProviderOptions")
_SEE = "see the provider's page under docs/providers/"


class OptionError(ValueError):
    """A problem a validator found, with the key to blame and the fix."""

    def __init__(self, key: str, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem
        self.fix = fix


def _http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value[:80]!r} is not an http(s) URL")
    return value.strip()


#: An absolute http(s) URL; placeholders such as ``{task}`` may follow the host.
HttpUrl = Annotated[str, AfterValidator(_http_url)]
#: A text that must not be empty (an unset ``${VAR:-}`` counts as missing).
Required = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: Seconds for one vendor call: ``10``, ``"10s"``, ``"500ms"``.
Timeout = Annotated[Duration, Field(gt=0)]


def reveal(secret: SecretStr | None) -> str | None:
    """The secret's text, or None when it is unset or empty."""
    value = secret.get_secret_value() if secret is not None else ""
    return value or None


class ProviderOptions(BaseModel):
    """Keys every provider has; subclasses add their own.

    ``fixes`` maps a key to the advice shown when it is wrong.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    fixes: ClassVar[dict[str, str]] = {
        "poll_interval": "write a duration such as 10s or 1m",
        "timeout": "write a duration such as 10s or 500ms",
        "url": "write the full URL, e.g. https://host/path",
    }

    type: str
    #: How often the reconciler asks the vendor about one unfinished job.
    poll_interval: Annotated[Duration, Field(gt=0)] = 10.0

    @classmethod
    def from_entry(
        cls: builtins.type[_O], name: str, entry: dict[str, Any], source: str
    ) -> _O:
        """The options of ``providers.<name>``, or ConfigError naming key and fix."""
        try:
            return cls.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            raised = (first.get("ctx") or {}).get("error")
            where = f"providers.{name}"
            if isinstance(raised, OptionError):
                raise ConfigError(
                    source,
                    f"{where}.{raised.key}" if raised.key else where,
                    raised.problem,
                    raised.fix or _SEE,
                ) from None
            loc = [str(part) for part in first["loc"]]
            key = ".".join([where, *loc])
            problem = first["msg"]
            if first["type"] == "missing":
                problem = "is required"
            elif first["type"] == "extra_forbidden":
                problem = "is not an option of this provider"
            fix = cls.fix_for(loc[0] if loc else "", first["type"])
            raise ConfigError(source, key, problem, fix) from None

    @classmethod
    def fix_for(cls, key: str, kind: str) -> str:
        """The advice for a wrong ``key`` (``kind`` is pydantic's error type)."""
        if kind == "extra_forbidden":
            return "remove it, or check its spelling on the provider's page in docs/"
        for klass in cls.__mro__:
            fixes = getattr(klass, "fixes", {})
            if key in fixes:
                return str(fixes[key])
        return _SEE


class StrictOptions(ProviderOptions):
    """Options of a built-in provider: unknown keys are refused by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)
