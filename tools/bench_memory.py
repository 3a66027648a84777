"""Resident memory of one Core, Transport and CommandRunner over many sequential commands.

tools/bench.py runs this file as a child process, so that nothing else the
benchmark did (10,000-token pages, other cores) is in the measured process.
It reads a JSON object from stdin, with the emulator's URL and client and one
seeded token, and prints one JSON object with the results.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import Any

import aiohttp

import bench_env
from bench_measure import BASE, new_bot, run_command, use_engine

# The commands repeat in this order. `generate` adds a token each cycle, so
# the core's lookup cache and the list that `list` reads both grow, as on a
# server in use. Each delete is undone by the unrevoke after it.
CYCLE = (
    "generate 1 7d",
    "show {token}",
    "delete {token}",
    "unrevoke {id}",
    "list",
    "show {id}",
)

# Commands run before the first reading, so that one-time allocations
# (the access token, imports, first-use caches) are not counted as growth.
WARM_UP_CYCLES = 5


def wasm_memory_bytes(bot: Any) -> int | None:
    """Return the size of the core's wasm linear memory, or None when the engine does not show it."""
    instance = getattr(bot.core, "_instance", None)
    if hasattr(instance, "_memory_size"):
        return instance._memory_size()
    memory = getattr(instance, "_memory", None)
    store = getattr(instance, "_store", None)
    if memory is None or store is None:
        return None
    return memory.data_len(store)


def settled_resident_bytes() -> int | None:
    gc.collect()
    return bench_env.resident_bytes()


async def measure(settings: dict[str, Any]) -> dict[str, Any]:
    emulator = bench_env.EmulatorProcess(
        process=None,
        base_url=settings["base_url"],
        client_id=settings["client_id"],
        client_secret=settings["client_secret"],
    )
    wasm = bench_env.standalone.read_wasm(bench_env.standalone.WASM_PATH)
    values = {"token": settings["token"], "id": settings["id"]}
    commands = settings["commands"]

    async with aiohttp.ClientSession() as session:
        bot = await new_bot(wasm, session, emulator)
        for _ in range(WARM_UP_CYCLES):
            for template in CYCLE:
                await run_command(bot, f"{BASE} {template.format(**values)}")

        before = settled_resident_bytes()
        wasm_before = wasm_memory_bytes(bot)
        started = time.monotonic()

        for index in range(commands):
            template = CYCLE[index % len(CYCLE)]
            await run_command(bot, f"{BASE} {template.format(**values)}")

        elapsed = time.monotonic() - started
        after = settled_resident_bytes()
        wasm_after = wasm_memory_bytes(bot)

    return {
        "commands": commands,
        "engine": settings["engine"],
        "cycle": [f"{BASE} {template}" for template in CYCLE],
        "rss_before": before,
        "rss_after": after,
        "wasm_before": wasm_before,
        "wasm_after": wasm_after,
        "seconds": elapsed,
    }


def main() -> int:
    settings = json.loads(sys.stdin.read())
    use_engine(settings["engine"])
    result = asyncio.run(measure(settings))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
