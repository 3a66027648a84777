"""Typed views of the JSON messages exchanged with the wasm core (ABI version 2).

docs/boundary.md defines every field. Parsing here is strict: a response that
does not match the contract raises ProtocolError, so a broken core shows up as
one clear log entry instead of a KeyError deep in the runner.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

ABI_VERSION = 2

LogLevel = Literal["debug", "info", "warning", "error"]
AuthKind = Literal["client", "bearer", "none"]
FailureKind = Literal["timeout", "connection"]

# Python logging level for each LogLine level.
LOG_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class ProtocolError(Exception):
    """The core returned JSON that does not follow the boundary contract."""


class CoreError(Exception):
    """The core returned `{"error": ...}`: the host sent something it rejected."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class LogLine:
    """One log entry produced by the core."""

    level: LogLevel
    message: str


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request the core wants the host to perform."""

    method: str
    url: str
    auth: AuthKind
    timeout_ms: int
    headers: dict[str, str]
    body: Optional[str]


@dataclass(frozen=True)
class Reply:
    """A message for the room; `error` marks a reply that reports a failure."""

    body: str
    html: str
    error: bool

    @classmethod
    def plain_error(cls, message: str) -> Reply:
        """Return an error reply of one paragraph of plain text, such as the shim's own failures."""
        return cls(body=message, html=f"<p>{html.escape(message, quote=False)}</p>", error=True)


@dataclass(frozen=True)
class Step:
    """What the core requests next: an HTTP request, a reply, or nothing."""

    kind: Literal["http", "reply", "ignore"]
    request: Optional[HttpRequest] = None
    reply: Optional[Reply] = None
    log: list[LogLine] = field(default_factory=list)


@dataclass(frozen=True)
class HttpResponse:
    """An HTTP response as passed back to the core in `resume`."""

    status: int
    content_type: Optional[str]
    body: str
    retry_after: Optional[str]
    access_token_stored: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "content_type": self.content_type,
            "body": self.body,
            "retry_after": self.retry_after,
            "access_token_stored": self.access_token_stored,
        }


@dataclass(frozen=True)
class HttpFailure:
    """A request that produced no complete HTTP response."""

    kind: FailureKind
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message}


HttpOutcome = Union[HttpResponse, HttpFailure]


@dataclass(frozen=True)
class Configured:
    """The result of `configure`: the root command and the config problems."""

    base_command: str
    problems: list[str]
    log: list[LogLine]


@dataclass(frozen=True)
class Started:
    """The result of `start`: the command id (None when not a command) and its first step."""

    command: Optional[int]
    step: Step


def unwrap_response(response: Any) -> dict[str, Any]:
    """Return the `ok` object of a core response, or raise CoreError for `error`."""
    if not isinstance(response, dict):
        raise ProtocolError(f"response is {type(response).__name__}, expected an object")

    if "error" in response:
        error = _expect_dict(response["error"], "error")
        raise CoreError(str(error.get("kind", "unknown")), str(error.get("message", "")))

    if "ok" not in response:
        raise ProtocolError("response has neither 'ok' nor 'error'")
    return _expect_dict(response["ok"], "ok")


def parse_configured(ok: dict[str, Any]) -> Configured:
    problems = _expect_list(ok.get("problems"), "problems")
    return Configured(
        base_command=_expect_str(ok.get("base_command"), "base_command"),
        problems=[_expect_str(problem, "problems[]") for problem in problems],
        log=parse_log(ok.get("log", [])),
    )


def parse_started(ok: dict[str, Any]) -> Started:
    command = ok.get("command")
    if command is not None and (not isinstance(command, int) or isinstance(command, bool)):
        raise ProtocolError(f"'command' is {command!r}, expected an integer or null")

    step = parse_step(ok.get("step"))
    if command is None and step.kind == "http":
        raise ProtocolError("an http step arrived without a command id")
    return Started(command=command, step=step)


def parse_step(raw: Any) -> Step:
    step = _expect_dict(raw, "step")
    kind = step.get("kind")
    log = parse_log(step.get("log", []))

    if kind == "http":
        return Step(kind="http", request=parse_request(step.get("request")), log=log)
    if kind == "reply":
        return Step(kind="reply", reply=parse_reply(step.get("reply")), log=log)
    if kind == "ignore":
        return Step(kind="ignore", log=log)
    raise ProtocolError(f"step kind {kind!r} is not http, reply or ignore")


def parse_request(raw: Any) -> HttpRequest:
    request = _expect_dict(raw, "request")

    auth = request.get("auth")
    if auth not in ("client", "bearer", "none"):
        raise ProtocolError(f"request auth {auth!r} is not 'client', 'bearer' or 'none'")

    timeout_ms = request.get("timeout_ms")
    if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms <= 0:
        raise ProtocolError(f"request timeout_ms {timeout_ms!r} is not a positive integer")

    headers = _expect_dict(request.get("headers", {}), "headers")
    for name, value in headers.items():
        _expect_str(value, f"headers[{name!r}]")
        if name.lower() == "authorization":
            raise ProtocolError("the core must not set the Authorization header")

    body = request.get("body")
    if body is not None:
        _expect_str(body, "body")

    return HttpRequest(
        method=_expect_str(request.get("method"), "method"),
        url=_expect_str(request.get("url"), "url"),
        auth=auth,
        timeout_ms=timeout_ms,
        headers=dict(headers),
        body=body,
    )


def parse_reply(raw: Any) -> Reply:
    reply = _expect_dict(raw, "reply")
    error = reply.get("error", False)
    if not isinstance(error, bool):
        raise ProtocolError(f"reply error {error!r} is not a boolean")
    return Reply(
        body=_expect_str(reply.get("body"), "reply.body"),
        html=_expect_str(reply.get("html"), "reply.html"),
        error=error,
    )


def parse_log(raw: Any) -> list[LogLine]:
    lines = []
    for entry in _expect_list(raw, "log"):
        line = _expect_dict(entry, "log[]")
        level = line.get("level")
        if level not in ("debug", "info", "warning", "error"):
            raise ProtocolError(f"log level {level!r} is not debug, info, warning or error")
        lines.append(LogLine(level=level, message=_expect_str(line.get("message"), "message")))
    return lines


def _expect_dict(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"'{name}' is {type(value).__name__}, expected an object")
    return value


def _expect_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(f"'{name}' is {type(value).__name__}, expected an array")
    return value


def _expect_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"'{name}' is {type(value).__name__}, expected a string")
    return value
