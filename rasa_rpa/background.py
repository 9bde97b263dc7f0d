"""A loop that runs beside the server, started and stopped with it."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["BackgroundLoop"]


class BackgroundLoop:
    """Base for the outbox dispatcher and the reconciler: one task, clean stop."""

    #: The asyncio task's name (shown in task dumps).
    task_name = "rasa-rpa"

    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run :meth:`_run` in the background until :meth:`stop`."""
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        """Cancel the loop and wait for it (work in flight ends with it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        raise NotImplementedError
