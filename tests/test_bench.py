"""Tests of ./worker bench: a --quick run prints every row, and its numbers are positive and consistent.

Timings are not checked against thresholds here, because a test machine's
load would make such checks flaky. The targets are the benchmark's own
PASS/FAIL column.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import bench  # noqa: E402
import bench_measure  # noqa: E402

BENCH_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, str]:
    """Run `tools/bench.py --quick` once for the module and return its stdout, JSON output and doc."""
    directory = tmp_path_factory.mktemp("bench")
    json_path = directory / "bench.json"
    doc_path = directory / "benchmarks.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench.py"), "--quick", "--json", str(json_path), "--doc", str(doc_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_S,
    )
    assert result.returncode == 0, f"bench failed with {result.returncode}:\n{result.stderr[-3000:]}"
    return result.stdout, json.loads(json_path.read_text(encoding="utf-8")), doc_path.read_text(encoding="utf-8")


def expected_measures() -> list[str]:
    measures = [f"cold start, {engine}" for engine in bench_measure.available_engines()]
    for count in bench.LEVELS:
        measures.append(f"loopback round trip, {count:,} tokens")
        measures.extend(f"core CPU `{command}`, {count:,} tokens" for command in bench_measure.COMMANDS)
    tokens = f"{bench.RESOLUTION_TOKENS:,}"
    measures += [
        f"resolve a token string, {tokens} tokens, first time",
        f"resolve a token string, {tokens} tokens, repeat",
        f"resolve a token string, {tokens} tokens, after its ID is gone (404)",
        f"`list` reply size, {bench.REPLY_SIZE_TOKENS:,} tokens",
        f"resident memory, {bench.MEMORY_COMMANDS_QUICK:,} commands",
        ".wasm size (in the .mbp)",
        ".mbp size",
    ]
    return measures


def levels_by_count(payload: dict) -> dict[int, dict]:
    return {level["tokens"]: level for level in payload["results"]["levels"]}


def command_stats(level: dict, command: str) -> dict:
    return next(stats for stats in level["commands"] if stats["command"] == command)


def test_table_has_every_row(quick_run):
    stdout, payload, _ = quick_run
    measures = [row["measure"] for row in payload["rows"]]

    assert measures == expected_measures()
    assert stdout.startswith("| measure | value | target | result |")
    for measure in measures:
        assert f"| {measure} |" in stdout, f"row {measure!r} is missing from the printed table"


def test_rows_have_results(quick_run):
    _, payload, _ = quick_run

    for row in payload["rows"]:
        assert row["result"] in ("PASS", "FAIL", "info"), row
        assert row["value"], row
        if row["result"] != "info":
            assert row["target"] != "—", row


def test_timings_are_positive(quick_run):
    _, payload, _ = quick_run

    cold = payload["cold_start"][0]
    assert cold["read_ns"] > 0
    assert cold["compile_ns"] > 0
    assert cold["instantiate_ns"] > 0
    assert cold["total_ns"] >= cold["compile_ns"]

    for count, level in levels_by_count(payload).items():
        assert level["round_trip_ns"] > 0, count
        for stats in level["commands"]:
            assert stats["samples"] > 0, (count, stats)
            assert stats["cpu_ns"] > 0, (count, stats)
            assert stats["fuel"] > 0, (count, stats)
            assert stats["requests"] >= 1, (count, stats)


def test_first_search_costs_more_with_more_tokens(quick_run):
    _, payload, _ = quick_run
    levels = levels_by_count(payload)
    first_time = "delete <token string>, first time"
    cached = "delete <token string>, cached"

    small = command_stats(levels[min(levels)], first_time)
    large = command_stats(levels[max(levels)], first_time)
    assert large["fuel"] > small["fuel"]
    assert large["requests"] > small["requests"]
    assert command_stats(levels[max(levels)], cached)["requests"] == 1
    expected_pages = math.ceil(max(levels) / payload["results"]["resolution"]["page_size"])
    assert levels[max(levels)]["first_time_list_requests"] == [expected_pages] * len(levels[max(levels)]["first_time_list_requests"])


def test_repeat_resolution_uses_fewer_requests(quick_run):
    _, payload, _ = quick_run
    resolution = payload["results"]["resolution"]

    assert resolution["first_list_requests"] >= 1
    assert resolution["repeat_requests"] == 1
    assert resolution["repeat_requests"] < resolution["first_requests"]
    # After a 404 on the remembered ID, the core searches again.
    assert resolution["after_forget_requests"] > resolution["repeat_requests"]


def test_memory_and_sizes_are_measured(quick_run):
    _, payload, _ = quick_run
    memory = payload["results"]["memory"]
    levels = levels_by_count(payload)

    assert memory["commands"] == bench.MEMORY_COMMANDS_QUICK
    assert memory["rss_before"] > 0
    assert memory["rss_after"] > 0
    assert memory["wasm_after"] >= memory["wasm_before"] > 0
    assert levels[bench.REPLY_SIZE_TOKENS]["list_reply"]["body_chars"] > 0
    assert levels[bench.REPLY_SIZE_TOKENS]["list_reply"]["html_chars"] > 0


def test_doc_record_has_machine_and_table(quick_run):
    stdout, _, doc = quick_run

    assert bench.DOC_BEGIN in doc
    assert bench.DOC_END in doc
    assert "- Machine: " in doc
    assert "- Versions: Python " in doc
    assert stdout.split("\n\n")[0].strip() in doc


def test_write_doc_keeps_text_outside_markers(tmp_path: Path):
    path = tmp_path / "benchmarks.md"
    path.write_text(f"# Title\n\n{bench.DOC_BEGIN}\nold\n{bench.DOC_END}\n\n## Analysis\n\nkept\n", encoding="utf-8")

    bench.write_doc(path, f"{bench.DOC_BEGIN}\nnew\n{bench.DOC_END}")

    text = path.read_text(encoding="utf-8")
    assert "old" not in text
    assert "new" in text
    assert text.startswith("# Title")
    assert text.endswith("## Analysis\n\nkept\n")
