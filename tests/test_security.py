"""Secrets and authority through the plugin: who adds credentials, what the core receives, who may act.

test_faults.py checks secrets under failures, test_hostile_input.py the
request paths and escaping, and test_plugin.py the basic whitelist refusal.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from mas_token_bot import engine
from mas_token_bot.protocol import ProtocolError, parse_request

from .conftest import ADMIN, CLIENT_SECRET, OPS_ROOM, OTHER_ROOM, OUTSIDER, Harness, plugin_config
from .plugin_harness import (
    ALLOWED_PATH,
    TOKEN_ENDPOINT_PATH,
    admin_requests,
    assert_no_secrets,
    only_reply,
    secrets_of,
)


def every_command(ulid: str, revoked_ulid: str) -> list[str]:
    """Return one command of each kind, so that every flow of the core runs once."""
    return [
        "!token help",
        "!token status",
        "!token list",
        "!token list revoked",
        f"!token show {ulid}",
        "!token list secsessiontok",
        "!token generate 2 7d --token secgenerated01",
        f"!token edit {ulid} uses 9 expires 30d",
        f"!token delete {ulid}",
        f"!token unrevoke {revoked_ulid}",
        "!token delete nosuchtoken99",
    ]


@pytest.fixture
def wasm_payloads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record every request the shim writes into the wasm core, and every response it reads back."""
    payloads: list[bytes] = []
    original = engine.WasmInstance.call

    def recording_call(self: engine.WasmInstance, request: bytes) -> bytes:
        payloads.append(request)
        response = original(self, request)
        payloads.append(response)
        return response

    monkeypatch.setattr(engine.WasmInstance, "call", recording_call)
    return payloads


async def run_session(harness: Harness, emulator: Any) -> list[dict[str, Any]]:
    ulid = emulator.add_token(token="secsessiontok")
    revoked_ulid = emulator.add_token(token="secrevokedtok", revoked=True)
    replies = []
    for command in every_command(ulid, revoked_ulid):
        replies.append(only_reply(await harness.send(command)))
    return replies


async def test_core_never_sees_a_secret(harness: Harness, emulator: Any, wasm_payloads: list[bytes]) -> None:
    await run_session(harness, emulator)

    assert len(emulator.issued_access_tokens) >= 1
    assert len(wasm_payloads) > 20
    for secret in secrets_of(emulator):
        for payload in wasm_payloads:
            assert secret.encode() not in payload
    # The core learns only that a token was stored, never the token.
    resumed = [json.loads(payload) for payload in wasm_payloads if b'"op": "resume"' in payload]
    stored = [item for item in resumed if item.get("response", {}).get("access_token_stored")]
    assert len(stored) >= 1
    assert all("access_token" not in json.loads(item["response"]["body"]) for item in stored)


async def test_session_leaks_no_secret(harness: Harness, emulator: Any) -> None:
    replies = await run_session(harness, emulator)

    assert any(record.levelno == logging.DEBUG for record in harness.log.records)
    assert_no_secrets(secrets_of(emulator), replies, harness)


async def test_credentials_only_in_authorization(harness: Harness, emulator: Any) -> None:
    await run_session(harness, emulator)

    issued = {f"Bearer {access.token}" for access in emulator.issued_access_tokens}
    for record in emulator.requests:
        assert ALLOWED_PATH.match(record.path), record.path
        assert CLIENT_SECRET not in record.body
        assert CLIENT_SECRET not in record.query
        if record.path == TOKEN_ENDPOINT_PATH:
            assert record.authorization is not None and record.authorization.startswith("Basic ")
        else:
            assert record.authorization in issued, record
    for access in emulator.issued_access_tokens:
        for record in emulator.requests:
            assert access.token not in record.body
            assert access.token not in record.query


def test_core_cannot_set_authorization() -> None:
    request = {
        "method": "GET",
        "url": "http://127.0.0.1:1/api/admin/v1/user-registration-tokens",
        "auth": "none",
        "timeout_ms": 1000,
        "headers": {"accept": "application/json", "AUTHORIZATION": "Bearer stolen"},
        "body": None,
    }

    with pytest.raises(ProtocolError, match="Authorization"):
        parse_request(request)


@pytest.mark.parametrize(
    "command",
    [
        "!token list",
        "!token list revoked",
        "!token show 01JAYQ5R6M3T8V2N4K7W9X1Z0B",
        "!token generate 5 7d --token mallorys-own",
        "!token edit 01JAYQ5R6M3T8V2N4K7W9X1Z0B uses unlimited",
        "!token delete abc123def456",
        "!token unrevoke abc123def456",
        "!token status",
        "!token help",
        "!token",
    ],
)
async def test_outsider_sends_no_request(harness: Harness, emulator: Any, command: str) -> None:
    body = only_reply(await harness.send(command, sender=OUTSIDER, room_id=OTHER_ROOM))["body"]

    assert "not allowed" in body
    assert emulator.requests == []


async def test_whitelists_checked_per_command(make_plugin: Any, emulator: Any) -> None:
    # The admin's and the room's permission apply to each command on its own.
    running = await make_plugin(plugin_config(emulator))

    allowed = only_reply(await running.send("!token list", sender=ADMIN, room_id=OTHER_ROOM))["body"]
    requests_after_admin = len(emulator.requests)
    refused = only_reply(await running.send("!token list", sender=OUTSIDER, room_id=OTHER_ROOM))["body"]
    requests_after_outsider = len(emulator.requests)
    in_room = only_reply(await running.send("!token list", sender=OUTSIDER, room_id=OPS_ROOM))["body"]

    assert "not allowed" not in allowed
    assert "not allowed" in refused
    assert "not allowed" not in in_room
    assert requests_after_admin >= 1
    assert requests_after_outsider == requests_after_admin
    assert len(admin_requests(emulator)) >= 2

    await running.reconfigure(room_whitelist=[])
    before = len(emulator.requests)
    revoked = only_reply(await running.send("!token list", sender=OUTSIDER, room_id=OPS_ROOM))["body"]

    assert "not allowed" in revoked
    assert len(emulator.requests) == before
