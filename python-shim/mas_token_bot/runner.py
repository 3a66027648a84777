"""Drive one chat command through the core: start, then HTTP request and resume until a reply.

Several commands may run at once because asyncio interleaves them at each
HTTP request. Their state lives in the core, keyed by command id, and everything
the runner keeps per command is local to `run`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Optional
from urllib.parse import urlsplit

from .core import Core
from .engine import EngineFault
from .protocol import LOG_LEVELS, CoreError, LogLine, ProtocolError, Reply
from .transport import Transport

# Maximum HTTP requests for one command. With list pages of 1000 tokens, 200
# requests cover about 200,000 registration tokens.
MAX_STEPS = 200

# Maximum wall time for one command, in seconds, across all its requests.
COMMAND_DEADLINE_S = 300.0

INTERNAL_ERROR = Reply.plain_error("Internal error, see the bot's log.")

SendReply = Callable[[str, Reply], Awaitable[None]]


def wall_clock_ms() -> int:
    """Return the current time in milliseconds since the Unix epoch."""
    return int(time.time() * 1000)


class StepLimitExceeded(Exception):
    """A command asked for more than MAX_STEPS HTTP requests."""


class CommandRunner:
    """Run chat messages through the core and send the replies it produces."""

    def __init__(self, core: Core, transport: Transport, send_reply: SendReply, log: logging.Logger) -> None:
        self.core = core
        self.clock: Callable[[], int] = wall_clock_ms
        self.max_steps = MAX_STEPS
        self.deadline_s = COMMAND_DEADLINE_S
        self._transport = transport
        self._send_reply = send_reply
        self._log = log

    async def run(self, sender: str, room_id: str, body: str) -> None:
        """Run one m.text message through the core and send the reply, if it produces one."""
        reply = await self._execute(sender, room_id, body, internal=False)
        if reply is not None:
            await self._send(room_id, reply)

    async def check_connection(self, base_command: str, sender: str) -> None:
        """Run `!<base_command> status` as an internal command and log its reply.

        The core skips the whitelist for internal commands, so the plugin can
        report at start whether MAS is reachable and accepts its credentials.
        """
        reply = await self._execute(sender, "", f"!{base_command} status", internal=True)
        if reply is None:
            self._log.warning("The MAS connection check produced no reply")
            return

        level = logging.WARNING if reply.error else logging.INFO
        self._log.log(level, "MAS connection check: %s", reply.body)

    async def _execute(self, sender: str, room_id: str, body: str, internal: bool) -> Optional[Reply]:
        """Drive one command to its end and return the reply, or an error reply for any failure."""
        progress = _Progress()

        try:
            return await asyncio.wait_for(self._drive(sender, room_id, body, internal, progress), self.deadline_s)

        except asyncio.TimeoutError:
            self._log.error("Command %s from %s timed out after %g s and was cancelled", progress.command, sender, self.deadline_s)
            self._cancel(progress.command)
            reply = Reply.plain_error(
                f"The command timed out after {self.deadline_s:g} s and was cancelled. See the bot's log."
            )

        except StepLimitExceeded:
            self._log.error("Command %s from %s exceeded %d requests and was cancelled", progress.command, sender, self.max_steps)
            self._cancel(progress.command)
            reply = Reply.plain_error(
                f"The command needed more than {self.max_steps} requests to MAS and was cancelled. See the bot's log."
            )

        except EngineFault:
            self._log.exception("The wasm core failed during command %s from %s and was rebuilt", progress.command, sender)
            reply = INTERNAL_ERROR

        except (CoreError, ProtocolError):
            self._log.exception("The wasm core rejected command %s from %s", progress.command, sender)
            self._cancel(progress.command)
            reply = INTERNAL_ERROR

        except Exception:
            # A bug in the shim: the room still gets a reply, and the log gets the trace.
            self._log.exception("Command %s from %s failed unexpectedly", progress.command, sender)
            self._cancel(progress.command)
            reply = INTERNAL_ERROR

        return reply

    async def _drive(self, sender: str, room_id: str, body: str, internal: bool, progress: _Progress) -> Optional[Reply]:
        started = self.core.start(self.clock(), sender, room_id, body, internal=internal)
        progress.command = started.command
        step = started.step
        self._forward_log(step.log, progress.command)

        while step.kind == "http":
            progress.steps += 1
            if progress.steps > self.max_steps:
                raise StepLimitExceeded()

            request = step.request
            self._log.debug("Command %s: %s %s", progress.command, request.method, urlsplit(request.url).path)
            outcome = await self._transport.perform(request)

            step = self.core.resume(progress.command, self.clock(), outcome)
            self._forward_log(step.log, progress.command)

        progress.command = None
        return step.reply if step.kind == "reply" else None

    def _forward_log(self, lines: list[LogLine], command: Optional[int]) -> None:
        for line in lines:
            self._log.log(LOG_LEVELS[line.level], "Command %s: %s", command, line.message)

    def _cancel(self, command: Optional[int]) -> None:
        if command is None:
            return

        try:
            self.core.cancel(command)
        except (EngineFault, CoreError, ProtocolError) as error:
            # The command may already be gone, for example after a rebuild.
            self._log.warning("Cancelling command %s in the core failed: %s", command, error)

    async def _send(self, room_id: str, reply: Reply) -> None:
        try:
            await self._send_reply(room_id, reply)
        except Exception:
            # Sending can fail for many Matrix reasons, such as rate limits or lost
            # membership. The command is finished either way, so log and go on.
            self._log.exception("Sending a reply in %s failed", room_id)


class _Progress:
    """Per-command state that the error handlers in `run` need after `_drive` stops."""

    def __init__(self) -> None:
        self.command: Optional[int] = None
        self.steps = 0
