"""The maubot plugin: wires the Matrix events, the wasm core and the HTTP transport together."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Optional

import aiohttp
from maubot import Plugin
from maubot.handlers import event
from mautrix.types import EventType, MessageEvent, MessageType
from mautrix.util.config import BaseProxyConfig

from .config import Config
from .core import Core
from .engine import ENGINE_LIBRARIES, EngineFault, compile_module
from .notice import MAX_CONTENT_BYTES, build_notice, content_size, oversized_notice
from .protocol import LOG_LEVELS, CoreError, ProtocolError, Reply
from .runner import CommandRunner
from .transport import Transport, create_session

# Name of the compiled core inside the plugin archive (maubot.yaml extra_files).
WASM_FILE = "mas_token_core.wasm"


class MasTokenBot(Plugin):
    """Manage MAS user registration tokens with `!token` commands."""

    config: Config
    runner: Optional[CommandRunner] = None

    # Whether start() and config updates run the core's status command once
    # and log the result. Tests switch it off to count MAS requests from zero.
    check_connection_on_configure = True
    connection_check: Optional[asyncio.Task] = None
    # The plugin's own aiohttp session for MAS, because maubot's shared
    # session resends requests after a connection reset (see create_session).
    mas_session: Optional[aiohttp.ClientSession] = None

    @classmethod
    def get_config_class(cls) -> type[BaseProxyConfig]:
        return Config

    async def start(self) -> None:
        self.config.load_and_update()

        begin = time.perf_counter()
        wasm = await self.loader.read_file(WASM_FILE)
        module = compile_module(wasm, self.log)
        core = Core(module, self.log)
        self.log.info(
            "Started the wasm core with the %s engine (%s %s) in %.0f ms (read, compile, instantiate)",
            module.engine, ENGINE_LIBRARIES[module.engine], module.engine_version,
            (time.perf_counter() - begin) * 1000,
        )

        self.mas_session = create_session(headers=self.http.headers)
        self._transport = Transport(self.mas_session, self.log)
        self.runner = CommandRunner(core, self._transport, self._send_reply, self.log)
        self._apply_config()

    async def stop(self) -> None:
        if self.connection_check is not None:
            self.connection_check.cancel()
        if self.mas_session is not None:
            await self.mas_session.close()

    async def on_external_config_update(self) -> None:
        self.config.load_and_update()
        if self.runner is not None:
            self._apply_config()

    def _apply_config(self) -> None:
        """Pass the config to the transport and the core, and log every problem with it."""
        for key in self.config.unknown_keys:
            self.log.warning("Ignoring config key %r: base-config.yaml has no such setting", key)

        config = self.config.to_core_json()
        self._transport.set_credentials(
            token_endpoint=str(config["token_url"] or config["mas_url"] or ""),
            client_id=str(config["client_id"] or ""),
            client_secret=str(config["client_secret"] or ""),
        )

        try:
            configured = self.runner.core.configure(config)
        except (EngineFault, CoreError, ProtocolError):
            # The plugin stays loaded. Each command then gets an internal error
            # reply until the config or the core is fixed.
            self.log.exception("Configuring the wasm core failed")
            return

        warned = []
        for line in configured.log:
            self.log.log(LOG_LEVELS[line.level], "core: %s", line.message)
            if LOG_LEVELS[line.level] >= logging.WARNING:
                warned.append(line.message)
        for problem in configured.problems:
            # The core normally logs each problem itself, so log only the others.
            if not any(problem in message for message in warned):
                self.log.warning("Config problem: %s", problem)

        if self.check_connection_on_configure and not configured.problems:
            self._start_connection_check(configured.base_command)

    def _start_connection_check(self, base_command: str) -> None:
        """Check the MAS connection in the background, so a slow MAS does not delay start()."""
        if self.connection_check is not None:
            self.connection_check.cancel()
        check = self.runner.check_connection(base_command, sender=self.client.mxid)
        self.connection_check = asyncio.create_task(check)

    @event.on(EventType.ROOM_MESSAGE)
    async def handle_message(self, evt: MessageEvent) -> None:
        if not self._is_plain_text(evt):
            return

        body = evt.content.body
        if not isinstance(body, str) or self.runner is None:
            return

        await self.runner.run(sender=evt.sender, room_id=evt.room_id, body=body)

    def _is_plain_text(self, evt: MessageEvent) -> bool:
        """Return whether `evt` is a new m.text message from someone other than the bot."""
        if evt.sender == self.client.mxid:
            return False

        content = evt.content
        if getattr(content, "msgtype", None) != MessageType.TEXT:
            return False

        if content.get_edit() is not None:
            return False
        return "m.new_content" not in content

    async def _send_reply(self, room_id: str, reply: Reply) -> None:
        content = build_notice(reply)
        size = content_size(content)
        if size > MAX_CONTENT_BYTES:
            self.log.error(
                "The reply in %s is %d bytes, more than the %d a Matrix event can carry, so a short "
                "error goes in its place. It starts: %.200s",
                room_id, size, MAX_CONTENT_BYTES, reply.body,
            )
            content = oversized_notice(size)
        await self.client.send_message_event(room_id, EventType.ROOM_MESSAGE, content)
