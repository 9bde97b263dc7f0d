"""The rasa-sdk actions a bot uses: start, status and cancel (and, from
:mod:`rasa_rpa.question_actions`, asking the robot's questions).

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
from rasa_rpa.question_actions import (
    ActionRpaAnswer,
    ActionRpaAsk,
    ValidateRpaAnswerForm,
)
from rasa_rpa.replies import (
    DomainDict,
    records_unavailable,
    say,
    say_status,
    titles_of,
)
from rasa_rpa.runtime import current_runtime
from rasa_rpa.variables import job_ref, job_variables

__all__ = [
    "ActionCancelRpaJob",
    "ActionRpaAnswer",
    "ActionRpaAsk",
    "ActionRpaJobStatus",
    "ActionStartRpaJob",
    "ValidateRpaAnswerForm",
    "define_automation_actions",
    "render_inputs",
]

log = logging.getLogger(__name__)
Events = list[dict[str, Any]]
#: The slot holding the conversation's latest job id.
JOB_SLOT = "rpa_job_id"
#: Why a start failed when the job store did (the response's {rpa_error}).
RECORDS_UNAVAILABLE = "my job records are unavailable right now"
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
            say(dispatcher, domain, "utter_rpa_unknown_automation")
            return []
        automation = runtime.config.automations[name]
        inputs, missing = render_inputs(automation, tracker)
        named: dict[str, Any] = {
            "rpa_automation": name,
            "rpa_title": runtime.config.titles()[name],
        }
        if missing:
            labels = [automation.inputs[key].description or key for key in missing]
            say(
                dispatcher,
                domain,
                "utter_rpa_missing_inputs",
                rpa_missing=", ".join(labels),
                **named,
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
            return self.already_running(dispatcher, domain, exc, runtime.config)
        except ProviderError as exc:
            # user_message, not message: the latter names URLs and paths,
            # which are for the log (the service logged them with the job id).
            reason = exc.user_message
            events = [SlotSet(JOB_SLOT, exc.job_id)] if exc.job_id else []
            if exc.job_id:
                named["rpa_job_ref"] = job_ref(exc.job_id)
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
            variables = job_variables(job, runtime.config.titles())
            say(dispatcher, domain, "utter_rpa_job_started", **variables)
            return [SlotSet(JOB_SLOT, job.id)]
        say(dispatcher, domain, "utter_rpa_job_start_failed", rpa_error=reason, **named)
        return events

    @staticmethod
    def already_running(
        dispatcher: CollectingDispatcher,
        domain: DomainDict,
        refusal: JobLimitReached,
        config: RpaConfig,
    ) -> Events:
        """No new job: say the earlier one still runs; the slot keeps naming it."""
        newest, count = refusal.running[0], len(refusal.running)
        say(
            dispatcher,
            domain,
            "utter_rpa_job_already_running",
            rpa_count=count,
            **job_variables(newest, config.titles()),
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
            say(dispatcher, domain, "utter_rpa_no_job")
            return []
        runtime = current_runtime()
        titles, now = runtime.config.titles(), time.time()
        say_status(dispatcher, domain, unfinished or [latest], titles, now)
        try:
            waiting = await runtime.store.open_questions(tracker.sender_id, now)
        except StoreError as exc:
            return records_unavailable(dispatcher, domain, exc)
        jobs = {job.id: job for job in unfinished}
        for question in waiting:  # what the robot waits for, in its own words
            job = jobs.get(question.job_id)
            variables = job_variables(job, titles, now) if job else {}
            say(
                dispatcher,
                domain,
                "utter_rpa_status_question",
                rpa_question=question.text,
                **variables,
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
            say(dispatcher, domain, "utter_rpa_no_job")
            return []
        # At once, not one after another: each stop may take the provider
        # up to CANCEL_TIMEOUT, and Rasa waits for the action.
        runtime = current_runtime()
        service, titles = runtime.service, runtime.config.titles()
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
        self.report(dispatcher, domain, stopped[::-1], stuck[::-1], titles)
        if store_failure is not None:
            records_unavailable(dispatcher, domain, store_failure)
        elif ended and not stopped and not stuck:
            variables = job_variables(ended[0], titles)
            say(dispatcher, domain, "utter_rpa_job_already_finished", **variables)
        return []

    @staticmethod
    def report(
        dispatcher: CollectingDispatcher,
        domain: DomainDict,
        stopped: list[Job],
        stuck: list[Job],
        titles: dict[str, str],
    ) -> None:
        """How many jobs are stopping, and which could not be stopped (oldest first)."""
        if len(stopped) == 1:
            variables = job_variables(stopped[0], titles)
            say(
                dispatcher, domain, "utter_rpa_job_cancelling", rpa_count=1, **variables
            )
        elif stopped:
            say(
                dispatcher,
                domain,
                "utter_rpa_jobs_cancelling",
                rpa_automation=", ".join(dict.fromkeys(j.automation for j in stopped)),
                rpa_title=titles_of(stopped, titles),
                rpa_count=len(stopped),
            )
        for job in stuck:  # the reason is in the log for the operator
            variables = job_variables(job, titles)
            say(dispatcher, domain, "utter_rpa_job_cancel_failed", **variables)


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
