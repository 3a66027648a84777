"""Measure what the plugin costs and how that grows with the number of registration tokens.

    ./worker bench            full run (a few minutes), writes docs/benchmarks.md
    ./worker bench --quick    smoke run with few repetitions, prints the table only

It builds the plugin when the .wasm or .mbp is stale, starts the MAS emulator
on 127.0.0.1 and prints one table with a PASS or FAIL for each row that has a
target. Costs are ratios to a loopback round trip measured in the same run,
because absolute times on a shared machine vary from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import aiohttp

import bench_env
import bench_measure
from bench_measure import ColdStart, LevelResult, Repetitions, Resolution

DOC_PATH = bench_env.ROOT / "docs" / "benchmarks.md"
# docs/benchmarks.md keeps the text outside these markers, so the analysis
# written by hand survives a new run.
DOC_BEGIN = "<!-- bench:begin -->"
DOC_END = "<!-- bench:end -->"

LEVELS = (10, 1_000, 10_000)
RESOLUTION_TOKENS = 10_000
REPLY_SIZE_TOKENS = 10_000

# Targets. KB and MB are read as 1000 and 1,000,000 bytes, the stricter reading.
MAX_CORE_CPU_RATIO = 0.2
MAX_COLD_START_MS = 100.0
MAX_WASM_BYTES = 200_000
MAX_MEMORY_GROWTH_BYTES = 5_000_000
MEMORY_COMMANDS_FULL = 12_000
MEMORY_COMMANDS_QUICK = 600

# The Matrix client-server spec ("Size limits") caps a whole event, with its
# envelope, at 65,536 bytes, so the content must stay below that.
MATRIX_EVENT_LIMIT_BYTES = 65_536


@dataclass(frozen=True)
class Preset:
    repetitions: Repetitions
    cold_start_samples: int
    # The pwasm fallback compiles far more slowly, so it gets fewer samples.
    fallback_cold_start_samples: int
    memory_commands: int


FULL = Preset(
    repetitions=Repetitions(rounds=40, first_time={10: 15, 1_000: 10, 10_000: 5}, generate=40),
    cold_start_samples=7,
    fallback_cold_start_samples=3,
    memory_commands=MEMORY_COMMANDS_FULL,
)
QUICK = Preset(
    repetitions=Repetitions(rounds=3, first_time={10: 2, 1_000: 2, 10_000: 2}, generate=3),
    cold_start_samples=2,
    fallback_cold_start_samples=1,
    memory_commands=MEMORY_COMMANDS_QUICK,
)


@dataclass
class Row:
    """One line of the table. `passed` is None for a row without a target."""

    measure: str
    value: str
    target: str
    passed: Optional[bool]

    @property
    def result(self) -> str:
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "FAIL"


# Running the measurements.

def measure_memory(emulator: bench_env.EmulatorProcess, token: bench_measure.SeededToken, commands: int,
                   engine: str) -> dict[str, Any]:
    """Run tools/bench_memory.py in a child process and return its JSON result."""
    settings = {
        "engine": engine,
        "base_url": emulator.base_url,
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "token": token.token,
        "id": token.id,
        "commands": commands,
    }
    script = Path(__file__).resolve().parent / "bench_memory.py"
    result = subprocess.run(
        [sys.executable, str(script)],
        input=json.dumps(settings),
        capture_output=True,
        text=True,
        cwd=bench_env.ROOT,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise bench_measure.BenchError(f"tools/bench_memory.py failed with exit status {result.returncode}")
    return json.loads(result.stdout.strip().splitlines()[-1])


async def measure_all(emulator: bench_env.EmulatorProcess, wasm: bytes, preset: Preset, engine: str) -> dict[str, Any]:
    bench_measure.use_engine(engine)
    levels: list[LevelResult] = []
    async with aiohttp.ClientSession() as session:
        for count in LEVELS:
            print(f"bench: commands against {count:,} tokens", file=sys.stderr)
            levels.append(await bench_measure.measure_level(session, emulator, wasm, count, preset.repetitions))

        print(f"bench: resolving a token string among {RESOLUTION_TOKENS:,} tokens", file=sys.stderr)
        resolution = await bench_measure.measure_resolution(session, emulator, wasm, RESOLUTION_TOKENS)

        tokens = await bench_measure.reset_and_seed(session, emulator, LEVELS[0])

    print(f"bench: memory over {preset.memory_commands:,} commands", file=sys.stderr)
    memory = measure_memory(emulator, tokens[0], preset.memory_commands, engine)
    return {"levels": levels, "resolution": resolution, "memory": memory}


# The table.

def _ms(ns: float) -> str:
    return f"{ns / 1e6:.2f} ms"


def _us(ns: float) -> str:
    return f"{ns / 1e3:.0f} µs"


def _mib(size: Optional[int]) -> str:
    return "n/a" if size is None else f"{size / (1024 * 1024):.1f} MiB"


def cold_start_rows(cold: list[ColdStart]) -> list[Row]:
    rows = []
    for item in cold:
        value = (
            f"{_ms(item.total_ns)} (read {_ms(item.read_ns)}, compile {_ms(item.compile_ns)}, "
            f"instantiate {_ms(item.instantiate_ns)}; median of {item.samples})"
        )
        if item.engine == "wasmtime":
            rows.append(Row("cold start, wasmtime", value, f"≤ {MAX_COLD_START_MS:g} ms",
                            item.total_ns / 1e6 <= MAX_COLD_START_MS))
        else:
            rows.append(Row(f"cold start, {item.engine}", value, "—", None))
    return rows


def command_rows(levels: list[LevelResult]) -> list[Row]:
    rows = []
    for level in levels:
        rows.append(Row(
            f"loopback round trip, {level.tokens:,} tokens",
            f"{_ms(level.round_trip_ns)} (median of {level.round_trips})",
            "—",
            None,
        ))
        for stats in level.commands:
            value = (
                f"{stats.ratio:.3f} × round trip ({_us(stats.cpu_ns)} CPU, {stats.fuel / 1e6:.2f} M fuel, "
                f"{stats.requests:g} requests; median of {stats.samples})"
            )
            rows.append(Row(
                f"core CPU `{stats.command}`, {stats.tokens:,} tokens",
                value,
                f"≤ {MAX_CORE_CPU_RATIO:g} × round trip",
                stats.ratio <= MAX_CORE_CPU_RATIO,
            ))
    return rows


def resolution_rows(resolution: Resolution) -> list[Row]:
    allowed = math.ceil(resolution.tokens / resolution.page_size)
    return [
        Row(
            f"resolve a token string, {resolution.tokens:,} tokens, first time",
            f"{resolution.first_list_requests} list requests "
            f"(N/{resolution.page_size} = {resolution.tokens / resolution.page_size:.4g})",
            f"≤ {allowed} list requests",
            resolution.first_list_requests <= allowed,
        ),
        Row(
            f"resolve a token string, {resolution.tokens:,} tokens, repeat",
            f"{resolution.repeat_requests} request",
            "≤ 1 request",
            resolution.repeat_requests <= 1,
        ),
        Row(
            f"resolve a token string, {resolution.tokens:,} tokens, after its ID is gone (404)",
            f"{resolution.after_forget_requests} requests (1 by the old ID, then the search)",
            "—",
            None,
        ),
    ]


def reply_size_row(levels: list[LevelResult]) -> Row:
    level = next(level for level in levels if level.tokens == REPLY_SIZE_TOKENS)
    size = bench_measure.reply_size_bytes(level.list_reply)
    return Row(
        f"`list` reply size, {level.tokens:,} tokens",
        f"{size:,} bytes of body and formatted_body as JSON ({size / MATRIX_EVENT_LIMIT_BYTES:.0%} of Matrix's 65,536-byte event limit)",
        "—",
        None,
    )


def memory_row(memory: dict[str, Any]) -> Row:
    before, after = memory["rss_before"], memory["rss_after"]
    if before is None or after is None:
        return Row("resident memory", "n/a (no /proc/self/statm)", "—", None)
    growth = after - before
    value = (
        f"{_mib(before)} → {_mib(after)}, growth {growth / 1e6:+.2f} MB over {memory['commands']:,} commands "
        f"(wasm memory {_mib(memory['wasm_before'])} → {_mib(memory['wasm_after'])}; {memory['seconds']:.0f} s)"
    )
    return Row(
        f"resident memory, {memory['commands']:,} commands",
        value,
        f"growth ≤ {MAX_MEMORY_GROWTH_BYTES / 1e6:g} MB",
        growth <= MAX_MEMORY_GROWTH_BYTES,
    )


def size_rows(wasm_path: Path, mbp: Path) -> list[Row]:
    import zipfile

    with zipfile.ZipFile(mbp) as archive:
        shipped = archive.getinfo(bench_env.WASM_NAME).file_size
    release = wasm_path.stat().st_size
    return [
        Row(
            ".wasm size (in the .mbp)",
            f"{shipped:,} bytes (cargo's release output before wasm-opt: {release:,} bytes)",
            f"≤ {MAX_WASM_BYTES / 1000:g} KB",
            shipped <= MAX_WASM_BYTES,
        ),
        Row(".mbp size", f"{mbp.stat().st_size:,} bytes", "—", None),
    ]


def render_table(rows: list[Row]) -> str:
    lines = ["| measure | value | target | result |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.measure} | {row.value} | {row.target} | {row.result} |")
    return "\n".join(lines)


# The document.

def render_record(environment: dict[str, Any], table: str, mode: str, seconds: float) -> str:
    env = environment
    return "\n".join([
        DOC_BEGIN,
        f"Measured on {env['date']} by `./worker bench{' --quick' if mode == 'quick' else ''}` "
        f"({mode} run, {seconds:.0f} s).",
        "",
        f"- Machine: {env['cpu']}, {env['cores']} cores usable, {env['memory']} memory, {env['os']}",
        f"- Versions: Python {env['python']}, wasmtime-py {env['wasmtime']}, {env['rustc']}, "
        f"maubot {env['maubot']}, aiohttp {env['aiohttp']}",
        f"- Engine for the per-command and memory rows: {env['engine']}",
        "",
        table,
        DOC_END,
    ])


DOC_INTRO = """# Benchmarks

`./worker bench` measures what the plugin costs and how the cost grows with
the number of registration tokens. The text between the markers below is
rewritten by each run; the rest of this page is written by hand.
"""


def write_doc(path: Path, record: str) -> None:
    """Replace the generated record in `path`, keeping the hand-written text around it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""

    start, end = text.find(DOC_BEGIN), text.find(DOC_END)
    if start != -1 and end > start:
        text = text[:start] + record + text[end + len(DOC_END):]
    else:
        text = (text or DOC_INTRO).rstrip("\n") + "\n\n" + record + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def jsonable(value: Any) -> Any:
    """Convert the results' dataclasses for --json; replies become their sizes."""
    if isinstance(value, bench_measure.Reply):
        return {"body_chars": len(value.body), "html_chars": len(value.html), "error": value.error}
    if hasattr(value, "__dataclass_fields__"):
        return {name: jsonable(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


# Entry point.

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./worker bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="few repetitions and 600 instead of 12,000 commands for memory (under a minute)")
    parser.add_argument("--doc", type=Path,
                        help=f"file to write the record to (default {DOC_PATH.relative_to(bench_env.ROOT)} for a full "
                        "run; a --quick run writes none unless this is given)")
    parser.add_argument("--engine", choices=(bench_measure.WASMTIME, bench_measure.FALLBACK), default=bench_measure.WASMTIME,
                        help="engine for the per-command and memory measurements (default wasmtime); cold start "
                        "is measured with every available engine. The fallback is slow enough that only --quick "
                        "fits in ten minutes")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows and raw results as JSON")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    preset = QUICK if args.quick else FULL
    started = time.monotonic()

    try:
        wasm_path, mbp = bench_env.ensure_build()
    except bench_env.SetupError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    environment = bench_env.describe_environment()
    environment["engine"] = args.engine
    wasm = bench_env.standalone.read_wasm(wasm_path)

    engines = bench_measure.available_engines()
    if args.engine not in engines:
        print(f"bench: the {args.engine} engine is not available here; available: {', '.join(engines)}", file=sys.stderr)
        return 2
    cold = []
    for engine in engines:
        print(f"bench: cold start with {engine}", file=sys.stderr)
        samples = preset.cold_start_samples if engine == bench_measure.WASMTIME else preset.fallback_cold_start_samples
        cold.append(bench_measure.measure_cold_start(mbp, engine, samples))

    try:
        emulator = bench_env.start_emulator()
    except bench_env.SetupError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    try:
        results = asyncio.run(measure_all(emulator, wasm, preset, args.engine))
    except bench_measure.BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    finally:
        emulator.stop()

    rows = [
        *cold_start_rows(cold),
        *command_rows(results["levels"]),
        *resolution_rows(results["resolution"]),
        reply_size_row(results["levels"]),
        memory_row(results["memory"]),
        *size_rows(wasm_path, mbp),
    ]
    table = render_table(rows)
    seconds = time.monotonic() - started
    print(table)
    print(f"\n{sum(row.passed is True for row in rows)} PASS, {sum(row.passed is False for row in rows)} FAIL, "
          f"{seconds:.0f} s")

    doc = args.doc if args.doc is not None else (None if args.quick else DOC_PATH)
    if doc is not None and not args.no_doc:
        write_doc(doc, render_record(environment, table, "quick" if args.quick else "full", seconds))
    if args.json is not None:
        payload = {
            "rows": [{**asdict(row), "result": row.result} for row in rows],
            "cold_start": jsonable(cold),
            "results": jsonable(results),
            "environment": environment,
            "seconds": seconds,
        }
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
