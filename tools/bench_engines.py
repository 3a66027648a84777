"""Measure the wasm core's time per command under each engine (wasmtime and the pwasm fallback).

Usage: .venv/bin/python tools/bench_engines.py [--engine wasmtime|fallback] [--wasm PATH] [--repeat N]

Each command runs through the real CommandRunner and Transport against the
MAS emulator on 127.0.0.1. The time counted is wall time inside
WasmInstance.call (alloc, write, the `call` export, read, dealloc), summed
over the start and resume operations of one command: the interpreter's or
wasmtime's share of the command, without HTTP and without the JSON encoding
in core.py. The first run of each command includes pwasm's translation of
the functions it reaches for the first time, unless pwasm's disk cache
(PWASM_CACHE_DIR, ~/.cache/pwasm by default) already holds them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "python-shim")]

from mas_token_bot import engine  # noqa: E402
from mas_token_bot.core import Core  # noqa: E402
from mas_token_bot.runner import CommandRunner  # noqa: E402
from mas_token_bot.transport import Transport  # noqa: E402
from tests.mas_emulator import MasEmulator  # noqa: E402

CLIENT_ID = "01JAYQ5R6M3T8V2N4K7W9X1Z0B"
CLIENT_SECRET = "bench-client-secret"
ADMIN = "@admin:example.org"
ROOM = "!ops:example.org"


class CallTimer:
    """Add up the wall time of every WasmInstance.call while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.max_call_seconds = 0.0
        self.max_call_fuel = 0
        self._original = engine.WasmInstance.call

    def install(self) -> None:
        timer = self
        original = self._original

        def timed_call(instance: engine.WasmInstance, request: bytes) -> bytes:
            begin = time.perf_counter()
            try:
                return original(instance, request)
            finally:
                elapsed = time.perf_counter() - begin
                timer.seconds += elapsed
                timer.max_call_seconds = max(timer.max_call_seconds, elapsed)
                timer.max_call_fuel = max(timer.max_call_fuel, instance.last_call_fuel)

        engine.WasmInstance.call = timed_call  # type: ignore[method-assign]

    def take(self) -> float:
        """Return the seconds counted since the last take() and start again from zero."""
        seconds, self.seconds = self.seconds, 0.0
        self.max_call_seconds = 0.0
        self.max_call_fuel = 0
        return seconds


async def measure(engine_name: str, wasm: bytes, repeat: int) -> dict[str, list[float]]:
    """Run each benchmark command `repeat` times and return its core time in milliseconds per run."""
    engine.force_engine(engine_name)
    log = logging.getLogger("bench")
    timer = CallTimer()
    timer.install()

    begin = time.perf_counter()
    core = Core(engine.compile_module(wasm, log), log)
    startup_ms = (time.perf_counter() - begin) * 1000

    emulator = MasEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    await emulator.start()
    replies: list[str] = []

    async def send_reply(room_id: str, reply: Any) -> None:
        replies.append(reply.body)

    fuel: dict[str, list[int]] = {}
    results: dict[str, list[float]] = {"start-up (compile + instantiate)": [startup_ms]}
    try:
        async with aiohttp.ClientSession() as session:
            transport = Transport(session, log)
            transport.set_credentials(f"{emulator.base_url}/oauth2/token", CLIENT_ID, CLIENT_SECRET)
            runner = CommandRunner(core, transport, send_reply, log)
            core.configure({
                "admin_api": f"{emulator.base_url}/api/admin",
                "token_url": f"{emulator.base_url}/oauth2/token",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "whitelist": [ADMIN],
                "room_whitelist": [ROOM],
                "http_timeout": 30,
            })
            results["configure"] = [timer.take() * 1000]

            async def run(label: str, body: str) -> None:
                timer.take()
                await runner.run(ADMIN, ROOM, body)
                longest_ms = timer.max_call_seconds * 1000
                results.setdefault(f"  longest call of {label}", []).append(longest_ms)
                fuel.setdefault(label, []).append(timer.max_call_fuel)
                if not replies or "internal error" in replies[-1].lower():
                    raise SystemExit(f"{body!r} failed under {engine_name}: {replies[-1:]}")
                results.setdefault(label, []).append(timer.take() * 1000)

            for _ in range(repeat):
                await run("generate", "!token generate")
            for _ in range(repeat):
                token_id = emulator.seed_tokens(1)[0]
                await run("delete by ULID", f"!token delete {token_id}")

            emulator.seed_tokens(25 - len(emulator.tokens))
            for _ in range(repeat):
                await run(f"list of {len(emulator.tokens)}", "!token list")

            for size in (250, 500, 1000):
                emulator.seed_tokens(size - len(emulator.tokens))
                target = emulator.add_token(token=f"bench-search-{size}")
                for _ in range(repeat):
                    await run(f"list of {len(emulator.tokens)}", "!token list")
                await run(
                    f"delete by token string among {len(emulator.tokens)}",
                    f"!token delete bench-search-{size}",
                )
                if emulator.tokens[target].revoked_at_ns is None:
                    raise SystemExit(f"the search for bench-search-{size} did not revoke it: {replies[-1]}")
    finally:
        await emulator.stop()
        engine.force_engine(None)
    for label, values in fuel.items():
        results[f"  max fuel of one call, {label} (units, not ms)"] = [float(value) for value in values]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=[engine.ENGINE_WASMTIME, engine.ENGINE_FALLBACK], action="append",
                        help="engine to measure (repeat the option for both; default both)")
    parser.add_argument("--wasm", type=Path, default=ROOT / "dist" / "io.github.mastokenbot-v0.1.0.mbp",
                        help="a .wasm file or an .mbp that contains mas_token_core.wasm")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (default 5)")
    args = parser.parse_args()

    if args.wasm.suffix == ".mbp":
        with zipfile.ZipFile(args.wasm) as archive:
            wasm = archive.read("mas_token_core.wasm")
    else:
        wasm = args.wasm.read_bytes()

    logging.basicConfig(level=logging.ERROR)
    for engine_name in args.engine or [engine.ENGINE_WASMTIME, engine.ENGINE_FALLBACK]:
        results = asyncio.run(measure(engine_name, wasm, args.repeat))
        print(f"\n{engine_name}: milliseconds in WasmInstance.call per command (first run, median of the rest)")
        for label, runs in results.items():
            rest = runs[1:] or runs
            print(f"  {label:45s} first {runs[0]:9.1f}   median {statistics.median(rest):9.1f}   runs {len(runs)}")


if __name__ == "__main__":
    main()
