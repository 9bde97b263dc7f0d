"""The default provider: a Robot Framework robot run on this machine.

Each job is its own ``python -m robot`` process (two Robot Framework runs in
one process corrupt each other). Inputs become Robot variables, and the
``rasa_rpa_robot.listener.JobListener`` listener reports started, progress,
succeeded (with the outputs set by ``Set Job Output``) or failed (with the
failing keyword's message) through the signed callback API, exactly as a
remote robot would. The process gets its own session so it outlives a restart
of the action server; its exit code is checked too, so a robot that dies
before its listener can speak still ends its job.

rpa.yml::

    providers:
      local:
        type: local
        robots_dir: robots          # where <task>.robot files live
        python: /usr/bin/python3    # default: the action server's interpreter
        env_passthrough: [ERP_HOST] # server environment robots may see (an allow-list)
        files: {report_path: report}  # outputs naming a file to send the user
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from rasa_rpa.cleantext import text_problem
from rasa_rpa.errors import ProviderError, UnsendableInput
from rasa_rpa.models import EventType, Job, JobEvent, JobState
from rasa_rpa.providers import proctree
from rasa_rpa.providers.base import Capabilities, Diagnosis, Provider, StartRequest
from rasa_rpa.providers.options import StrictOptions
from rasa_rpa_robot.client import (
    ENV_EVENTS_URL,
    ENV_JOB_ID,
    ENV_SIGNING_SECRET,
    ENV_TOKEN,
)

__all__ = ["LocalOptions", "LocalRobotProvider", "argv_problem", "describe_exit"]

log = logging.getLogger(__name__)
LISTENER = "rasa_rpa_robot.listener.JobListener"
#: Environment variables a robot inherits (add more with ``env_passthrough``).
SAFE_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "DISPLAY",
    "SYSTEMROOT",
)
#: Longest single command-line argument Linux takes (MAX_ARG_STRLEN, 32 pages).
MAX_ARG_BYTES = 32 * 4096
#: Seconds between SIGTERM (Robot Framework stops gracefully) and SIGKILL.
KILL_AFTER = 5.0


def describe_exit(code: int) -> str:
    """Robot Framework's return code in words (see robot/errors.py)."""
    if code < 0:
        return f"the robot was killed by signal {-code}"
    if code == 0:
        return "all tasks passed"
    if code <= 250:
        return f"{code} task(s) failed"
    return {
        251: "robot printed help or version only",
        252: "invalid robot data or command line options",
        253: "the robot was stopped",
        255: "Robot Framework had an internal error",
    }.get(code, f"the robot exited with code {code}")


class LocalOptions(StrictOptions):
    """``providers.<name>`` keys of ``type: local`` (see the module docstring)."""

    fixes = {
        "robots_dir": "a folder of .robot files (relative to rpa.yml's folder)",
        "python": "an interpreter with robotframework and rasa-rpa",
    }

    robots_dir: str = "robots"
    #: Where each job's output folder goes (default: <state dir>/runs).
    runs_dir: str | None = None
    python: str | None = None
    env_passthrough: list[str] = Field(default_factory=list)
    #: Outputs that name a file (in the job's own run folder) to send the
    #: user when the job succeeds, with the title the user reads it by.
    files: dict[str, str] = Field(default_factory=dict)


class LocalRobotProvider(Provider):
    """Runs ``robots/<task>.robot`` with ``python -m robot``."""

    type_name = "local"
    Options = LocalOptions
    options: LocalOptions
    #: No status API to poll: the exit watcher and the listener report.
    capabilities = Capabilities(cancel=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._monitors: set[asyncio.Task[None]] = set()
        #: SIGKILLs due for robots that ignore SIGTERM (see cancel).
        self._killers: set[asyncio.Task[None]] = set()

    @property
    def robots_dir(self) -> Path:
        return self.config.resolve_path(self.options.robots_dir)

    @property
    def runs_dir(self) -> Path:
        return self.config.resolve_path(
            self.options.runs_dir or self.config.state_dir / "runs"
        )

    def task_path(self, task: str) -> Path:
        """The .robot file for ``task``; the suffix may be left out."""
        name = task if task.endswith(".robot") else f"{task}.robot"
        return self.robots_dir / name

    async def diagnose(self, tasks: Sequence[str]) -> list[Diagnosis]:
        """The robots folder, the interpreter, and a .robot file for each task."""
        folder, where = self.robots_dir, f"providers.{self.name}"
        if not folder.is_dir():
            fix = (
                f"create it or set {where}.robots_dir (relative paths start at "
                "rpa.yml's folder)"
            )
            return [Diagnosis("error", f"robots_dir {folder} does not exist", fix)]
        found: list[Diagnosis] = []
        python = self.options.python
        if python and not os.access(python, os.X_OK):
            fix = f"point {where}.python at an interpreter with robotframework"
            found.append(
                Diagnosis("error", f"python {python} is not an executable", fix)
            )
        missing = [t for t in tasks if not self.task_path(t).is_file()]
        for task in missing:
            path = self.task_path(task)
            fix = f"add {path.name} to {folder} or correct {{task_key}}"
            message = f"robot file {path} does not exist"
            found.append(Diagnosis("error", message, fix, task))
        if not missing:
            ok = f"local: {len(tasks)} robot file(s) found in {folder}"
            found.append(Diagnosis("ok", ok))
        return found

    async def start(self, request: StartRequest) -> str | None:
        path = self.task_path(request.task)
        if not path.is_file():
            raise ProviderError(
                self.name,
                f"unknown task {request.task!r}: {path} does not exist",
                job_id=request.job.id,
                user_message="its robot is not installed here",
            )
        run_dir = self.runs_dir / request.job.id
        command = [
            self.options.python or sys.executable,
            "-m",
            "robot",
            "--listener",
            LISTENER,
            "--outputdir",
            str(run_dir),
            "--console",
            "dotted",
            "--variable",
            f"RPA_JOB_ID:{request.job.id}",
        ]
        for key, value in request.inputs.items():
            argument = f"{key}:{'' if value is None else value}"
            problem = argv_problem(argument)
            if problem:
                raise UnsendableInput(self.name, key, problem, job_id=request.job.id)
            command += ["--variable", argument]
        command.append(str(path))
        creds = request.credentials
        # Credentials travel in the environment, not argv: argv is world-readable.
        # Only an allow-list of the server's own environment is passed on, so
        # the master key, the Rasa token and vendor secrets never reach robots.
        passed = set(SAFE_ENV) | set(self.options.env_passthrough)
        env = {
            **{k: v for k, v in os.environ.items() if k in passed},
            ENV_EVENTS_URL: creds.events_url,
            ENV_JOB_ID: creds.job_id,
            ENV_SIGNING_SECRET: creds.signing_secret,
            ENV_TOKEN: creds.token,
        }
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            with (run_dir / "console.log").open("wb") as console:
                # subprocess, not the loop's spawn: uvloop (Sanic's loop) lets the
                # child inherit the server's listening socket, which would keep
                # the port taken after the action server stops.
                process = subprocess.Popen(
                    command,
                    cwd=str(self.robots_dir),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    close_fds=True,
                    start_new_session=True,
                )
        except (OSError, ValueError) as exc:
            # ValueError: whatever argv_problem missed (subprocess's own checks).
            raise ProviderError(
                self.name,
                f"cannot start the robot: {exc}",
                job_id=request.job.id,
                user_message="its robot could not be launched",
            ) from exc
        self._processes[request.job.id] = process
        monitor = asyncio.create_task(self._watch(request.job.id, process))
        self._monitors.add(monitor)
        monitor.add_done_callback(self._monitors.discard)
        return str(process.pid)

    async def _watch(self, job_id: str, process: subprocess.Popen[bytes]) -> None:
        code = await _wait(process)
        self._processes.pop(job_id, None)
        # The listener normally reported the outcome already; then this is a
        # recorded no-op. It matters when the robot died before it could speak.
        if code == 0:
            event = JobEvent(
                f"exit:{job_id}", job_id, EventType.SUCCEEDED, {}, source="local-exit"
            )
        else:
            event = JobEvent(
                f"exit:{job_id}",
                job_id,
                EventType.FAILED,
                {"error": describe_exit(code)},
                source="local-exit",
            )
        result = await self.report(event)
        job = getattr(result, "job", None)  # the job as stored, with its outputs
        if code == 0 and isinstance(job, Job) and job.state is JobState.SUCCEEDED:
            await self._send_files(job)

    async def _send_files(self, job: Job) -> None:
        """Upload the output files ``files`` names; only from the job's run
        folder, so an output can never hand the user another file of the
        machine's."""
        if self.file_sink is None:
            return
        folder = (self.runs_dir / job.id).resolve()
        for output, title in self.options.files.items():
            value = job.outputs.get(output)
            if not isinstance(value, str) or not value:
                continue
            path = (folder / value).resolve()  # an absolute value stays itself
            if not path.is_relative_to(folder) or not path.is_file():
                log.warning(
                    "job %s: output %s names no file in the job's run folder; "
                    "not sent",
                    job.id,
                    output,
                    extra={"job_id": job.id, "conversation_id": job.conversation_id},
                )
                continue
            await self.file_sink(job, path, title, f"output:{output}")

    async def cancel(self, job: Job) -> None:
        process = self._processes.get(job.id)
        pid = process.pid if process else _pid(job.provider_ref)
        if pid is None or (process is None and not _runs_job(pid, job.id)):
            return
        # The whole tree, collected before any signal: a child in a session
        # of its own escapes the group signal, and once the robot exits it
        # no longer looks like the robot's (see proctree).
        tree = proctree.collect(pid)
        _signal_group(pid, signal.SIGTERM)
        proctree.signal_all(tree, signal.SIGTERM)
        if process is None:
            return
        # The stop is asked for: return now, so the job service records the
        # cancellation while the robot winds down (its last report waits for
        # that verdict); whatever of its tree is still there after KILL_AFTER
        # is killed.
        killer = asyncio.create_task(self._kill_after(pid, process, tree))
        self._killers.add(killer)
        killer.add_done_callback(self._killers.discard)

    async def _kill_after(
        self,
        pid: int,
        process: subprocess.Popen[bytes],
        tree: list[proctree.Member],
    ) -> None:
        deadline = asyncio.get_running_loop().time() + KILL_AFTER
        while asyncio.get_running_loop().time() < deadline:
            if process.poll() is not None and not any(map(proctree.alive, tree)):
                return
            await asyncio.sleep(0.2)
        if process.poll() is None:
            # Children it started since the first signal are its tree too.
            tree = [*tree, *proctree.collect(pid)]
            _signal_group(pid, signal.SIGKILL)
        proctree.signal_all(tree, signal.SIGKILL)

    async def aclose(self) -> None:
        # Robots keep running when the action server stops: they will retry
        # their callbacks until it is back. Only our watchers end here.
        if self._killers:  # a robot told to stop must not outlive a shutdown
            await asyncio.wait(list(self._killers), timeout=KILL_AFTER + 1)
        for monitor in list(self._monitors):
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor


def argv_problem(argument: str) -> str | None:
    """Why ``argument`` cannot be passed on a command line, or None if it can.

    Checked before spawning so the user hears which input is to blame rather
    than a bare ValueError or OSError from ``subprocess``. The words name
    no value: a 100 KB input must not end up in the log or the store.
    """
    problem = text_problem(argument)
    if problem is not None:
        return problem
    size = len(os.fsencode(argument))
    if size > MAX_ARG_BYTES:
        return (
            f"is {size} bytes long; a command-line argument holds at most "
            f"{MAX_ARG_BYTES}"
        )
    return None


async def _wait(process: subprocess.Popen[bytes], every: float = 0.2) -> int:
    """The exit code, polled: a thread per robot would block shutdown and
    exhaust the default executor with a handful of robots running."""
    while (code := process.poll()) is None:
        await asyncio.sleep(every)
    return code


def _pid(ref: str | None) -> int | None:
    return int(ref) if ref and ref.isdigit() else None


def _runs_job(pid: int, job_id: str) -> bool:
    """Whether ``pid`` is still this job's robot (PIDs are reused after exit).

    Robots started by another process (before a restart, another worker) are
    only known by PID; their environment names the job they run.
    """
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{ENV_JOB_ID}={job_id}".encode() in environ.split(b"\0")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
