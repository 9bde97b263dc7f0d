"""rasa-rpa: start RPA jobs from a Rasa conversation, bring their news back into it."""

from __future__ import annotations

from rasa_rpa.config import RpaConfig, load_config
from rasa_rpa.errors import (
    AuthenticationFailed,
    CallbackError,
    ConfigError,
    DeliveryError,
    DeliveryRejected,
    Forbidden,
    InvalidPayload,
    JobLimitReached,
    JobNotFound,
    ProviderError,
    ProviderUnavailable,
    QuestionNotFound,
    RateLimited,
    RpaError,
    StoreError,
    UnsendableInput,
)
from rasa_rpa.models import EventType, Job, JobEvent, JobState
from rasa_rpa.providers.base import Provider, StartRequest

__version__ = "0.1.0"

# Every exception of rasa_rpa.errors is public and listed here (a test holds
# this list to that module's tree), so `except rasa_rpa.X` works for each.
__all__ = [
    "AuthenticationFailed",
    "CallbackError",
    "ConfigError",
    "DeliveryError",
    "DeliveryRejected",
    "EventType",
    "Forbidden",
    "InvalidPayload",
    "Job",
    "JobEvent",
    "JobLimitReached",
    "JobNotFound",
    "JobState",
    "Provider",
    "ProviderError",
    "ProviderUnavailable",
    "QuestionNotFound",
    "RateLimited",
    "RpaConfig",
    "RpaError",
    "StartRequest",
    "StoreError",
    "UnsendableInput",
    "__version__",
    "load_config",
]
