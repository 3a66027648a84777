"""HTTP control surface under /__emulator__/ for tests that run in another process.

JSON in and out, no authentication; the emulator only binds loopback addresses.
These routes ignore the path prefix, faults, and the request log.
"""

import json
import logging

from aiohttp import web

from .errors import dump_json
from .faults import Fault
from .rfc3339 import DateTimeParseError

logger = logging.getLogger(__name__)

_TOKEN_FIELDS = ("token", "usage_limit", "times_used", "expires_at", "revoked", "created_at", "last_used_at")
_FAULT_FIELDS = ("kind", "target", "path", "method", "count", "status", "body", "delay_s", "retry_after_s")


def _reply(status: int, payload: object) -> web.Response:
    return web.Response(status=status, body=dump_json(payload), headers={"Content-Type": "application/json"})


def _bad_request(message: str) -> web.Response:
    return _reply(400, {"error": message})


class ControlApi:
    def __init__(self, emulator) -> None:
        self.emulator = emulator

    async def handle(self, request: web.Request, path: str) -> web.Response:
        route = (request.method, path.rstrip("/"))
        handlers = {
            ("GET", "/__emulator__/state"): self._state,
            ("POST", "/__emulator__/tokens"): self._add_tokens,
            ("POST", "/__emulator__/tokens/use"): self._use_token,
            ("POST", "/__emulator__/access-tokens"): self._issue_access_token,
            ("POST", "/__emulator__/fault"): self._set_fault,
            ("DELETE", "/__emulator__/fault"): self._clear_fault,
            ("POST", "/__emulator__/clock"): self._advance_clock,
            ("POST", "/__emulator__/reset"): self._reset,
        }
        handler = handlers.get(route)
        if handler is None:
            return _reply(404, {"error": f"no control route {request.method} {path}"})

        payload = {}
        if request.method == "POST":
            raw = await request.read()
            if raw.strip():
                try:
                    payload = json.loads(raw)
                except (UnicodeDecodeError, json.JSONDecodeError) as error:
                    return _bad_request(f"request body is not valid JSON: {error}")
                if not isinstance(payload, dict):
                    return _bad_request("request body must be a JSON object")

        try:
            return handler(request, payload)
        except (ValueError, TypeError, KeyError, DateTimeParseError) as error:
            logger.warning("control request %s %s rejected: %s", request.method, path, error)
            return _bad_request(str(error))

    def _state(self, request: web.Request, payload: dict) -> web.Response:
        emulator = self.emulator
        now_ns = emulator.clock.now_ns()
        since = int(request.query.get("requests_since", "0"))
        return _reply(
            200,
            {
                "base_url": emulator.base_url,
                "now": emulator.now(),
                "clock_offset_s": emulator.clock.offset_s,
                "tokens": [emulator.store.by_id[token_id].to_dict(now_ns) for token_id in emulator.store.sorted_ids],
                "issued_access_tokens": [record.to_dict() for record in emulator.issued_access_tokens],
                "requests": [record.to_dict() for record in emulator.requests[since:]],
                "faults": [fault.to_dict() for fault in emulator.faults.active],
            },
        )

    def _add_tokens(self, request: web.Request, payload: dict) -> web.Response:
        if "tokens" in payload:
            specs = payload["tokens"]
            if not isinstance(specs, list) or not all(isinstance(spec, dict) for spec in specs):
                raise ValueError('"tokens" must be a list of objects')
            ids = [self.emulator.add_token(**self._token_kwargs(spec)) for spec in specs]
        else:
            count = payload.get("count", 1)
            if not isinstance(count, int) or count < 0:
                raise ValueError('"count" must be a non-negative integer')
            ids = self.emulator.seed_tokens(count, **self._token_kwargs(payload))
        return _reply(201, {"ids": ids})

    @staticmethod
    def _token_kwargs(spec: dict) -> dict:
        unknown = set(spec) - set(_TOKEN_FIELDS) - {"count"}
        if unknown:
            raise ValueError(f"unknown token fields: {', '.join(sorted(unknown))}; expected some of {', '.join(_TOKEN_FIELDS)}")
        return {name: spec[name] for name in _TOKEN_FIELDS if name in spec}

    def _use_token(self, request: web.Request, payload: dict) -> web.Response:
        token_id = payload.get("id")
        if token_id is None and "token" in payload:
            found = self.emulator.find_by_string(payload["token"])
            token_id = found.id if found else None
        if token_id is None:
            raise KeyError("give the registration token's existing \"id\" or \"token\" string")
        token = self.emulator.use_token(token_id)
        return _reply(200, token.to_dict(self.emulator.clock.now_ns()))

    def _issue_access_token(self, request: web.Request, payload: dict) -> web.Response:
        token = self.emulator.issue_access_token(payload.get("client_id"), payload.get("scope", "urn:mas:admin"))
        return _reply(201, {"access_token": token})

    def _set_fault(self, request: web.Request, payload: dict) -> web.Response:
        options = {name: payload[name] for name in _FAULT_FIELDS if name in payload}
        unknown = set(payload) - set(_FAULT_FIELDS) - {"add"}
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}; expected some of {', '.join(_FAULT_FIELDS)}")
        if "kind" not in options:
            raise ValueError('a fault needs a "kind"')
        fault = Fault(**options)
        if payload.get("add"):
            self.emulator.faults.active.append(fault)
        else:
            self.emulator.faults.active = [fault]
        return _reply(200, {"faults": [active.to_dict() for active in self.emulator.faults.active]})

    def _clear_fault(self, request: web.Request, payload: dict) -> web.Response:
        self.emulator.clear_fault()
        return _reply(200, {"faults": []})

    def _advance_clock(self, request: web.Request, payload: dict) -> web.Response:
        seconds = payload.get("advance_s")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError('"advance_s" must be a number of seconds')
        self.emulator.advance_clock(seconds)
        return _reply(200, {"now": self.emulator.now(), "clock_offset_s": self.emulator.clock.offset_s})

    def _reset(self, request: web.Request, payload: dict) -> web.Response:
        self.emulator.reset()
        return _reply(200, {"reset": True})
