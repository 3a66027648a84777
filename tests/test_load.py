"""Load through the plugin: many concurrent commands keep apart, and many sequential ones do not leak memory."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import time
from typing import Any

import pytest

from mas_token_bot import engine

from .conftest import plugin_config
from .plugin_harness import only_reply, token_endpoint_requests

USERS = [f"@loaduser{index}:example.org" for index in range(5)]
ROOMS = [f"!loadroom{index}:example.org" for index in range(5)]
OUTSIDER = "@loadoutsider:example.org"
COMMANDS_PER_PAIR = 4  # 5 users x 5 rooms x 4 = 100 commands
ULID_PATTERN = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")

SEQUENTIAL_COMMANDS = 12_000
WARM_UP_COMMANDS = 1_000
# Clear the test's own records (replies, log capture, emulator request log)
# this often, so that they do not count as growth of the plugin.
CLEAR_EVERY = 500
MAX_RSS_GROWTH_BYTES = 20 * 1024 * 1024


def pair_token(user: int, room: int) -> str:
    return f"load-u{user}-r{room}-token"


def commands_for(token: str, ulid: str) -> list[str]:
    return [f"!token show {ulid}", f"!token list {token}", f"!token show {token}", f"!token list {ulid}"]


def resident_bytes() -> int:
    """Return this process's resident set size, from /proc/self/statm (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


async def test_100_concurrent_commands_keep_apart(make_plugin: Any, emulator: Any) -> None:
    running = await make_plugin(plugin_config(emulator, whitelist=USERS, room_whitelist=[]))
    ulids = {
        (user, room): emulator.add_token(token=pair_token(user, room))
        for user in range(len(USERS))
        for room in range(len(ROOMS))
    }
    all_tokens = {pair_token(user, room) for user, room in ulids}
    # Every admin request waits a little, so that all commands are in flight together.
    emulator.set_fault("slow", target="admin", delay_s=0.05)

    in_flight = 0
    max_in_flight = 0
    perform = running.plugin.runner._transport.perform

    async def counting_perform(request: Any) -> Any:
        nonlocal in_flight, max_in_flight
        in_flight += 1
        max_in_flight = max(max_in_flight, in_flight)
        try:
            return await perform(request)
        finally:
            in_flight -= 1

    running.plugin.runner._transport.perform = counting_perform

    sends = []
    for (user, room), ulid in ulids.items():
        for command in commands_for(pair_token(user, room), ulid):
            sends.append(running.bot.send(command, room_id=ROOMS[room], sender=USERS[user]))
    for room in range(len(ROOMS)):
        sends.append(running.bot.send(f"!token show {ulids[(0, room)]}", room_id=ROOMS[room], sender=OUTSIDER))
    await asyncio.gather(*sends)

    assert max_in_flight >= 50, f"only {max_in_flight} commands were in flight at once"
    events = running.bot.responded
    assert len(events) == 100 + len(ROOMS)

    for room, room_id in enumerate(ROOMS):
        replies = [event.content.serialize() for event in events if event.room_id == room_id]
        assert len(replies) == len(USERS) * COMMANDS_PER_PAIR + 1

        named_per_user = {user: 0 for user in range(len(USERS))}
        refusals = 0
        for reply in replies:
            body = only_reply([reply])["body"]
            named = {token for token in all_tokens if token in body}
            if "not allowed" in body:
                refusals += 1
                assert named == set()
                continue

            assert len(named) == 1, body
            token = named.pop()
            user = int(token.split("-")[1].removeprefix("u"))
            assert token == pair_token(user, room), body
            assert set(ULID_PATTERN.findall(body)) == {ulids[(user, room)]}, body
            named_per_user[user] += 1

        assert refusals == 1
        assert named_per_user == {user: COMMANDS_PER_PAIR for user in range(len(USERS))}

    # Commands that start together may each fetch an access token, but never more than one each.
    assert 1 <= len(token_endpoint_requests(emulator)) <= 100


@pytest.mark.single_engine
async def test_12000_sequential_commands_memory(make_plugin: Any, emulator: Any, wasm_engine: str) -> None:
    if wasm_engine == engine.ENGINE_FALLBACK:
        # 12,000 commands take about 400 s on the pure-Python fallback engine.
        pytest.skip("the sequential load test runs on wasmtime only")
    running = await make_plugin(plugin_config(emulator))
    tokens = [f"memtoken{index:02d}" for index in range(20)]
    ulids = [emulator.add_token(token=token) for token in tokens]
    cycle = []
    for token, ulid in zip(tokens, ulids):
        cycle.append((f"!token list {token}", token))
        cycle.append((f"!token show {ulid}", token))
        cycle.append((f"!token unrevoke {ulid}", "not revoked"))
        cycle.append(("!token unrevoke nosuchtoken99", "not found"))

    async def run_commands(count: int) -> None:
        for index in range(count):
            command, expected = cycle[index % len(cycle)]
            await running.bot.send(command, room_id=ROOMS[0], sender=running.config["whitelist"][0])
            assert len(running.bot.responded) == 1, f"{command!r} got {len(running.bot.responded)} replies"
            body = running.bot.responded[0].content.body
            assert expected in body, f"{command!r} got {body!r}"
            running.bot.responded.clear()
            if index % CLEAR_EVERY == 0:
                running.log.records.clear()
                emulator.requests.clear()

    await run_commands(WARM_UP_COMMANDS)
    gc.collect()
    before = resident_bytes()
    started = time.monotonic()

    await run_commands(SEQUENTIAL_COMMANDS)

    elapsed = time.monotonic() - started
    gc.collect()
    growth = resident_bytes() - before
    print(f"{SEQUENTIAL_COMMANDS} commands in {elapsed:.1f} s, resident memory grew by {growth / 1024 / 1024:.2f} MiB")
    assert growth <= MAX_RSS_GROWTH_BYTES, f"resident memory grew by {growth / 1024 / 1024:.1f} MiB"
