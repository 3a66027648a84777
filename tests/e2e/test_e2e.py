"""End-to-end test: the built .mbp uploaded into a real maubot, used from Matrix rooms.

Synapse and maubot are the PyPI releases pinned in tests/e2e/install.sh, run as
separate processes on loopback ports. The only stand-in is the project's MAS
emulator (tests/mas_emulator). The whole file runs twice, once per maubot venv
in MAUBOT_ENVIRONMENTS: with wasmtime, and as a stock maubot without it, where
the plugin runs its core in the bundled interpreter. pytest stops one stack
before it starts the next. The tests of one environment share its stack and
run in file order: later tests expect the token that the first one generates,
and the last two stop the servers and then read their complete logs.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from datetime import datetime
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from .stack import MAUBOT_ENVIRONMENTS, MaubotEnvironment, Stack, ensure_plugin_built, install_servers

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Synapse rejects events whose JSON is larger than this (MAX_PDU_SIZE in
# synapse/api/constants.py of Synapse 1.163).
MAX_EVENT_BYTES = 65536

REPLY_TIMEOUT = 30.0
# How long to keep watching the room, or the MAS request log, after a reply
# for anything that arrives late.
SETTLE_SECONDS = 2.0
# A refusal is one short sentence, so a longer reply likely contains data.
MAX_REFUSAL_CHARS = 300

# The plugin's warning when it falls back to pwasm, and the install command
# the warning must name (WASMTIME_PIN in python-shim/mas_token_bot/engine.py).
FALLBACK_WARNING = "wasmtime is not usable"
WASMTIME_INSTALL_COMMAND = "`pip install wasmtime==51.0.0`"
# The start of bot.py's INFO line that names the engine.
ENGINE_STARTED = "Started the wasm core with the "

# The token string that test_extended_commands chooses with --token.
CHOSEN_TOKEN = "welcome-e2e"
# Every subcommand name that `!token help` lists, and the "Also: ..." notes
# that name the aliases (Subcommand in crate/src/command.rs).
HELP_SUBCOMMANDS = ("list", "show", "generate", "edit", "delete", "unrevoke", "status", "help")
HELP_ALIASES = ("Also: ls.", "Also: info.", "Also: new, create.", "Also: revoke.",
                "Also: restore.")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=MAUBOT_ENVIRONMENTS,
                        ids=lambda environment: environment.name)
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    environment: MaubotEnvironment = request.param
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        stack = Stack(session, maubot_env=environment)
        try:
            async with stack.step("install Synapse and maubot (tests/e2e/install.sh)",
                                  timeout=1500):
                await asyncio.to_thread(install_servers)
            async with stack.step("build the plugin (./worker build)", timeout=1900):
                mbp = await asyncio.to_thread(ensure_plugin_built)
            await stack.start(mbp)
            yield stack
        finally:
            stack.stop()
            (stack.run_dir / "timings.json").write_text(json.dumps(stack.timings, indent=2))


# --- helpers -----------------------------------------------------------------


async def tokens_by_id(stack: Stack) -> dict[str, dict[str, Any]]:
    """Return the emulator's registration tokens: {"id": ULID, "token": ..., "revoked_at": ...}."""
    state = await stack.control.state()
    return {token["id"]: token for token in state["tokens"]}


async def mas_request_count(stack: Stack) -> int:
    state = await stack.control.state()
    return len(state["requests"])


def is_bot_message(stack: Stack, event: dict[str, Any]) -> bool:
    return (event.get("type") == "m.room.message"
            and event.get("sender") == stack.users["bot"].user_id)


async def send_command(stack: Stack, sender: str, room_id: str, text: str,
                       settle: float = 0.0) -> list[dict[str, Any]]:
    """Send `text` as `sender` and return the bot's messages sent after it.

    Waits for the first bot message, then `settle` more seconds for any further
    ones.
    """
    client = stack.clients[sender]
    command_id = await client.send_text(room_id, text)
    deadline = time.monotonic() + REPLY_TIMEOUT
    while True:
        replies = [event for event in await client.events_after(room_id, command_id)
                   if is_bot_message(stack, event)]
        if replies:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"no reply from the bot to {sender}'s {text!r} "
                               f"within {REPLY_TIMEOUT:.0f} s")
        await asyncio.sleep(0.3)
    if settle:
        await asyncio.sleep(settle)
        replies = [event for event in await client.events_after(room_id, command_id)
                   if is_bot_message(stack, event)]
    return replies


async def single_reply(stack: Stack, sender: str, room_id: str, text: str) -> dict[str, Any]:
    """Send a command and return the content of the bot's one m.notice reply."""
    replies = await send_command(stack, sender, room_id, text)
    content = replies[0]["content"]
    assert content.get("msgtype") == "m.notice", (
        f"reply to {text!r} has msgtype {content.get('msgtype')!r}, expected m.notice")
    assert isinstance(content.get("body"), str) and content["body"], (
        f"reply to {text!r} has no body")
    return content


def assert_reply_mentions(content: dict[str, Any], needle: str, what: str) -> None:
    """Check that both the plain body and, when present, the HTML body contain `needle`."""
    assert needle in content["body"], f"the reply's body does not contain {what}: {content['body']!r}"
    if "formatted_body" in content:
        assert needle in content["formatted_body"], (
            f"the reply's formatted_body does not contain {what}: {content['formatted_body']!r}")


async def assert_refused_without_mas_requests(stack: Stack, sender: str, room_id: str,
                                              text: str) -> None:
    requests_before = await mas_request_count(stack)
    tokens_before = await tokens_by_id(stack)

    replies = await send_command(stack, sender, room_id, text, settle=SETTLE_SECONDS)
    assert len(replies) == 1, f"expected one refusal for {text!r}, got {len(replies)} messages"
    content = replies[0]["content"]
    assert content.get("msgtype") == "m.notice", (
        f"refusal for {text!r} has msgtype {content.get('msgtype')!r}, expected m.notice")
    body = content.get("body", "")
    assert 0 < len(body) <= MAX_REFUSAL_CHARS, (
        f"refusal for {text!r} should be a short message, got {len(body)} characters: {body!r}")
    for token in tokens_before.values():
        assert token["token"] not in body, f"refusal for {text!r} shows token {token['id']}"

    requests_after = await mas_request_count(stack)
    assert requests_after == requests_before, (
        f"{sender}'s {text!r} caused {requests_after - requests_before} MAS requests, expected 0")
    assert await tokens_by_id(stack) == tokens_before, f"{sender}'s {text!r} changed MAS tokens"


# --- tests -------------------------------------------------------------------


async def test_whitelisted_user_manages_token(stack: Stack) -> None:
    room = stack.rooms.general

    async with stack.step("alice: !token generate"):
        before = await tokens_by_id(stack)
        reply = await single_reply(stack, "alice", room, "!token generate")
        after = await tokens_by_id(stack)
        new_ids = sorted(set(after) - set(before))
        assert len(new_ids) == 1, f"expected 1 new token in MAS, found {len(new_ids)}"
        token = after[new_ids[0]]
        stack.generated.update(token)
        assert_reply_mentions(reply, token["token"], "the new token")
        assert token.get("usage_limit") == 1, (
            f"new token has usage_limit {token.get('usage_limit')!r}, expected the "
            f"configured default_uses_allowed 1")
        assert token.get("expires_at"), "new token has no expires_at despite default_expiry_time"
        lifetime = (datetime.fromisoformat(token["expires_at"])
                    - datetime.fromisoformat(token["created_at"])).total_seconds()
        assert abs(lifetime - 604800) <= 60, (
            f"new token lives {lifetime:.0f} s, expected the configured default_expiry_time 604800")
        assert token.get("valid") is True, "MAS reports the new token as not valid"
        assert not token.get("revoked_at"), "new token is already revoked"

    async with stack.step("alice: !token list"):
        reply = await single_reply(stack, "alice", room, "!token list")
        assert_reply_mentions(reply, token["token"], "the generated token")

    async with stack.step("alice: !token list <token>"):
        reply = await single_reply(stack, "alice", room, f"!token list {token['token']}")
        assert_reply_mentions(reply, token["token"], "the requested token")

    async with stack.step("alice: !token delete <token>"):
        reply = await single_reply(stack, "alice", room, f"!token delete {token['token']}")
        revoked = (await tokens_by_id(stack))[token["id"]]
        assert revoked.get("revoked_at"), "MAS token is not revoked after !token delete"
        assert "revoked" in reply["body"].lower(), (
            f"reply to !token delete does not say 'revoked': {reply['body']!r}")
        assert_reply_mentions(reply, token["token"], "the deleted token")

    async with stack.step("alice: !token unrevoke <ULID>"):
        reply = await single_reply(stack, "alice", room, f"!token unrevoke {token['id']}")
        restored = (await tokens_by_id(stack))[token["id"]]
        assert not restored.get("revoked_at"), "MAS token is still revoked after !token unrevoke"
        assert token["token"] in reply["body"] or token["id"] in reply["body"], (
            f"reply to !token unrevoke names neither the token nor its ID: {reply['body']!r}")


async def test_extended_commands(stack: Stack) -> None:
    room = stack.rooms.general
    first_token = stack.generated
    assert first_token, "no generated token: test_whitelisted_user_manages_token failed first"

    async with stack.step("alice: !token help"):
        requests_before = await mas_request_count(stack)
        reply = await single_reply(stack, "alice", room, "!token help")
        for name in HELP_SUBCOMMANDS:
            assert_reply_mentions(reply, f"!token {name}", f"the {name} subcommand")
        for aliases in HELP_ALIASES:
            assert_reply_mentions(reply, aliases, f"the aliases {aliases!r}")
        assert await mas_request_count(stack) == requests_before, "!token help made MAS requests"

    async with stack.step("alice: !token status"):
        state = await stack.control.state()
        access_tokens_before = len(state["issued_access_tokens"])
        valid_count = sum(1 for token in state["tokens"] if token["valid"])
        reply = await single_reply(stack, "alice", room, "!token status")
        assert "formatted_body" in reply, "the status reply has no formatted_body"
        for key in ("body", "formatted_body"):
            text = reply.get(key, "")
            assert text.count("✅") == 4, f"expected 4 passed checks (✅) in the {key}: {text!r}"
            assert "❌" not in text, f"the {key} reports a failed check: {text!r}"
            assert "⏸" not in text, f"the {key} reports an unchecked step: {text!r}"
        assert_reply_mentions(reply, "everything works", "the all-passed heading")
        # No trailing "s", so that "1 valid registration token" matches too.
        assert_reply_mentions(reply, f"{valid_count} valid registration token",
                              f"the emulator's count of {valid_count} valid tokens")
        state = await stack.control.state()
        assert len(state["issued_access_tokens"]) > access_tokens_before, (
            "!token status did not request a new access token, so it did not check the "
            "credentials")

    async with stack.step(f"alice: !token generate 5 7d --token {CHOSEN_TOKEN}"):
        before = await tokens_by_id(stack)
        reply = await single_reply(stack, "alice", room,
                                   f"!token generate 5 7d --token {CHOSEN_TOKEN}")
        after = await tokens_by_id(stack)
        new_ids = sorted(set(after) - set(before))
        assert len(new_ids) == 1, f"expected 1 new token in MAS, found {len(new_ids)}"
        chosen = after[new_ids[0]]
        assert chosen["token"] == CHOSEN_TOKEN, (
            f"new token is {chosen['token']!r}, expected the --token value {CHOSEN_TOKEN!r}")
        assert chosen.get("usage_limit") == 5, (
            f"new token has usage_limit {chosen.get('usage_limit')!r}, expected 5")
        assert chosen.get("expires_at"), "new token has no expires_at despite the expiry 7d"
        lifetime = (datetime.fromisoformat(chosen["expires_at"])
                    - datetime.fromisoformat(chosen["created_at"])).total_seconds()
        assert abs(lifetime - 7 * 86400) <= 60, f"new token lives {lifetime:.0f} s, expected 7 days"
        assert chosen.get("valid") is True, "MAS reports the new token as not valid"
        assert_reply_mentions(reply, CHOSEN_TOKEN, "the chosen token string")
        assert_reply_mentions(reply, chosen["id"], "the new token's ULID")
        assert_reply_mentions(reply, "Uses: 0 / 5", "the usage limit 5")

    async with stack.step(f"alice: !token edit {CHOSEN_TOKEN} uses 10 expires never"):
        reply = await single_reply(stack, "alice", room,
                                   f"!token edit {CHOSEN_TOKEN} uses 10 expires never")
        tokens = await tokens_by_id(stack)
        assert len(tokens) == len(after), (
            f"!token edit changed the number of MAS tokens from {len(after)} to {len(tokens)}")
        edited = tokens[chosen["id"]]
        assert edited.get("usage_limit") == 10, (
            f"edited token has usage_limit {edited.get('usage_limit')!r}, expected 10")
        assert edited.get("expires_at") is None, (
            f"edited token has expires_at {edited.get('expires_at')!r}, expected null")
        assert edited["token"] == CHOSEN_TOKEN, "!token edit changed the token string"
        assert_reply_mentions(reply, CHOSEN_TOKEN, "the edited token")
        assert_reply_mentions(reply, "Uses: 0 / 10", "the new usage limit")
        assert_reply_mentions(reply, "Expires: never", "the removed expiry")

    async with stack.step(f"alice: !token revoke {CHOSEN_TOKEN}"):
        reply = await single_reply(stack, "alice", room, f"!token revoke {CHOSEN_TOKEN}")
        revoked = (await tokens_by_id(stack))[chosen["id"]]
        assert revoked.get("revoked_at"), f"{CHOSEN_TOKEN} is not revoked after !token revoke"
        assert_reply_mentions(reply, CHOSEN_TOKEN, "the revoked token")
        assert_reply_mentions(reply, "Status: revoked", "the revoked status")

    async with stack.step("alice: !token list revoked"):
        tokens = await tokens_by_id(stack)
        revoked_count = sum(1 for token in tokens.values() if token.get("revoked_at"))
        reply = await single_reply(stack, "alice", room, "!token list revoked")
        assert_reply_mentions(reply, CHOSEN_TOKEN, "the revoked token")
        assert_reply_mentions(reply, f"{revoked_count} revoked",
                              f"the emulator's count of {revoked_count} revoked tokens")
        for key in ("body", "formatted_body"):
            assert first_token["token"] not in reply.get(key, ""), (
                f"the {key} of !token list revoked shows the valid token {first_token['id']}")

    async with stack.step(f"alice: !token restore {CHOSEN_TOKEN}"):
        reply = await single_reply(stack, "alice", room, f"!token restore {CHOSEN_TOKEN}")
        restored = (await tokens_by_id(stack))[chosen["id"]]
        assert not restored.get("revoked_at"), (
            f"{CHOSEN_TOKEN} is still revoked after !token restore")
        assert restored.get("valid") is True, f"MAS reports {CHOSEN_TOKEN} as not valid"
        assert restored.get("usage_limit") == 10, (
            f"!token restore changed usage_limit to {restored.get('usage_limit')!r}")
        assert_reply_mentions(reply, CHOSEN_TOKEN, "the restored token")
        assert_reply_mentions(reply, "Status: active", "the active status")


async def test_unlisted_user_refused(stack: Stack) -> None:
    token = stack.generated
    assert token, "no generated token: test_whitelisted_user_manages_token failed first"
    room = stack.rooms.general
    for command in ("!token generate", "!token list", f"!token delete {token['token']}",
                    f"!token unrevoke {token['id']}"):
        async with stack.step(f"mallory: {command.split(' ')[1]} is refused"):
            await assert_refused_without_mas_requests(stack, "mallory", room, command)


async def test_room_whitelist_only_in_listed_room(stack: Stack) -> None:
    token = stack.generated
    assert token, "no generated token: test_whitelisted_user_manages_token failed first"

    async with stack.step("bob: !token list works in the whitelisted room"):
        requests_before = await mas_request_count(stack)
        reply = await single_reply(stack, "bob", stack.rooms.ops, "!token list")
        assert_reply_mentions(reply, token["token"], "alice's token")
        assert await mas_request_count(stack) > requests_before, (
            "bob's !token list in the whitelisted room made no MAS request")

    async with stack.step("bob: !token generate works in the whitelisted room"):
        before = await tokens_by_id(stack)
        reply = await single_reply(stack, "bob", stack.rooms.ops, "!token generate")
        new_ids = sorted(set(await tokens_by_id(stack)) - set(before))
        assert len(new_ids) == 1, f"expected 1 new token in MAS, found {len(new_ids)}"

    for command in ("!token list", "!token generate"):
        async with stack.step(f"bob: {command} is refused outside the whitelisted room"):
            await assert_refused_without_mas_requests(stack, "bob", stack.rooms.general, command)


async def test_list_of_2000_tokens_is_one_event(stack: Stack) -> None:
    async with stack.step("seed 2,000 tokens in the MAS emulator"):
        await stack.control.seed_tokens(2000)
        tokens = await tokens_by_id(stack)
        assert len(tokens) >= 2000, f"emulator holds {len(tokens)} tokens after seeding 2,000"

    async with stack.step("alice: !token list with 2,000 tokens", timeout=120):
        replies = await send_command(stack, "alice", stack.rooms.general, "!token list",
                                     settle=SETTLE_SECONDS)
        assert len(replies) == 1, f"expected 1 reply event, got {len(replies)}"
        event = replies[0]
        size = len(json.dumps(event, ensure_ascii=False).encode())
        assert size < MAX_EVENT_BYTES, f"reply event is {size} bytes"
        body = event["content"].get("body", "")
        assert str(len(tokens)) in body, f"the reply does not state the total of {len(tokens)} tokens"
        shown = sum(1 for token in tokens.values() if token["token"] in body)
        assert shown > 0, f"the reply lists none of the {len(tokens)} tokens: {body[:500]!r}"


async def test_no_secret_in_logs_or_events(stack: Stack) -> None:
    async with stack.step("collect the secrets the MAS emulator issued"):
        state = await stack.control.state()
        access_tokens = [record["access_token"] for record in state["issued_access_tokens"]]
        assert access_tokens, "the emulator issued no access token, so the scan would prove nothing"
        secrets = {"the MAS client_secret": stack.mas_client_secret}
        for number, token in enumerate(access_tokens, start=1):
            secrets[f"MAS access token #{number}"] = token

    async with stack.step("read every event of both rooms"):
        texts: dict[str, str] = {}
        alice = stack.clients["alice"]
        for room_name, room_id in (("general", stack.rooms.general), ("ops", stack.rooms.ops)):
            events = await alice.all_events(room_id)
            texts[f"events of room {room_name}"] = json.dumps(events, ensure_ascii=False)

    async with stack.step("stop the servers so that their logs are complete"):
        await asyncio.to_thread(stack.stop)

    async with stack.step("scan logs and room events for secrets"):
        for name in ("synapse", "maubot", "maubot log"):
            server = stack.server(name)
            texts[str(server.log_path)] = server.read_log()

        assert texts["events of room general"], "found no events to scan"
        leaks = [f"{secret_name} in {place}"
                 for place, text in texts.items()
                 for secret_name, secret in secrets.items()
                 if secret in text]
        assert not leaks, "secrets found: " + "; ".join(leaks)


async def test_engine_choice_logged(stack: Stack) -> None:
    environment = stack.maubot_env

    async with stack.step("check that `import wasmtime` works only where expected"):
        result = await asyncio.to_thread(
            subprocess.run, [str(environment.python), "-c", "import wasmtime"],
            capture_output=True, text=True, timeout=60)
        imported = result.returncode == 0
        assert imported == environment.has_wasmtime, (
            f"`import wasmtime` in {environment.python} exited with code {result.returncode}, "
            f"but this environment should {'' if environment.has_wasmtime else 'not '}have "
            f"wasmtime: {result.stderr[-500:]!r}")

    async with stack.step("stop the servers so that their logs are complete"):
        await asyncio.to_thread(stack.stop)

    async with stack.step(f"maubot's log names the {environment.engine} engine"):
        lines = []
        for name in ("maubot", "maubot log"):
            lines.extend(stack.server(name).read_log().splitlines())

        started = [line for line in lines if ENGINE_STARTED in line]
        assert started, f"maubot's log has no line containing {ENGINE_STARTED!r}"
        expected = f"{ENGINE_STARTED}{environment.engine} engine ({environment.engine_library} "
        for line in started:
            assert "[INFO@" in line, f"the engine line is not logged at INFO: {line!r}"
            assert expected in line, (
                f"the engine line does not contain {expected!r}: {line!r}")

        warnings = [line for line in lines if FALLBACK_WARNING in line]
        if environment.has_wasmtime:
            assert not warnings, (
                f"maubot has wasmtime but logged {len(warnings)} {FALLBACK_WARNING!r} "
                f"warnings: {warnings[0]!r}")
        else:
            assert len(warnings) == 1, (
                f"expected one {FALLBACK_WARNING!r} warning in maubot's log, "
                f"found {len(warnings)}")
            assert "[WARNING@" in warnings[0], (
                f"the fallback message is not logged as a warning: {warnings[0]!r}")
            assert WASMTIME_INSTALL_COMMAND in warnings[0], (
                f"the fallback warning does not name {WASMTIME_INSTALL_COMMAND}: "
                f"{warnings[0]!r}")
