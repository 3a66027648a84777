"""Measurements for tools/bench.py: cold start, core CPU per command, MAS requests and reply size.

Core CPU is the process CPU time (time.process_time_ns) spent inside
Core.start and Core.resume, which covers the JSON encoding in core.py, the
wasm call and the decoding of its response, but no HTTP. A loopback round
trip is wall time (time.perf_counter_ns) of one aiohttp GET of a single token
from the emulator, because that is the latency a command waits for. The
round trips are sampled between the commands of the same run, so a busy
machine slows both sides of each ratio alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import aiohttp

import standalone
from bench_env import WASM_NAME, EmulatorProcess, plugin_config
from mas_token_bot import engine as engine_module
from mas_token_bot import core as core_module
from mas_token_bot.core import Core
from mas_token_bot.notice import build_notice
from mas_token_bot.protocol import Reply

SENDER = "@bench:localhost"
ROOM = "!bench:localhost"
BASE = "!token"

# Page size of the core's search by token string under wasmtime (the
# default of search_page_size in crate/src/flows/target.rs). MAS has no
# maximum page size, so this is the largest page the core requests.
SEARCH_PAGE_SIZE = 1000

COMMANDS = ("generate", "delete <ULID>", "delete <token string>, cached", "delete <token string>, first time", "list")


class BenchError(Exception):
    """A command in the benchmark did not produce the reply it should have."""


# Timing the core.

class TimedCore(Core):
    """The shim's Core, adding up the CPU time and fuel of every start and resume call."""

    def __init__(self, module: Any, log: logging.Logger) -> None:
        super().__init__(module, log)
        self.cpu_ns = 0
        self.fuel = 0
        self.calls = 0

    def start(self, *args: Any, **kwargs: Any):
        begin = time.process_time_ns()
        try:
            return super().start(*args, **kwargs)
        finally:
            self._count(begin)

    def resume(self, *args: Any, **kwargs: Any):
        begin = time.process_time_ns()
        try:
            return super().resume(*args, **kwargs)
        finally:
            self._count(begin)

    def _count(self, begin: int) -> None:
        self.cpu_ns += time.process_time_ns() - begin
        self.fuel += self.last_call_fuel or 0
        self.calls += 1


class BenchBot(standalone.StandaloneBot):
    """The console's StandaloneBot with a TimedCore in place of its Core."""

    def __init__(self, wasm: bytes, session: aiohttp.ClientSession, log: logging.Logger) -> None:
        super().__init__(wasm, session, log)
        self.core = TimedCore(engine_module.compile_module(wasm), log)
        self.runner.core = self.core


@dataclass
class CommandSample:
    """One command: core CPU and fuel, the MAS requests it made and its reply."""

    cpu_ns: int
    fuel: int
    requests: list[standalone.Exchange]
    reply: Reply

    @property
    def list_requests(self) -> int:
        return sum(1 for exchange in self.requests if exchange.method == "GET" and "page%5B" in exchange.url)


async def run_command(bot: BenchBot, body: str, expect_error: bool = False) -> CommandSample:
    """Send one message and return its sample; raise BenchError when the reply is not the expected kind."""
    cpu_before, fuel_before = bot.core.cpu_ns, bot.core.fuel
    result = await bot.send(body, SENDER, ROOM)
    # The console's RecordingTransport keeps every exchange, which the
    # plugin's Transport does not, so drop them to keep memory readings fair.
    bot.transport.exchanges.clear()
    if len(result.replies) != 1:
        raise BenchError(f"{body!r} produced {len(result.replies)} replies, expected 1")
    reply = result.replies[0]
    if reply.error != expect_error:
        raise BenchError(f"{body!r} replied {'an error' if reply.error else 'success'}: {reply.body[:300]}")
    return CommandSample(bot.core.cpu_ns - cpu_before, bot.core.fuel - fuel_before, result.exchanges, reply)


async def new_bot(wasm: bytes, session: aiohttp.ClientSession, emulator: EmulatorProcess) -> BenchBot:
    """Return a configured BenchBot that already has an access token (from `status`)."""
    log = standalone.make_logger("mas_token_bot.bench", verbose=False)
    bot = BenchBot(wasm, session, log)
    configured = bot.configure(plugin_config(emulator, SENDER))
    if configured.problems:
        raise BenchError(f"the plugin config has problems: {configured.problems}")
    await run_command(bot, f"{BASE} status")
    return bot


# The emulator's control API.

@dataclass(frozen=True)
class SeededToken:
    id: str
    token: str


async def _control(session: aiohttp.ClientSession, emulator: EmulatorProcess, method: str, path: str,
                   payload: Optional[dict] = None) -> Any:
    async with session.request(method, f"{emulator.control_url}/{path}", json=payload) as response:
        body = await response.json()
        if response.status >= 300:
            raise BenchError(f"emulator control {method} {path} failed with {response.status}: {body}")
        return body


async def reset_and_seed(session: aiohttp.ClientSession, emulator: EmulatorProcess, count: int) -> list[SeededToken]:
    """Replace the emulator's tokens with `count` new active tokens and return them in ID order."""
    await _control(session, emulator, "POST", "reset")
    await _control(session, emulator, "POST", "tokens", {"count": count})
    # requests_since past the end leaves the request log out of the state.
    state = await _control(session, emulator, "GET", "state?requests_since=1000000000")
    return [SeededToken(token["id"], token["token"]) for token in state["tokens"]]


async def issue_access_token(session: aiohttp.ClientSession, emulator: EmulatorProcess) -> str:
    """Return an admin access token for the round-trip requests; the caller must not print it."""
    body = await _control(session, emulator, "POST", "access-tokens", {})
    return body["access_token"]


class RoundTrip:
    """Loopback round trips: GET one registration token by ID, wall time of request and body."""

    def __init__(self, session: aiohttp.ClientSession, url: str, access_token: str) -> None:
        self._session = session
        self._url = url
        self._headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        self.samples_ns: list[int] = []

    async def sample(self) -> None:
        begin = time.perf_counter_ns()
        async with self._session.get(self._url, headers=self._headers) as response:
            await response.read()
            status = response.status
        self.samples_ns.append(time.perf_counter_ns() - begin)
        if status != 200:
            raise BenchError(f"the round-trip GET returned {status}, expected 200")


# Per-command cost at one number of tokens.

@dataclass
class CommandStats:
    """Medians over the samples of one command at one number of tokens."""

    command: str
    tokens: int
    samples: int
    cpu_ns: float
    fuel: float
    requests: float
    round_trip_ns: float

    @property
    def ratio(self) -> float:
        return self.cpu_ns / self.round_trip_ns


@dataclass
class LevelResult:
    tokens: int
    round_trip_ns: float
    round_trips: int
    commands: list[CommandStats]
    list_reply: Optional[Reply] = None
    first_time_list_requests: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Repetitions:
    """Samples per command; the first-time search is costlier, so it gets its own count per level."""

    rounds: int
    first_time: dict[int, int]
    generate: int


async def measure_level(session: aiohttp.ClientSession, emulator: EmulatorProcess, wasm: bytes,
                        count: int, reps: Repetitions) -> LevelResult:
    """Measure every command against an emulator that contains `count` tokens, with round trips in between.

    Each delete is undone by an untimed unrevoke, so the tokens stay the
    same. `generate` adds tokens, so it runs last.
    """
    tokens = await reset_and_seed(session, emulator, count)
    access_token = await issue_access_token(session, emulator)
    round_trip = RoundTrip(session, f"{emulator.collection_url}/{tokens[0].id}", access_token)
    samples: dict[str, list[CommandSample]] = {command: [] for command in COMMANDS}

    bot = await new_bot(wasm, session, emulator)
    newest = tokens[-1]
    # Showing the newest token walks every page, so the core remembers every token string.
    await run_command(bot, f"{BASE} show {newest.token}")
    by_ulid = tokens[0]
    by_string = tokens[len(tokens) // 2]

    for _ in range(reps.rounds):
        await round_trip.sample()
        samples["list"].append(await run_command(bot, f"{BASE} list"))
        await round_trip.sample()
        samples["delete <ULID>"].append(await run_command(bot, f"{BASE} delete {by_ulid.id}"))
        await run_command(bot, f"{BASE} unrevoke {by_ulid.id}")
        await round_trip.sample()
        samples["delete <token string>, cached"].append(await run_command(bot, f"{BASE} delete {by_string.token}"))
        await run_command(bot, f"{BASE} unrevoke {by_string.id}")

    # A new core has an empty lookup cache, so it must search the list.
    for _ in range(reps.first_time[count]):
        fresh = await new_bot(wasm, session, emulator)
        await round_trip.sample()
        samples["delete <token string>, first time"].append(await run_command(fresh, f"{BASE} delete {newest.token}"))
        await run_command(fresh, f"{BASE} unrevoke {newest.id}")

    for _ in range(reps.generate):
        await round_trip.sample()
        samples["generate"].append(await run_command(bot, f"{BASE} generate 1 7d"))

    round_trip_ns = statistics.median(round_trip.samples_ns)
    stats = [
        CommandStats(
            command=command,
            tokens=count,
            samples=len(items),
            cpu_ns=statistics.median(item.cpu_ns for item in items),
            fuel=statistics.median(item.fuel for item in items),
            requests=statistics.median(len(item.requests) for item in items),
            round_trip_ns=round_trip_ns,
        )
        for command, items in samples.items()
    ]
    return LevelResult(
        tokens=count,
        round_trip_ns=round_trip_ns,
        round_trips=len(round_trip.samples_ns),
        commands=stats,
        list_reply=samples["list"][-1].reply,
        first_time_list_requests=[item.list_requests for item in samples["delete <token string>, first time"]],
    )


# Resolving a token string.

def search_page_size() -> int:
    """Return the search page size the shim configures for the engine in use."""
    limits = getattr(core_module, "FALLBACK_LIMITS", None)
    if limits is not None and HAS_ENGINE_SELECTION and engine_module.select_engine().name == FALLBACK:
        return limits["search_page_size"]
    return SEARCH_PAGE_SIZE


@dataclass
class Resolution:
    tokens: int
    page_size: int
    first_list_requests: int
    first_requests: int
    repeat_requests: int
    after_forget_requests: int


async def measure_resolution(session: aiohttp.ClientSession, emulator: EmulatorProcess, wasm: bytes,
                             count: int) -> Resolution:
    """Count the MAS requests of `show <token string>` for the newest token: first, repeated, and after a 404.

    The third case checks that the core drops a remembered ID when MAS
    returns 404 for it. The emulator is reset and seeded with new tokens,
    plus one with the same string, which then has a new ID.
    """
    tokens = await reset_and_seed(session, emulator, count)
    newest = tokens[-1]
    bot = await new_bot(wasm, session, emulator)

    first = await run_command(bot, f"{BASE} show {newest.token}")
    repeat = await run_command(bot, f"{BASE} show {newest.token}")

    await _control(session, emulator, "POST", "reset")
    await _control(session, emulator, "POST", "tokens", {"count": count - 1})
    await _control(session, emulator, "POST", "tokens", {"tokens": [{"token": newest.token}]})
    # The reset also ended the access token, and `status` fetches a new one.
    await run_command(bot, f"{BASE} status")
    after_forget = await run_command(bot, f"{BASE} show {newest.token}")

    admin_requests = [
        sum(1 for exchange in sample.requests if "/api/admin/" in exchange.url)
        for sample in (first, repeat, after_forget)
    ]
    return Resolution(
        tokens=count,
        page_size=search_page_size(),
        first_list_requests=first.list_requests,
        first_requests=admin_requests[0],
        repeat_requests=admin_requests[1],
        after_forget_requests=admin_requests[2],
    )


def reply_size_bytes(reply: Reply) -> int:
    """Return the UTF-8 size of the reply's body and formatted_body as a JSON object."""
    content = build_notice(reply)
    document = {"body": content.body, "formatted_body": content.formatted_body}
    return len(json.dumps(document, ensure_ascii=False).encode("utf-8"))


# Engines and cold start.

# The shim gained a second engine (the pwasm interpreter) with
# engine.force_engine. Without it, wasmtime is the only engine.
HAS_ENGINE_SELECTION = hasattr(engine_module, "force_engine")
WASMTIME = "wasmtime"
FALLBACK = "fallback"


def available_engines() -> list[str]:
    """Return the engines this shim has and this machine can run, wasmtime first."""
    if not HAS_ENGINE_SELECTION:
        return [WASMTIME]

    from mas_token_bot import engine_fallback

    engines = [WASMTIME]
    try:
        engine_fallback.version()
    except (engine_module.EngineFault, ImportError):
        return engines
    return engines + [FALLBACK]


def use_engine(name: str) -> None:
    """Make the shim compile and run the core with engine `name` from now on."""
    if name not in available_engines():
        raise BenchError(f"the {name} engine is not available here; available: {', '.join(available_engines())}")
    if HAS_ENGINE_SELECTION:
        engine_module.force_engine(name)


def _drop_compiled_state() -> None:
    # Private state of the shim: the module cache and wasmtime's shared
    # Engine. Dropping both makes the next compile_module start from scratch.
    engine_module._modules.clear()
    if HAS_ENGINE_SELECTION:
        from mas_token_bot import engine_wasmtime

        engine_wasmtime._shared_engine = None
    else:
        engine_module._engine = None


def _instantiate(module: Any) -> Any:
    if hasattr(module, "instantiate"):
        return module.instantiate()
    return engine_module.WasmInstance(module)


@dataclass
class ColdStart:
    engine: str
    samples: int
    read_ns: float
    compile_ns: float
    instantiate_ns: float
    total_ns: float


def measure_cold_start(mbp: Path, engine: str, samples: int) -> ColdStart:
    """Time reading the .wasm out of the .mbp, compiling it and instantiating it with `engine`.

    Before each sample the shim's module cache and wasmtime's Engine are
    dropped, so every sample compiles from scratch, as the first plugin load
    in a maubot process does.
    """
    use_engine(engine)
    reads, compiles, instantiations, totals = [], [], [], []
    for _ in range(samples):
        _drop_compiled_state()

        begin = time.perf_counter_ns()
        with zipfile.ZipFile(mbp) as archive:
            wasm = archive.read(WASM_NAME)
        read = time.perf_counter_ns()
        module = engine_module.compile_module(wasm)
        compiled = time.perf_counter_ns()
        _instantiate(module)
        end = time.perf_counter_ns()

        reads.append(read - begin)
        compiles.append(compiled - read)
        instantiations.append(end - compiled)
        totals.append(end - begin)

    return ColdStart(
        engine=engine,
        samples=samples,
        read_ns=statistics.median(reads),
        compile_ns=statistics.median(compiles),
        instantiate_ns=statistics.median(instantiations),
        total_ns=statistics.median(totals),
    )
