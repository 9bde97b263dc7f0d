"""The rasa-sdk actions a bot uses: start, status and cancel.

``action_start_rpa_job`` picks the automation whose ``intent`` matches the
user's latest intent (or the only one configured), fills its inputs from
slots, entities and literals, and returns as soon as the provider accepted
the job: the conversation is locked while an action runs, and the robot's
news can only arrive once it is free.

Replies use the bot's responses when the domain has them (so they can be
reworded and translated the Rasa way) and plain text otherwise.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from rasa_rpa.config import Automation, RpaConfig
from rasa_rpa.errors import ProviderError, StoreError
from rasa_rpa.models import Job, JobState
from rasa_rpa.runtime import current_runtime

__all__ = [
    "ActionCancelRpaJob",
    "ActionRpaJobStatus",
    "ActionStartRpaJob",
    "define_automation_actions",
    "describe_job",
    "render_inputs",
]

log = logging.getLogger(__name__)
DomainDict = dict[str, Any]
Events = list[dict[str, Any]]
#: The slot holding the conversation's latest job id.
JOB_SLOT = "rpa_job_id"
RECORDS_UNAVAILABLE = "my job records are unavailable right now; please try again soon"


def say(
    dispatcher: CollectingDispatcher,
    domain: DomainDict,
    response: str,
    text: str,
    **variables: Any,
) -> None:
    """Utter ``response`` if the domain defines it, else ``text``."""
    if response in (domain.get("responses") or {}):
        dispatcher.utter_message(response=response, **variables)
    else:
        dispatcher.utter_message(text=text)


def records_unavailable(
    dispatcher: CollectingDispatcher, domain: DomainDict, error: StoreError
) -> Events:
    """Tell the user the job store failed; log why. Rasa gets an answer, no 500.

    The store also fails on what it cannot hold, such as a NUL byte in a
    conversation id on PostgreSQL, so this is not only for outages.
    """
    log.warning("the job store failed: %s", error)
    say(
        dispatcher,
        domain,
        "utter_rpa_records_unavailable",
        f"Sorry, {RECORDS_UNAVAILABLE}.",
    )
    return []


def render_inputs(
    automation: Automation, tracker: Tracker
) -> tuple[dict[str, Any], list[str]]:
    """The automation's inputs from this conversation, and the required ones missing."""
    values: dict[str, Any] = {}
    missing: list[str] = []
    for name, source in automation.inputs.items():
        value: Any = None
        if source.slot is not None:
            value = tracker.get_slot(source.slot)
        elif source.entity is not None:
            value = next(tracker.get_latest_entity_values(source.entity), None)
        else:
            value = source.value
        if value is None:
            value = source.default
        if value is None and source.required:
            missing.append(name)
        values[name] = value
    return values, missing


def describe_job(job: Job, now: float | None = None) -> str:
    """One sentence a user understands: state, progress, last news, elapsed time."""
    elapsed = _duration(job.elapsed(now))
    if job.state is JobState.PENDING:
        return f"Your {job.automation} job is queued (for {elapsed} so far)."
    if job.state is JobState.RUNNING:
        progress = f", {job.progress:.0f}% done" if job.progress is not None else ""
        news = f" Latest: {job.message}." if job.message else ""
        return f"Your {job.automation} job is running{progress} ({elapsed}).{news}"
    if job.state is JobState.SUCCEEDED:
        return f"Your {job.automation} job finished successfully after {elapsed}."
    reason = f": {job.error}" if job.error else ""
    return f"Your {job.automation} job {job.state.value} after {elapsed}{reason}."


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ActionStartRpaJob(Action):
    """Start the automation the user asked for."""

    #: Set on per-automation subclasses (see define_automation_actions).
    automation: ClassVar[str | None] = None

    def name(self) -> str:
        return "action_start_rpa_job"

    def choose(self, config: RpaConfig, tracker: Tracker) -> str | None:
        """The automation to start: fixed, by latest intent, or the only one."""
        if self.automation:
            return self.automation
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        found = config.automation_for_intent(intent)
        if found:
            return found[0]
        if len(config.automations) == 1:
            return next(iter(config.automations))
        return None

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        runtime = current_runtime()
        name = self.choose(runtime.config, tracker)
        if name is None:
            say(
                dispatcher,
                domain,
                "utter_rpa_unknown_automation",
                "Sorry, I don't know which task to run for that.",
            )
            return []
        automation = runtime.config.automations[name]
        inputs, missing = render_inputs(automation, tracker)
        label = automation.description or name
        if missing:
            say(
                dispatcher,
                domain,
                "utter_rpa_missing_inputs",
                f"To start {label} I need: {', '.join(missing)}.",
                rpa_automation=name,
                rpa_missing=", ".join(missing),
            )
            return []
        try:
            job = await runtime.service.start_job(
                name,
                tracker.sender_id,
                inputs,
                output_channel=tracker.get_latest_input_channel(),
            )
        except ProviderError as exc:
            # user_message, not message: the latter names URLs and paths,
            # which are for the log (the service logged them with the job id).
            reason = exc.user_message
            events = [SlotSet(JOB_SLOT, exc.job_id)] if exc.job_id else []
        except StoreError:
            reason = RECORDS_UNAVAILABLE
            events = []
        except Exception:
            # Last resort: whatever else went wrong, Rasa gets an answer, not a 500.
            log.exception(
                "starting %s failed", name, extra={"conversation_id": tracker.sender_id}
            )
            reason = "something went wrong on my side"
            events = []
        else:
            say(
                dispatcher,
                domain,
                "utter_rpa_job_started",
                f"OK, I started {label} (job {job.id[:8]}). I'll keep you posted.",
                rpa_automation=name,
                rpa_job_id=job.id,
                rpa_job_ref=job.id[:8],
            )
            return [SlotSet(JOB_SLOT, job.id)]
        say(
            dispatcher,
            domain,
            "utter_rpa_job_start_failed",
            f"Sorry, I couldn't start {label}: {reason}.",
            rpa_automation=name,
            rpa_error=reason,
        )
        return events


class ActionRpaJobStatus(Action):
    """Answer "is my job done?" for this conversation's latest job."""

    def name(self) -> str:
        return "action_rpa_job_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        try:
            job = await current_runtime().store.latest_job(tracker.sender_id)
        except StoreError as exc:
            return records_unavailable(dispatcher, domain, exc)
        if job is None:
            say(
                dispatcher,
                domain,
                "utter_rpa_no_job",
                "You have not started any job in this conversation.",
            )
            return []
        status = describe_job(job, time.time())
        say(
            dispatcher,
            domain,
            "utter_rpa_job_status",
            status,
            rpa_status=status,
            rpa_automation=job.automation,
            rpa_state=job.state.value,
        )
        return []


class ActionCancelRpaJob(Action):
    """Cancel this conversation's latest job."""

    def name(self) -> str:
        return "action_cancel_rpa_job"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        runtime = current_runtime()
        try:
            job = await runtime.store.latest_job(tracker.sender_id)
        except StoreError as exc:
            return records_unavailable(dispatcher, domain, exc)
        if job is None:
            say(
                dispatcher,
                domain,
                "utter_rpa_no_job",
                "You have not started any job in this conversation.",
            )
            return []
        if job.state.is_final:
            say(
                dispatcher,
                domain,
                "utter_rpa_job_already_finished",
                f"Your {job.automation} job already ended ({job.state.value}).",
                rpa_automation=job.automation,
                rpa_state=job.state.value,
            )
            return []
        try:
            cancelled = await runtime.service.cancel_job(job)
        except StoreError as exc:
            return records_unavailable(dispatcher, domain, exc)
        except ProviderError:
            # The reason (vendor answer, ids) is in the log for the operator.
            say(
                dispatcher,
                domain,
                "utter_rpa_job_cancel_failed",
                f"Sorry, I could not stop your {job.automation} job. It may "
                "still be running.",
                rpa_automation=job.automation,
            )
            return []
        if cancelled.state is not JobState.CANCELLED:  # it ended meanwhile
            say(
                dispatcher,
                domain,
                "utter_rpa_job_already_finished",
                f"Your {job.automation} job already ended ({cancelled.state.value}).",
                rpa_automation=job.automation,
                rpa_state=cancelled.state.value,
            )
            return []
        say(
            dispatcher,
            domain,
            "utter_rpa_job_cancelling",
            f"OK, I'm stopping your {job.automation} job.",
            rpa_automation=job.automation,
        )
        return []


def define_automation_actions(config: RpaConfig) -> list[type[ActionStartRpaJob]]:
    """One start action per automation that names an ``action:`` in rpa.yml.

    Call it from your actions package at import time; rasa-sdk registers
    every Action subclass it can see.
    """
    defined: list[type[ActionStartRpaJob]] = []
    for automation_name, automation in config.automations.items():
        if not automation.action:
            continue
        action_name = automation.action

        def name(self: ActionStartRpaJob, _n: str = action_name) -> str:
            return _n

        cls = type(
            f"ActionStart_{automation_name}",
            (ActionStartRpaJob,),
            {"automation": automation_name, "name": name, "__module__": __name__},
        )
        defined.append(cls)
    return defined
