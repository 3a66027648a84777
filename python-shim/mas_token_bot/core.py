"""The core's operations (configure, start, resume, cancel) over one wasm instance.

After an EngineFault the instance is replaced by a new one and configured
again with the last config, so the next command works. Commands that were in
flight in the old instance are lost: resuming them raises CoreError (unknown
command id), and the runner reports an internal error for each.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Optional

from .engine import ENGINE_FALLBACK, CompiledModule, EngineFault, WasmInstance
from .protocol import (
    ABI_VERSION,
    Configured,
    CoreError,
    HttpOutcome,
    LOG_LEVELS,
    HttpResponse,
    ProtocolError,
    Started,
    Step,
    parse_configured,
    parse_started,
    parse_step,
    unwrap_response,
)


# Page sizes for the pure-Python engine, which costs about 2 ms of
# interpreter time per token on a page: a list reply then shows up to 30
# valid and 30 invalid tokens, and a string search reads 150 tokens per
# request, so that each command's core time stays near 250 ms.
FALLBACK_LIMITS = {"list_page_size": 30, "search_page_size": 150}


# The value the core gets in place of a set client secret.
SECRET_STAND_IN = "<set>"


def _secret_stand_in(value: Any) -> Any:
    if isinstance(value, str):
        return SECRET_STAND_IN if value.strip() else value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return 0
    return type(value)()


class Core:
    """The wasm core of one plugin instance."""

    def __init__(self, module: CompiledModule, log: logging.Logger) -> None:
        self._module = module
        self._log = log
        self._instance: Optional[WasmInstance] = module.instantiate()
        self._config: Optional[dict[str, Any]] = None

    def configure(self, config: dict[str, Any]) -> Configured:
        """Send the plugin config to the core and return the problems it found."""
        self._config = config
        return parse_configured(self._request(self._configure_request(config)))

    def _configure_request(self, config: dict[str, Any]) -> dict[str, Any]:
        # The core only checks that `client_secret` is set and is a string, so
        # it gets a stand-in of the same JSON type and never the secret itself.
        visible = dict(config)
        if "client_secret" in visible:
            visible["client_secret"] = _secret_stand_in(visible["client_secret"])
        request: dict[str, Any] = {"op": "configure", "config": visible}
        if self._module.engine == ENGINE_FALLBACK:
            request["limits"] = FALLBACK_LIMITS
        return request

    def start(self, now_ms: int, sender: str, room_id: str, body: str, internal: bool = False) -> Started:
        """Start a command. `internal` skips the whitelist and is only for commands the plugin issues itself."""
        request = {"op": "start", "now_ms": now_ms, "sender": sender, "room_id": room_id, "body": body}
        if internal:
            request["internal"] = True
        return parse_started(self._request(request))

    def resume(self, command: int, now_ms: int, outcome: HttpOutcome) -> Step:
        key = "response" if isinstance(outcome, HttpResponse) else "failure"
        request = {"op": "resume", "command": command, "now_ms": now_ms, key: outcome.to_json()}
        ok = self._request(request)
        return parse_step(ok.get("step"))

    def cancel(self, command: int) -> None:
        self._request({"op": "cancel", "command": command})

    @property
    def last_call_fuel(self) -> Optional[int]:
        """Fuel the last operation used, or None while no instance exists."""
        return self._instance.last_call_fuel if self._instance is not None else None

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        instance = self._instance or self._rebuild()

        try:
            return self._call(instance, request)
        except EngineFault:
            self._instance = None
            self._rebuild_after_fault()
            raise

    @staticmethod
    def _call(instance: WasmInstance, request: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps({"abi": ABI_VERSION, **request}, ensure_ascii=False).encode("utf-8")
        raw = instance.call(payload)

        try:
            response = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ProtocolError(f"the core's response is not UTF-8 JSON: {error}") from error
        return unwrap_response(response)

    def _rebuild_after_fault(self) -> None:
        # A failed rebuild is logged and tried again on the next request, so
        # one bad moment does not leave the plugin without a core for good.
        try:
            self._rebuild()
        except (EngineFault, ProtocolError, CoreError) as error:
            self._log.error("Rebuilding the wasm core failed, trying again on the next command: %s", error)

    def _rebuild(self) -> WasmInstance:
        """Build a new instance and configure it with the last config, raising on failure."""
        self._log.warning("Building a new wasm core instance")
        instance = self._module.instantiate()

        if self._config is not None:
            ok = self._call(instance, self._configure_request(self._config))
            for line in parse_configured(ok).log:
                self._log.log(LOG_LEVELS[line.level], "core: %s", line.message)

        self._instance = instance
        return instance

