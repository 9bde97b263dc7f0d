"""The rasa-sdk actions a bot uses: start, status and cancel.

``action_start_rpa_job`` picks the automation whose ``intent`` matches the
user's latest intent (or the only one configured), fills its inputs from
slots, entities and literals, and returns as soon as the provider accepted
the job: the conversation is locked while an action runs, and the robot's
news can only arrive once it is free. It starts nothing while the
conversation has the automation's ``max_running`` jobs unfinished, so a
repeated request cannot fork robots; status and cancel act on every
unfinished job of the conversation, so none escapes the user.

Replies use the bot's responses when the domain has them (so they can be
reworded and translated the Rasa way) and plain text otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from rasa_rpa.config import Automation, RpaConfig
from rasa_rpa.errors import JobLimitReached, ProviderError, StoreError
from rasa_rpa.models import Job, JobState
from rasa_rpa.replies import (
    RECORDS_UNAVAILABLE,
    DomainDict,
    automations_of,
    describe_job,
    describe_jobs,
    records_unavailable,
    say,
)
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
Events = list[dict[str, Any]]
#: The slot holding the conversation's latest job id.
JOB_SLOT = "rpa_job_id"
#: Most unfinished jobs of one conversation the status and cancel actions read.
MOST_UNFINISHED = 100


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


async def conversation_jobs(tracker: Tracker) -> tuple[list[Job], Job | None]:
    """The conversation's unfinished jobs (newest first) and its latest job."""
    store = current_runtime().store
    jobs = await store.list_jobs(
        conversation_id=tracker.sender_id, unfinished=True, limit=MOST_UNFINISHED
    )
    return jobs, jobs[0] if jobs else await store.latest_job(tracker.sender_id)


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
        except JobLimitReached as exc:
            return self.already_running(dispatcher, domain, name, label, exc)
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

    @staticmethod
    def already_running(
        dispatcher: CollectingDispatcher,
        domain: DomainDict,
        name: str,
        label: str,
        refusal: JobLimitReached,
    ) -> Events:
        """No new job: say the earlier one still runs; the slot keeps naming it."""
        newest, count = refusal.running[0], len(refusal.running)
        which = f"Your {label} job is" if count == 1 else f"{count} {label} jobs are"
        say(
            dispatcher,
            domain,
            "utter_rpa_job_already_running",
            f"{which} still running, so I did not start another one. "
            "I'll keep you posted.",
            rpa_automation=name,
            rpa_job_id=newest.id,
            rpa_job_ref=newest.id[:8],
            rpa_count=count,
        )
        return [SlotSet(JOB_SLOT, newest.id)]


class ActionRpaJobStatus(Action):
    """Answer "is my job done?": every unfinished job, else the latest one."""

    def name(self) -> str:
        return "action_rpa_job_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        try:
            unfinished, latest = await conversation_jobs(tracker)
        except StoreError as exc:
            return records_unavailable(dispatcher, domain, exc)
        if latest is None:
            say(
                dispatcher,
                domain,
                "utter_rpa_no_job",
                "You have not started any job in this conversation.",
            )
            return []
        status = describe_jobs(unfinished or [latest], time.time())
        say(
            dispatcher,
            domain,
            "utter_rpa_job_status",
            status,
            rpa_status=status,
            rpa_automation=latest.automation,
            rpa_state=latest.state.value,
            rpa_count=len(unfinished),
        )
        return []


class ActionCancelRpaJob(Action):
    """Stop every unfinished job of this conversation, and say how many."""

    def name(self) -> str:
        return "action_cancel_rpa_job"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Events:
        try:
            unfinished, latest = await conversation_jobs(tracker)
        except StoreError as exc:
            return records_unavailable(dispatcher, domain, exc)
        if latest is None:
            say(
                dispatcher,
                domain,
                "utter_rpa_no_job",
                "You have not started any job in this conversation.",
            )
            return []
        # At once, not one after another: each stop may take the provider
        # up to CANCEL_TIMEOUT, and Rasa waits for the action.
        service = current_runtime().service
        outcomes = await asyncio.gather(
            *(service.cancel_job(job) for job in unfinished), return_exceptions=True
        )
        stopped: list[Job] = []
        stuck: list[Job] = []
        ended: list[Job] = [] if unfinished else [latest]
        store_failure: StoreError | None = None
        for job, outcome in zip(unfinished, outcomes, strict=True):
            if isinstance(outcome, ProviderError):
                stuck.append(job)  # the reason is in the log for the operator
            elif isinstance(outcome, StoreError):
                store_failure = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
            elif outcome.state is JobState.CANCELLED:
                stopped.append(job)
            else:
                ended.append(outcome)  # it ended on its own meanwhile
        self.report(dispatcher, domain, stopped[::-1], stuck[::-1])
        if store_failure is not None:
            records_unavailable(dispatcher, domain, store_failure)
        elif ended and not stopped and not stuck:
            say(
                dispatcher,
                domain,
                "utter_rpa_job_already_finished",
                f"Your {ended[0].automation} job already ended "
                f"({ended[0].state.value}).",
                rpa_automation=ended[0].automation,
                rpa_state=ended[0].state.value,
            )
        return []

    @staticmethod
    def report(
        dispatcher: CollectingDispatcher,
        domain: DomainDict,
        stopped: list[Job],
        stuck: list[Job],
    ) -> None:
        """How many jobs are stopping, and which could not be stopped (oldest first)."""
        if len(stopped) == 1:
            say(
                dispatcher,
                domain,
                "utter_rpa_job_cancelling",
                f"OK, I'm stopping your {stopped[0].automation} job.",
                rpa_automation=stopped[0].automation,
                rpa_count=1,
            )
        elif stopped:
            names = automations_of(stopped)
            say(
                dispatcher,
                domain,
                "utter_rpa_jobs_cancelling",
                f"OK, I'm stopping your {len(stopped)} jobs ({names}).",
                rpa_automation=names,
                rpa_count=len(stopped),
            )
        if stuck:
            names = automations_of(stuck)
            which = f"{names} job. It" if len(stuck) == 1 else f"{names} jobs. They"
            say(
                dispatcher,
                domain,
                "utter_rpa_job_cancel_failed",
                f"Sorry, I could not stop your {which} may still be running.",
                rpa_automation=names,
                rpa_count=len(stuck),
            )


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
