"""Providers: one contract (:mod:`.base`) and one module per RPA backend.

The registry that maps rpa.yml's ``type:`` to a class is
:mod:`rasa_rpa.registry`; it is re-exported here.
"""

from __future__ import annotations

from rasa_rpa.providers.base import EventSink, Provider, StartRequest
from rasa_rpa.registry import BUILTIN_PROVIDERS, known_provider_types, provider_class

__all__ = [
    "BUILTIN_PROVIDERS",
    "EventSink",
    "Provider",
    "StartRequest",
    "known_provider_types",
    "provider_class",
]
