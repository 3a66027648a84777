"""End-to-end tests of the plugin: maubot's test client, the built .wasm and the MAS emulator."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import pytest
from mautrix.types import MessageType, TextMessageEventContent

from mas_token_bot import engine
from tests.mas_emulator import Client, MasEmulator
from tests.plugin_harness import only_reply

from .conftest import (
    ADMIN,
    BOT_MXID,
    CLIENT_ID,
    CLIENT_SECRET,
    OPS_ROOM,
    OTHER_ROOM,
    OUTSIDER,
    Harness,
    plugin_config,
)

TOKENS_PATH = "/api/admin/v1/user-registration-tokens"
FIXED_NOW = datetime(2026, 12, 4, 20, 0, 0, tzinfo=timezone.utc)
FIXED_NOW_MS = int(FIXED_NOW.timestamp() * 1000)


# Helpers over the emulator's request log


def _get(record: Any, name: str) -> Any:
    return record[name] if isinstance(record, dict) else getattr(record, name)


def _query(record: Any) -> dict[str, str]:
    query = _get(record, "query")
    if isinstance(query, str):
        return {key: values[-1] for key, values in parse_qs(query).items()}
    return dict(query or {})


def token_requests(emu: Any) -> list[Any]:
    return [record for record in emu.requests if _get(record, "path").endswith("/oauth2/token")]


def admin_requests(emu: Any) -> list[Any]:
    return [record for record in emu.requests if "/api/admin/" in _get(record, "path")]


def list_requests(emu: Any) -> list[Any]:
    return [
        record
        for record in emu.requests
        if _get(record, "method") == "GET" and _get(record, "path") == TOKENS_PATH
    ]


def create_requests(emu: Any) -> list[Any]:
    return [
        record
        for record in emu.requests
        if _get(record, "method") == "POST" and _get(record, "path") == TOKENS_PATH
    ]


def revoke_requests(emu: Any) -> list[Any]:
    return [
        record
        for record in emu.requests
        if _get(record, "method") == "POST" and _get(record, "path").endswith("/revoke")
    ]


def reply_body(replies: list[dict[str, Any]]) -> str:
    return only_reply(replies)["body"]


def _token_attribute(emu: Any, ulid: str, name: str) -> Any:
    token = emu.get_token(ulid)
    return token[name] if isinstance(token, dict) else getattr(token, name)


# Finding a token by its string


async def test_delete_unknown_string_not_found(harness: Harness, emulator: Any) -> None:
    emulator.seed_tokens(30)

    body = reply_body(await harness.send("!token delete nosuchtoken99"))

    assert "not found" in body
    assert revoke_requests(emulator) == []
    assert len(list_requests(emulator)) >= 1


async def test_delete_finds_token_on_third_page(harness: Harness, emulator: Any) -> None:
    # Learn the core's page size from one search, then fill the list so that
    # the target lands on the third page.
    emulator.seed_tokens(250)
    reply_body(await harness.send("!token delete nosuchtoken99"))
    page_size = int(_query(list_requests(emulator)[0])["page[first]"])
    assert page_size >= 100

    emulator.seed_tokens(2 * page_size + 10 - 250)
    target = emulator.add_token(token="abc123def456")
    lists_before = len(list_requests(emulator))

    body = reply_body(await harness.send("!token delete abc123def456"))

    assert "revoked" in body
    assert len(list_requests(emulator)) - lists_before >= 3
    revokes = revoke_requests(emulator)
    assert len(revokes) == 1
    assert _get(revokes[0], "path") == f"{TOKENS_PATH}/{target}/revoke"
    assert _token_attribute(emulator, target, "revoked_at_ns") is not None


async def test_delete_by_ulid_needs_no_paging(harness: Harness, emulator: Any) -> None:
    target = emulator.add_token(token="directulid01")

    body = reply_body(await harness.send(f"!token delete {target}"))

    assert "revoked" in body
    assert list_requests(emulator) == []
    assert [_get(record, "path") for record in revoke_requests(emulator)] == [f"{TOKENS_PATH}/{target}/revoke"]


# Revoke and unrevoke preconditions


async def test_revoke_twice_already_revoked(harness: Harness, emulator: Any) -> None:
    target = emulator.add_token(token="twicetoken01")

    first = reply_body(await harness.send(f"!token delete {target}"))
    second = reply_body(await harness.send(f"!token delete {target}"))

    assert "revoked" in first
    assert "already revoked" in second
    assert "Traceback" not in second


async def test_unrevoke_active_not_revoked(harness: Harness, emulator: Any) -> None:
    target = emulator.add_token(token="activetoken1")

    body = reply_body(await harness.send(f"!token unrevoke {target}"))

    assert "not revoked" in body
    assert _token_attribute(emulator, target, "revoked_at_ns") is None


async def test_unrevoke_revoked_token(harness: Harness, emulator: Any) -> None:
    target = emulator.add_token(token="revokedtok01", revoked=True)

    reply_body(await harness.send("!token unrevoke revokedtok01"))

    assert _token_attribute(emulator, target, "revoked_at_ns") is None


# Listing


async def test_list_shows_all_25_tokens(harness: Harness, emulator: Any) -> None:
    ids = emulator.seed_tokens(25)
    strings = [_token_attribute(emulator, ulid, "token") for ulid in ids]

    body = reply_body(await harness.send("!token list"))

    shown = [string for string in strings if string in body]
    assert len(shown) == 25 or ("25" in body and len(shown) >= 10), body


# Generate argument checks


@pytest.mark.parametrize("uses", ["0", "-3", "two", "1.5", "99999999999"])
async def test_generate_rejects_bad_uses(harness: Harness, emulator: Any, uses: str) -> None:
    body = reply_body(await harness.send(f"!token generate {uses}"))

    assert "Usage" in body
    assert create_requests(emulator) == []


@pytest.mark.parametrize("expiry", ["0", "-60"])
async def test_generate_rejects_bad_expiry(harness: Harness, emulator: Any, expiry: str) -> None:
    body = reply_body(await harness.send(f"!token generate 1 {expiry}"))

    assert "Usage" in body or "expir" in body.lower()
    assert create_requests(emulator) == []


async def test_generate_expiry_one_day_later(harness: Harness, emulator: Any) -> None:
    harness.set_clock(lambda: FIXED_NOW_MS)

    only_reply(await harness.send("!token generate 1 86400"))

    creates = create_requests(emulator)
    assert len(creates) == 1
    sent = json.loads(_get(creates[0], "body"))
    assert sent["usage_limit"] == 1
    expires_at = sent["expires_at"]
    assert expires_at.endswith("Z") or expires_at.endswith("+00:00")
    assert datetime.fromisoformat(expires_at) == FIXED_NOW + timedelta(days=1)


async def test_generate_uses_null_default(make_plugin: Any, emulator: Any) -> None:
    running = await make_plugin(plugin_config(emulator, default_uses_allowed=None))

    only_reply(await running.send("!token generate"))

    creates = create_requests(emulator)
    assert len(creates) == 1
    assert json.loads(_get(creates[0], "body")).get("usage_limit") is None


# Rendering of null fields


async def test_null_fields_render_as_words(harness: Harness, emulator: Any) -> None:
    emulator.add_token(token="emptyfield01", usage_limit=None, expires_at=None)

    content = only_reply(await harness.send("!token list emptyfield01"))

    text = content["body"].lower()
    assert "unlimited" in text
    assert re.search(r"expires\W+never", text)
    assert re.search(r"never used|last used\W+never", text)
    for rendered in (content["body"], content["formatted_body"]):
        assert "None" not in rendered
        assert "null" not in rendered


# Credentials stay out of replies and logs


async def test_delete_uses_bearer_from_token_url(harness: Harness, emulator: Any) -> None:
    target = emulator.add_token(token="bearertoken1")

    replies = await harness.send(f"!token delete {target}")

    tokens = token_requests(emulator)
    assert len(tokens) == 1
    basic = base64.b64decode(_get(tokens[0], "authorization").removeprefix("Basic ")).decode()
    assert basic == f"{CLIENT_ID}:{CLIENT_SECRET}"

    revokes = revoke_requests(emulator)
    assert len(revokes) == 1
    access_token = emulator.issued_access_tokens[-1].token
    assert _get(revokes[0], "authorization") == f"Bearer {access_token}"

    secrets = [CLIENT_SECRET, access_token, base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()]
    reply = only_reply(replies)
    for secret in secrets:
        assert secret not in reply["body"]
        assert secret not in reply["formatted_body"]
        for line in harness.log.texts():
            assert secret not in line


async def test_requests_logged_at_debug_without_bodies(harness: Harness, emulator: Any) -> None:
    await harness.send("!token list")

    debug = harness.log.at_level(logging.DEBUG)
    assert any("POST /oauth2/token" in line for line in debug)
    assert any(f"GET {TOKENS_PATH}" in line for line in debug)
    assert not any("grant_type" in line for line in harness.log.texts())


# Token endpoint errors


async def test_token_401_names_client_keys(make_plugin: Any, emulator: Any) -> None:
    running = await make_plugin(plugin_config(emulator, client_secret="wrong-secret"))

    body = reply_body(await running.send("!token list"))

    assert "client_id" in body
    assert "client_secret" in body
    assert "wrong-secret" not in body
    assert [_get(record, "status") for record in token_requests(emulator)] == [401]
    assert admin_requests(emulator) == []


async def test_token_403_names_admin_clients(make_plugin: Any) -> None:
    # The client exists and its secret is right, but MAS's policy data does
    # not list it in admin_clients, so MAS rejects the urn:mas:admin scope.
    not_admin = MasEmulator(clients=[Client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, admin=False)])
    await not_admin.start()
    try:
        running = await make_plugin(plugin_config(not_admin))

        body = reply_body(await running.send("!token list"))
    finally:
        await not_admin.stop()

    assert "admin_clients" in body
    assert [_get(record, "status") for record in token_requests(not_admin)] == [403]
    assert admin_requests(not_admin) == []


# Access token reuse and refresh


async def test_token_reused_within_lifetime(harness: Harness, emulator: Any) -> None:
    emulator.seed_tokens(3)
    clock = {"now": FIXED_NOW_MS}
    harness.set_clock(lambda: clock["now"])

    for _ in range(10):
        only_reply(await harness.send("!token list"))
        clock["now"] += 6_000

    assert len(token_requests(emulator)) == 1
    lists = list_requests(emulator)
    assert len(lists) >= 10
    assert {_get(record, "status") for record in lists} == {200}
    assert {_get(record, "authorization") for record in lists} == {f"Bearer {emulator.issued_access_tokens[0].token}"}


async def test_expired_token_refreshed_once(harness: Harness, emulator: Any) -> None:
    ids = emulator.seed_tokens(3)
    clock = {"now": FIXED_NOW_MS}
    harness.set_clock(lambda: clock["now"])
    only_reply(await harness.send("!token list"))

    # MAS's clock runs past the token's 300 s, while by the bot's clock the token is still fresh.
    emulator.advance_clock(301)
    clock["now"] += 60_000
    lists_before = len(list_requests(emulator))

    body = reply_body(await harness.send("!token list"))

    assert len(token_requests(emulator)) == 2
    new_lists = list_requests(emulator)[lists_before:]
    statuses = [_get(record, "status") for record in new_lists]
    assert statuses[0] == 401
    assert statuses.count(401) == 1
    # The request that got the 401 is sent again, once, with the new token.
    assert _get(new_lists[1], "query") == _get(new_lists[0], "query")
    assert _get(new_lists[1], "authorization") == f"Bearer {emulator.issued_access_tokens[1].token}"
    for ulid in ids:
        assert _token_attribute(emulator, ulid, "token") in body


# Authorization


async def test_outsider_refused_without_requests(harness: Harness, emulator: Any) -> None:
    for body in ("!token list", "!token generate", "!token delete abc123def456", "!token unrevoke abc123def456"):
        text = reply_body(await harness.send(body, sender=OUTSIDER, room_id=OTHER_ROOM))
        assert "not allowed" in text

    assert list(emulator.requests) == []


async def test_whitelisted_room_admits_anyone(harness: Harness, emulator: Any) -> None:
    body = reply_body(await harness.send("!token list", sender=OUTSIDER, room_id=OPS_ROOM))

    assert "not allowed" not in body
    assert len(list_requests(emulator)) >= 1


async def test_whitelisted_user_in_any_room(harness: Harness, emulator: Any) -> None:
    body = reply_body(await harness.send("!token list", sender=ADMIN, room_id=OTHER_ROOM))

    assert "not allowed" not in body
    assert len(list_requests(emulator)) >= 1


# Config problems


async def test_missing_admin_api_named_then_fixed(make_plugin: Any, emulator: Any) -> None:
    config = plugin_config(emulator)
    del config["admin_api"]
    running = await make_plugin(config)

    body = reply_body(await running.send("!token list"))

    assert "admin_api" in body
    assert emulator.requests == []
    assert any("admin_api" in line for line in running.log.at_level(logging.WARNING))

    await running.reconfigure(admin_api=f"{emulator.base_url}/api/admin")
    fixed = reply_body(await running.send("!token list"))

    assert "admin_api" not in fixed
    assert len(list_requests(emulator)) >= 1


async def test_malformed_whitelist_named(make_plugin: Any, emulator: Any) -> None:
    running = await make_plugin(plugin_config(emulator, whitelist="@admin:example.org"))

    body = reply_body(await running.send("!token list"))

    assert "whitelist" in body
    assert emulator.requests == []

    await running.reconfigure(whitelist=[ADMIN])

    assert "whitelist" not in reply_body(await running.send("!token list"))


async def test_unknown_config_key_warned(make_plugin: Any, emulator: Any) -> None:
    running = await make_plugin(plugin_config(emulator, adminapi="typo"))

    warnings = running.log.at_level(logging.WARNING)

    assert any("'adminapi'" in line for line in warnings)
    assert running.plugin.config["admin_api"] == f"{emulator.base_url}/api/admin"


# Which events the plugin handles


async def test_notices_edits_and_own_messages_ignored(harness: Harness, emulator: Any) -> None:
    assert await harness.send("!token list", msgtype=MessageType.NOTICE) == []
    assert await harness.send("!token list", sender=BOT_MXID) == []

    edit = TextMessageEventContent(msgtype=MessageType.TEXT, body="!token list")
    edit.set_edit("$original")
    assert await harness.dispatch(edit) == []

    assert emulator.requests == []


async def test_plain_chat_ignored(harness: Harness, emulator: Any) -> None:
    assert await harness.send("hello, is the bot here?") == []
    assert emulator.requests == []


# Faults and limits in the shim


async def test_trap_replies_error_and_recovers(harness: Harness, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "FUEL_PER_CALL", 50)

    body = reply_body(await harness.send("!token list"))

    assert "internal error" in body.lower()
    assert "Trap" not in body
    assert "fuel" not in body
    faults = [record for record in harness.log.records if record.levelno == logging.ERROR and record.exc_info]
    assert len(faults) >= 1

    monkeypatch.undo()
    recovered = reply_body(await harness.send("!token list"))

    assert "internal error" not in recovered.lower()
    assert len(list_requests(emulator)) >= 1


async def test_step_limit_cancels_command(harness: Harness, emulator: Any) -> None:
    harness.plugin.runner.max_steps = 1

    body = reply_body(await harness.send("!token list"))

    assert "more than 1 requests" in body
    assert len(emulator.requests) == 1
    assert any("exceeded 1 requests" in line for line in harness.log.at_level(logging.ERROR))


async def test_concurrent_commands_keep_apart(harness: Harness, emulator: Any) -> None:
    first = emulator.add_token(token="concurrent01")
    second = emulator.add_token(token="concurrent02")

    await asyncio.gather(
        harness.send(f"!token delete {first}"),
        harness.send(f"!token delete {second}"),
    )

    replies = harness.replies_since(0)
    assert len(replies) == 2
    assert all("revoked" in reply["body"] for reply in replies)
    assert sorted(_get(record, "path") for record in revoke_requests(emulator)) == sorted(
        [f"{TOKENS_PATH}/{first}/revoke", f"{TOKENS_PATH}/{second}/revoke"]
    )


async def test_deadline_cancels_hanging_command(harness: Harness, emulator: Any) -> None:
    harness.plugin.runner.deadline_s = 0.5
    emulator.set_fault("hang", target="admin")

    body = reply_body(await harness.send("!token list"))

    assert "timed out after 0.5 s" in body
    assert any("timed out after 0.5 s" in line for line in harness.log.at_level(logging.ERROR))

    emulator.clear_fault()
    harness.plugin.runner.deadline_s = 30
    recovered = reply_body(await harness.send("!token list"))

    assert "timed out" not in recovered


async def test_mas_timeout_reaches_core(make_plugin: Any, emulator: Any) -> None:
    running = await make_plugin(plugin_config(emulator, http_timeout=1))
    emulator.set_fault("hang", target="admin")

    body = reply_body(await running.send("!token list"))

    assert body != ""
    assert "Traceback" not in body
    assert any("timed out after 1 s" in line for line in running.log.at_level(logging.WARNING))


async def test_shim_bug_gives_generic_reply(harness: Harness, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(request: Any) -> Any:
        raise RuntimeError("detail that must stay in the log")

    monkeypatch.setattr(harness.plugin.runner, "_transport", type("Broken", (), {"perform": staticmethod(broken)})())

    body = reply_body(await harness.send("!token list"))

    assert "internal error" in body.lower()
    assert "detail that must stay" not in body
    logged = [record for record in harness.log.records if record.exc_info]
    assert any("detail that must stay in the log" in str(record.exc_info[1]) for record in logged)


async def test_connection_check_logged_at_start(make_plugin: Any, emulator: Any) -> None:
    running = await make_plugin(plugin_config(emulator), check_connection=True)
    await running.plugin.connection_check

    checks = [record for record in running.log.records if "MAS connection check" in record.getMessage()]
    assert len(checks) == 1
    assert checks[0].levelno == logging.INFO
    assert len(token_requests(emulator)) == 1
    assert running.bot.responded == []


async def test_connection_check_warns_on_bad_secret(make_plugin: Any, emulator: Any) -> None:
    running = await make_plugin(plugin_config(emulator, client_secret="wrong-secret"), check_connection=True)
    await running.plugin.connection_check

    warnings = [line for line in running.log.at_level(logging.WARNING) if "MAS connection check" in line]
    assert len(warnings) == 1
    assert "client_secret" in warnings[0]
    assert "wrong-secret" not in warnings[0]
