"""How rpa.yml's text becomes values: placeholders, durations, secrets, fixes.

Kept apart from :mod:`rasa_rpa.config` (the schema) because these helpers
know nothing of the schema: providers parse their durations with them, and
modules below the config (the registry, the stores) name the default file
without importing the config and its providers' registry.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from rasa_rpa.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "PUBLIC_URL_ENV",
    "Duration",
    "fix_for",
    "interpolate",
    "nested_secrets",
    "parse_duration",
]

#: Environment variable naming the config file (default: ./rpa.yml).
CONFIG_ENV = "RASA_RPA_CONFIG"
#: The config file read when none is named; also the ``source`` of configs
#: built from a dict. Errors name the file actually read (``RpaConfig.source``).
DEFAULT_CONFIG = "rpa.yml"
#: ``callbacks.public_url`` for a config that sets none: ``rasa-rpa run``
#: puts its own address here for its workers (see rasa_rpa.listening).
PUBLIC_URL_ENV = "RASA_RPA_PUBLIC_URL"

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_SECRET_KEY = re.compile(
    r"secret|password|token|api[_-]?key|key$|authorization|signature", re.IGNORECASE
)


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h"`` or ``"250ms"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 5m or 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration)]


def interpolate(value: Any, source: str, path: tuple[str, ...] = ()) -> Any:
    """``value`` with every ``${NAME}`` / ``${NAME:-default}`` filled in.

    Raises:
        ConfigError: a variable without a default is not set; it names the
            dotted key in ``source`` where the placeholder is.
    """
    if isinstance(value, dict):
        return {k: interpolate(v, source, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, source, (*path, str(i))) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(
            source,
            ".".join(path),
            f"environment variable {name} is not set",
            f"export {name}=... or write ${{{name}:-default}}",
        )

    return _PLACEHOLDER.sub(substitute, value)


def nested_secrets(options: dict[str, Any]) -> list[str]:
    """The values of secret-looking keys in a provider's free-form options."""
    found: list[str] = []
    for key, value in options.items():
        if isinstance(value, dict):
            found += nested_secrets(value)
        elif (
            isinstance(value, str)
            and _SECRET_KEY.search(key)
            and not key.lower().endswith("_url")  # a URL is an address, not a secret
        ):
            found.append(value)
    return found


def fix_for(error: Any) -> str:
    """The fix for one of pydantic's validation errors (its ``errors()`` items)."""
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "remove the key, or check its spelling in docs/configuration.md"
    if kind == "missing":
        return "add the key"
    if kind == "literal_error":
        return "use version: 1"
    return "see docs/configuration.md"
