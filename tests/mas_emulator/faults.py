"""Injected failures, so tests can see how clients cope with a broken MAS or proxy.

A fault applies to the MAS routes only (never to /__emulator__/), optionally to
one target ("token" for /oauth2/token, "admin" for /api/admin/...), one exact
path and one method, and optionally to the next `count` matching requests only.
"""

import asyncio
import socket
import struct
from dataclasses import asdict, dataclass

from aiohttp import web

from .errors import CORS_HEADERS, dump_json

FAULT_KINDS = (
    "status",  # `status` (default 500) with a JSON error body, or HTML when body="html"
    "hang",  # never answer; the connection stays open until the client gives up or the emulator stops
    "reset",  # close the connection without any response
    "truncated",  # send the real response with a Content-Length larger than the body, then close
    "invalid_json",  # `status` (default 200) with a body that is not JSON but says application/json
    "html",  # `status` (default 200) with an HTML page, as a captive portal or misrouted proxy sends
    "unauthorized",  # 401 with the body MAS sends for an unknown token or client
    "rate_limited",  # 429 with a Retry-After header of `retry_after_s` seconds
    "slow",  # wait `delay_s` seconds, then answer normally
    "missing_access_token",  # the token endpoint answers 200 without access_token
)
TARGETS = ("all", "token", "admin")
TOKEN_PATH = "/oauth2/token"


@dataclass
class Fault:
    kind: str
    target: str = "all"
    path: str | None = None
    method: str | None = None
    count: int | None = None
    status: int | None = None
    body: str = "json"
    delay_s: float = 1.0
    retry_after_s: int = 30
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if self.target not in TARGETS:
            raise ValueError(f"unknown fault target {self.target!r}; expected one of {', '.join(TARGETS)}")
        if self.body not in ("json", "html"):
            raise ValueError(f"unknown fault body {self.body!r}; expected 'json' or 'html'")
        if self.count is not None and self.count < 1:
            raise ValueError(f"fault count must be at least 1, got {self.count}")
        if self.method is not None:
            self.method = self.method.upper()

    def matches(self, path: str, method: str) -> bool:
        if self.target == "token" and path != TOKEN_PATH:
            return False
        if self.target == "admin" and not path.startswith("/api/admin/"):
            return False
        if self.path is not None and path != self.path:
            return False
        if self.method is not None and method != self.method:
            return False
        return True

    def to_dict(self) -> dict:
        return asdict(self)


class FaultSet:
    """Active faults in the order they were added; the first match applies."""

    def __init__(self) -> None:
        self.active: list[Fault] = []

    def take(self, path: str, method: str) -> Fault | None:
        """Return the fault for this request and count the use, or None."""
        for fault in self.active:
            if fault.matches(path, method):
                fault.hits += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count == 0:
                        self.active.remove(fault)
                return fault
        return None


_HTML_PAGE = (
    "<!DOCTYPE html>\n<html>\n<head><title>{status} {reason}</title></head>\n"
    "<body>\n<h1>{status} {reason}</h1>\n<p>The upstream server is not available.</p>\n</body>\n</html>\n"
)


def _html(status: int) -> web.Response:
    reason = web.Response(status=status).reason
    body = _HTML_PAGE.format(status=status, reason=reason)
    return web.Response(status=status, body=body.encode(), headers={"Content-Type": "text/html; charset=utf-8"})


def _json(status: int, payload: dict, extra_headers: dict | None = None) -> web.Response:
    headers = {"Content-Type": "application/json", **CORS_HEADERS, **(extra_headers or {})}
    return web.Response(status=status, body=dump_json(payload), headers=headers)


def _error_payload(path: str, status: int) -> dict:
    reason = web.Response(status=status).reason
    if path == TOKEN_PATH:
        return {"error": "server_error", "error_description": f"{status} {reason}"}
    return {"errors": [{"title": f"{status} {reason}"}]}


def canned_response(fault: Fault, path: str) -> web.Response | None:
    """Return the response for faults that replace MAS's answer, or None for the others."""
    kind = fault.kind
    if kind == "status":
        status = fault.status or 500
        return _html(status) if fault.body == "html" else _json(status, _error_payload(path, status))
    if kind == "invalid_json":
        headers = {"Content-Type": "application/json", **CORS_HEADERS}
        return web.Response(status=fault.status or 200, body=b'{"data": [{"type": "user-registration_token", <', headers=headers)
    if kind == "html":
        return _html(fault.status or 200)
    if kind == "unauthorized":
        if path == TOKEN_PATH:
            return _json(401, {"error": "invalid_client", "error_description": "Client authentication failed."})
        return _json(401, {"errors": [{"title": "Unknown access token"}]})
    if kind == "rate_limited":
        payload = _error_payload(path, 429)
        return _json(429, payload, {"Retry-After": str(fault.retry_after_s)})
    if kind == "missing_access_token" and path == TOKEN_PATH:
        return _json(200, {"token_type": "Bearer", "expires_in": 300}, {"cache-control": "no-store"})
    return None


def reset_connection(request: web.Request) -> None:
    """Abort the TCP connection so that the client sees a reset, not a response."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


async def wait_until_gone(request: web.Request, stopping: asyncio.Event) -> None:
    """Wait until the client closes the connection or the emulator stops."""
    while not stopping.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        try:
            await asyncio.wait_for(stopping.wait(), timeout=0.1)
        except asyncio.TimeoutError:
            continue


async def send_truncated(request: web.Request, response: web.Response) -> None:
    """Write the response head with a Content-Length larger than the body, half the body, then close."""
    transport = request.transport
    if transport is None:
        return
    body = response.body if isinstance(response.body, bytes) else b""
    sent = body[: len(body) // 2]
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    for name, value in response.headers.items():
        if name.lower() not in ("content-length", "transfer-encoding"):
            lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body) + 64}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    transport.write(head + sent)
    await asyncio.sleep(0.05)
    transport.close()
