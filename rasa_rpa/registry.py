"""Where provider types are found: the built-ins and third parties' entry points.

Built-ins are lazy ``"module:Class"`` paths; third parties add theirs under
the ``rasa_rpa.providers`` entry-point group, so a backend's dependencies are
imported only when rpa.yml uses it. This module imports no provider, so the
config can check ``providers.*.type`` without depending on the providers
(which depend on the config).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from rasa_rpa.configvalues import DEFAULT_CONFIG
from rasa_rpa.errors import ConfigError

if TYPE_CHECKING:
    from rasa_rpa.providers.base import Provider

__all__ = [
    "BUILTIN_PROVIDERS",
    "check_provider_options",
    "known_provider_types",
    "provider_class",
]

BUILTIN_PROVIDERS = {
    "local": "rasa_rpa.providers.local:LocalRobotProvider",
    "uipath": "rasa_rpa.providers.uipath:UiPathProvider",
    "sap": "rasa_rpa.providers.sap:SapProvider",
    "automation_anywhere": (
        "rasa_rpa.providers.automation_anywhere:AutomationAnywhereProvider"
    ),
    "webhook": "rasa_rpa.providers.webhook:WebhookProvider",
    "robocorp": "rasa_rpa.providers.robocorp:RobocorpProvider",
    "power_automate": "rasa_rpa.providers.power_automate:PowerAutomateProvider",
}


def _registry() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group="rasa_rpa.providers")}
    return {**found, **BUILTIN_PROVIDERS}


def known_provider_types() -> set[str]:
    """Every provider ``type:`` rpa.yml may name."""
    return set(_registry())


def check_provider_options(name: str, entry: dict[str, Any], source: str) -> None:
    """Validate ``providers.<name>`` against its class's ``Options`` model.

    Imports the provider's module (lazily, here rather than in the config,
    which the providers themselves import); raises ConfigError naming
    ``source``, the key and the fix.
    """
    cls = provider_class(str(entry.get("type")), source=source)
    cls.Options.from_entry(name, entry, source)


def provider_class(type_name: str, *, source: str = DEFAULT_CONFIG) -> type[Provider]:
    """The class for ``type_name``, imported on first use.

    ``source`` is the config file that names the type, for the error.
    """
    target = _registry().get(type_name)
    if target is None:
        raise ConfigError(
            source,
            "providers.*.type",
            f"unknown provider type {type_name!r}",
            f"use one of: {', '.join(sorted(_registry()))}",
        )
    module, _, name = target.partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module), name)
    return cls
