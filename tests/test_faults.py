"""Fault injection through the plugin: a broken MAS gets one clear reply, bounded retries and no leaked secret.

Every case runs the built plugin and core against the MAS emulator with
http_timeout set to 1 s. The retry rule checked here: a GET is sent at most
twice (one retry on 502, 503, 504, a timeout or a connection failure), and a
POST or PUT is sent exactly once, because MAS may have applied it already.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest

from mas_token_bot import engine

from .conftest import OPS_ROOM, OTHER_ROOM, Harness, plugin_config
from .plugin_harness import (
    TOKEN_ENDPOINT_PATH,
    TOKENS_PATH,
    admin_requests,
    assert_no_secrets,
    closed_port,
    only_reply,
    requests_to,
    secrets_of,
    token_endpoint_requests,
)

HTTP_TIMEOUT_S = 1
# Slack on top of the HTTP timeouts for one command: the core, the emulator
# and the event loop together.
REPLY_SLACK_S = 1.0
TARGET_TOKEN = "faulttarget01"
FULL_FUEL = engine.FUEL_PER_CALL
FULL_FALLBACK_FUEL = getattr(engine, "FALLBACK_FUEL_PER_CALL", None)


@dataclass(frozen=True)
class FaultCase:
    """One injected fault, the command that meets it and what the plugin must do."""

    name: str
    kind: str
    command: str  # "{ulid}" is replaced by the target token's ULID
    method: str
    path: str  # "{ulid}" as above
    reply_text: str
    log_text: str
    max_attempts: int
    options: dict[str, Any] = field(default_factory=dict)


GET_LIST = ("!token list", "GET", TOKENS_PATH)
GET_SHOW = ("!token show {ulid}", "GET", TOKENS_PATH + "/{ulid}")
POST_CREATE = ("!token generate 1", "POST", TOKENS_PATH)
POST_REVOKE = ("!token delete {ulid}", "POST", TOKENS_PATH + "/{ulid}/revoke")
PUT_EDIT = ("!token edit {ulid} uses 5", "PUT", TOKENS_PATH + "/{ulid}")
POST_TOKEN = ("!token list", "POST", TOKEN_ENDPOINT_PATH)


def case(name: str, kind: str, request: tuple[str, str, str], reply_text: str, log_text: str,
         max_attempts: int, **options: Any) -> FaultCase:
    command, method, path = request
    return FaultCase(name, kind, command, method, path, reply_text, log_text, max_attempts, options)


CASES = [
    # Server errors: only 502, 503 and 504 are worth a second GET.
    case("get-500", "status", GET_LIST, "MAS error", "HTTP 500", 1, status=500),
    case("get-502", "status", GET_LIST, "MAS error", "HTTP 502", 2, status=502),
    case("get-503", "status", GET_SHOW, "MAS error", "HTTP 503", 2, status=503),
    case("get-504", "status", GET_LIST, "MAS error", "HTTP 504", 2, status=504),
    case("post-500", "status", POST_CREATE, "MAS error", "HTTP 500", 1, status=500),
    case("post-502", "status", POST_CREATE, "MAS error", "HTTP 502", 1, status=502),
    case("post-503-revoke", "status", POST_REVOKE, "MAS error", "HTTP 503", 1, status=503),
    case("put-503", "status", PUT_EDIT, "MAS error", "HTTP 503", 1, status=503),
    case("get-502-html", "status", GET_LIST, "MAS error", "HTTP 502", 2, status=502, body="html"),
    # No response within http_timeout.
    case("get-hang", "hang", GET_LIST, "no answer within", "timed out after 1 s", 2),
    case("post-hang", "hang", POST_CREATE, "no answer within", "timed out after 1 s", 1),
    case("put-hang", "hang", PUT_EDIT, "no answer within", "timed out after 1 s", 1),
    # Connection reset before any response, and a body cut short.
    case("get-reset", "reset", GET_LIST, "MAS error", "failed", 2),
    case("post-reset", "reset", POST_REVOKE, "MAS error", "failed", 1),
    case("put-reset", "reset", PUT_EDIT, "MAS error", "failed", 1),
    case("get-truncated", "truncated", GET_SHOW, "MAS error", "could not be read in full", 2),
    case("post-truncated", "truncated", POST_CREATE, "MAS error", "could not be read in full", 1),
    # Bodies that are not MAS JSON.
    case("get-invalid-json", "invalid_json", GET_LIST, "MAS error", "does not parse", 1),
    case("get-html-200", "html", GET_LIST, "MAS error", "does not parse", 1),
    case("post-html-200", "html", POST_CREATE, "MAS error", "does not parse", 1),
    # Rate limiting: never retried, the reply passes Retry-After on.
    case("get-429", "rate_limited", GET_LIST, "rate limiting", "HTTP 429", 1, retry_after_s=17),
    case("post-429", "rate_limited", POST_CREATE, "rate limiting", "HTTP 429", 1, retry_after_s=17),
    # The token endpoint: slow, without an access token, failing. It is a POST.
    case("token-slow", "slow", POST_TOKEN, "no answer within", "timed out after 1 s", 1, delay_s=3),
    case("token-missing-access-token", "missing_access_token", POST_TOKEN, "no access token", "access token request failed", 1),
    case("token-503", "status", POST_TOKEN, "MAS error", "HTTP 503", 1, status=503),
    case("token-reset", "reset", POST_TOKEN, "MAS error", "failed", 1),
    case("token-html", "html", POST_TOKEN, "MAS error", "access token request failed", 1),
]


def reply_text(content: dict[str, Any]) -> str:
    return content["body"]


def warnings_and_errors(harness: Harness, start: int = 0) -> list[str]:
    return [record.getMessage() for record in harness.log.records[start:] if record.levelno >= logging.WARNING]


async def timed_send(harness: Harness, body: str, **kwargs: Any) -> tuple[list[dict[str, Any]], float]:
    started = time.monotonic()
    replies = await harness.send(body, **kwargs)
    return replies, time.monotonic() - started


def time_bound(records: list[Any]) -> float:
    """Return the longest a command may take: one timeout per attempt that got no response, plus slack."""
    unanswered = sum(1 for record in records if record.fault in ("hang", "slow"))
    return HTTP_TIMEOUT_S * max(1, unanswered) + REPLY_SLACK_S


async def assert_recovers(harness: Harness, emulator: Any) -> None:
    """Check that the next command after clear_fault() gets a normal reply."""
    emulator.clear_fault()

    content = only_reply(await harness.send(f"!token list {TARGET_TOKEN}"))

    assert TARGET_TOKEN in content["body"]
    assert "MAS error" not in content["body"]


@pytest.mark.parametrize("fault", CASES, ids=[fault.name for fault in CASES])
async def test_fault_gets_one_bounded_reply(make_plugin: Any, emulator: Any, fault: FaultCase) -> None:
    running = await make_plugin(plugin_config(emulator, http_timeout=HTTP_TIMEOUT_S))
    ulid = emulator.add_token(token=TARGET_TOKEN)
    path = fault.path.format(ulid=ulid)
    emulator.set_fault(fault.kind, path=path, method=fault.method, **fault.options)

    replies, elapsed = await timed_send(running, fault.command.format(ulid=ulid))

    content = only_reply(replies)
    body = reply_text(content)
    assert fault.reply_text in body
    assert "Traceback" not in body

    attempts = requests_to(emulator, fault.method, path)
    assert 1 <= len(attempts) <= fault.max_attempts, [(record.method, record.path, record.fault) for record in attempts]
    assert {record.fault for record in attempts} == {fault.kind}
    assert elapsed <= time_bound(attempts), f"the reply took {elapsed:.2f} s"

    logged = warnings_and_errors(running)
    assert any(fault.log_text in line for line in logged), logged
    assert_no_secrets(secrets_of(emulator), replies, running)

    await assert_recovers(running, emulator)
    assert_no_secrets(secrets_of(emulator), running.replies_since(0), running)


async def test_rate_limit_reply_repeats_retry_after(make_plugin: Any, emulator: Any) -> None:
    running = await make_plugin(plugin_config(emulator, http_timeout=HTTP_TIMEOUT_S))
    emulator.set_fault("rate_limited", target="admin", retry_after_s=17)

    body = reply_text(only_reply(await running.send("!token list")))

    assert "17 seconds" in body


async def test_401_everywhere_no_loop(make_plugin: Any, emulator: Any) -> None:
    running = await make_plugin(plugin_config(emulator, http_timeout=HTTP_TIMEOUT_S))
    emulator.add_token(token=TARGET_TOKEN)
    emulator.set_fault("unauthorized")

    replies, elapsed = await timed_send(running, "!token list")

    body = reply_text(only_reply(replies))
    assert "client_id" in body
    assert "client_secret" in body
    assert elapsed <= HTTP_TIMEOUT_S + REPLY_SLACK_S
    assert len(token_endpoint_requests(emulator)) == 1
    assert admin_requests(emulator) == []
    assert any("401" in line for line in warnings_and_errors(running))
    assert_no_secrets(secrets_of(emulator), replies, running)

    await assert_recovers(running, emulator)


async def test_admin_401_refreshes_token_once(make_plugin: Any, emulator: Any) -> None:
    running = await make_plugin(plugin_config(emulator, http_timeout=HTTP_TIMEOUT_S))
    emulator.add_token(token=TARGET_TOKEN)
    emulator.set_fault("unauthorized", target="admin")

    replies, elapsed = await timed_send(running, "!token list")

    body = reply_text(only_reply(replies))
    assert "MAS rejected" in body
    assert elapsed <= HTTP_TIMEOUT_S + REPLY_SLACK_S
    # One new access token after the first 401, and the GET sent once more with it.
    assert len(token_endpoint_requests(emulator)) == 2
    assert len(requests_to(emulator, "GET", TOKENS_PATH)) == 2
    assert any("401" in line for line in warnings_and_errors(running))
    assert_no_secrets(secrets_of(emulator), replies, running)

    await assert_recovers(running, emulator)
    assert_no_secrets(secrets_of(emulator), running.replies_since(0), running)


def attempts_logged(harness: Harness, method: str, path: str) -> int:
    """Count the requests the runner logged as sent, for servers that keep no request log."""
    expected = f": {method} {path}"
    return sum(1 for record in harness.log.records if record.getMessage().endswith(expected))


@pytest.mark.parametrize(
    ("command", "method"),
    [("!token list", "GET"), ("!token generate 1", "POST")],
    ids=["get", "post"],
)
async def test_admin_api_connection_refused(make_plugin: Any, emulator: Any, command: str, method: str) -> None:
    refused = f"http://127.0.0.1:{closed_port()}/api/admin"
    running = await make_plugin(plugin_config(emulator, admin_api=refused, http_timeout=HTTP_TIMEOUT_S))
    emulator.add_token(token=TARGET_TOKEN)

    replies, elapsed = await timed_send(running, command)

    body = reply_text(only_reply(replies))
    assert "could not connect" in body
    assert elapsed <= HTTP_TIMEOUT_S + REPLY_SLACK_S
    attempts = attempts_logged(running, method, TOKENS_PATH)
    assert 1 <= attempts <= (2 if method == "GET" else 1)
    assert any("ClientConnectorError" in line for line in warnings_and_errors(running))
    assert_no_secrets(secrets_of(emulator), replies, running)

    await running.reconfigure(admin_api=f"{emulator.base_url}/api/admin")
    await assert_recovers(running, emulator)


async def test_token_endpoint_connection_refused(make_plugin: Any, emulator: Any) -> None:
    refused = f"http://127.0.0.1:{closed_port()}/oauth2/token"
    running = await make_plugin(plugin_config(emulator, token_url=refused, http_timeout=HTTP_TIMEOUT_S))
    emulator.add_token(token=TARGET_TOKEN)

    replies, elapsed = await timed_send(running, "!token list")

    body = reply_text(only_reply(replies))
    assert "could not connect" in body
    assert elapsed <= HTTP_TIMEOUT_S + REPLY_SLACK_S
    assert attempts_logged(running, "POST", TOKEN_ENDPOINT_PATH) == 1
    assert emulator.requests == []
    assert_no_secrets(secrets_of(emulator), replies, running)

    await running.reconfigure(token_url=emulator.token_url)
    await assert_recovers(running, emulator)


# Faults inside the wasm core in the middle of a command. test_plugin.py
# covers a trap in the first call of a command (start).


def starve_next_resume(harness: Harness, monkeypatch: pytest.MonkeyPatch, limit: str) -> list[bytes]:
    """Make the current instance trap in its next `resume` call, with real fuel or memory exhaustion.

    Returns a list that gets the request bytes of each starved call. Only that
    one instance is changed, so the instance built after the fault has the
    normal limits.
    """
    instance = harness.plugin.runner.core._instance
    assert instance is not None
    if limit == "memory" and not hasattr(instance, "_store"):
        pytest.skip("the memory cap is set through a wasmtime Store, and this engine has none")
    original = instance.call
    starved: list[bytes] = []

    def call(request: bytes) -> bytes:
        if b'"op": "resume"' not in request or starved:
            return original(request)

        starved.append(request)
        if limit == "fuel":
            monkeypatch.setattr(engine, "FUEL_PER_CALL", 50)
            monkeypatch.setattr(engine, "FALLBACK_FUEL_PER_CALL", 50, raising=False)
        else:
            # No memory beyond what the instance has now, so the next growth fails.
            instance._store.set_limits(memory_size=instance._memory.data_len(instance._store))
        try:
            return original(request)
        finally:
            # Core rebuilds the instance after this call raises, with full fuel.
            monkeypatch.setattr(engine, "FUEL_PER_CALL", FULL_FUEL)
            monkeypatch.setattr(engine, "FALLBACK_FUEL_PER_CALL", FULL_FALLBACK_FUEL, raising=False)

    monkeypatch.setattr(instance, "call", call)
    return starved


@pytest.mark.parametrize("limit", ["fuel", "memory"])
async def test_core_fault_mid_command_rebuilds(harness: Harness, emulator: Any, monkeypatch: pytest.MonkeyPatch, limit: str) -> None:
    # Enough tokens that parsing the list page needs more memory than a fresh instance has.
    emulator.seed_tokens(400)
    emulator.add_token(token=TARGET_TOKEN)
    old_instance = harness.plugin.runner.core._instance
    starved = starve_next_resume(harness, monkeypatch, limit)

    body = reply_text(only_reply(await harness.send("!token list")))

    assert len(starved) == 1
    assert "internal error" in body.lower()
    assert "trap" not in body.lower()
    # The trap came after MAS was asked, in the middle of the command.
    assert len(token_endpoint_requests(emulator)) == 1
    faults = [record for record in harness.log.records if record.levelno == logging.ERROR and record.exc_info]
    assert any(isinstance(record.exc_info[1], engine.EngineFault) for record in faults)
    assert harness.plugin.runner.core._instance is not old_instance
    assert any("Building a new wasm core instance" in line for line in warnings_and_errors(harness))

    await assert_recovers(harness, emulator)


async def test_core_fault_fails_other_inflight_command(harness: Harness, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ulid = emulator.add_token(token=TARGET_TOKEN)
    # Warm up the access token, so each command below makes exactly one admin request.
    only_reply(await harness.send("!token list"))
    emulator.set_fault("slow", path=f"{TOKENS_PATH}/{ulid}", method="GET", delay_s=0.5)
    starved = starve_next_resume(harness, monkeypatch, "fuel")

    # The list finishes first and its resume traps. The show is still waiting
    # for MAS, and its command no longer exists in the rebuilt instance.
    before = len(harness.bot.responded)
    slow_show = asyncio.create_task(harness.send(f"!token show {ulid}", room_id=OTHER_ROOM))
    await asyncio.sleep(0.1)
    await harness.send("!token list", room_id=OPS_ROOM)
    await slow_show

    assert len(starved) == 1
    events = harness.bot.responded[before:]
    for room_id in (OPS_ROOM, OTHER_ROOM):
        replies = [event.content.serialize() for event in events if event.room_id == room_id]
        assert "internal error" in reply_text(only_reply(replies)).lower()

    await assert_recovers(harness, emulator)
