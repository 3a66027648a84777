"""Set-up for tools/bench.py: a fresh build, the MAS emulator process, and the machine and versions.

The emulator runs as a child process (`python -m tests.mas_emulator`) on
127.0.0.1, so the benchmark process holds only the plugin's side: its
resident memory is the plugin's, and a round trip crosses a real loopback
socket between two processes, as it does between maubot and MAS.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import secrets
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import standalone

ROOT = standalone.ROOT
DIST = ROOT / "dist"
SHIM_DIR = ROOT / "python-shim" / "mas_token_bot"
PACKAGE_INPUTS = (ROOT / "maubot.yaml", ROOT / "base-config.yaml")
WASM_NAME = "mas_token_core.wasm"

EMULATOR_START_TIMEOUT_S = 30.0
EMULATOR_STOP_TIMEOUT_S = 10.0
EMULATOR_READY_PREFIX = "MAS emulator listening on "


class SetupError(Exception):
    """The build or the emulator could not be brought up."""


# Building.

def mbp_path() -> Path:
    """Return the newest dist/*.mbp, raising SetupError when there is none."""
    archives = sorted(DIST.glob("*.mbp"), key=lambda path: path.stat().st_mtime)
    if not archives:
        raise SetupError(f"no .mbp in {DIST}; ./worker build writes one")
    return archives[-1]


def _package_is_stale() -> bool:
    try:
        built = mbp_path().stat().st_mtime
    except SetupError:
        return True
    inputs = [standalone.WASM_PATH, *PACKAGE_INPUTS, *SHIM_DIR.rglob("*.py")]
    return any(path.stat().st_mtime > built for path in inputs if path.is_file())


def ensure_build() -> tuple[Path, Path]:
    """Build when the .wasm or the .mbp is missing or stale; return (release .wasm, .mbp).

    The build's output goes to stderr, so stdout carries only the table.
    """
    if standalone.wasm_is_stale() or _package_is_stale():
        print("bench: the .wasm or .mbp is missing or stale, so tools/build.sh runs first", file=sys.stderr)
        result = subprocess.run([str(standalone.BUILD_SCRIPT)], cwd=ROOT, stdout=sys.stderr, stderr=sys.stderr)
        if result.returncode != 0:
            raise SetupError(f"tools/build.sh failed with exit status {result.returncode}; see its output above")
    return standalone.WASM_PATH, mbp_path()


# The emulator.

@dataclass
class EmulatorProcess:
    """A `python -m tests.mas_emulator` child process and the values a plugin config needs."""

    process: subprocess.Popen
    base_url: str
    client_id: str
    client_secret: str

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/__emulator__"

    @property
    def collection_url(self) -> str:
        return f"{self.base_url}/api/admin/v1/user-registration-tokens"

    def stop(self) -> None:
        """Send SIGTERM and wait; kill the process if it does not exit in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=EMULATOR_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_emulator() -> EmulatorProcess:
    """Start the emulator on 127.0.0.1 with a random admin client and wait for its ready line."""
    client_id = standalone.new_ulid()
    client_secret = secrets.token_urlsafe(32)
    command = [
        sys.executable, "-m", "tests.mas_emulator",
        "--host", "127.0.0.1", "--port", "0",
        "--client-id", client_id, "--client-secret", client_secret,
        "--log-level", "ERROR",
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)

    deadline = time.monotonic() + EMULATOR_START_TIMEOUT_S
    line = ""
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline().strip()
            break

    if not line.startswith(EMULATOR_READY_PREFIX):
        process.kill()
        process.wait()
        raise SetupError(
            f"the MAS emulator did not print its ready line within {EMULATOR_START_TIMEOUT_S:g} s "
            f"(exit status {process.returncode}, first line {line!r})"
        )
    return EmulatorProcess(process, line[len(EMULATOR_READY_PREFIX):], client_id, client_secret)


def plugin_config(emulator: EmulatorProcess, sender: str) -> standalone.PluginConfig:
    """Return the console's plugin config for an emulator, with `sender` whitelisted."""
    import console

    return console.emulator_plugin_config(emulator, sender)


# The machine and the versions.

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / (1024 * 1024):.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 0


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _rustc_version() -> str:
    try:
        result = subprocess.run(["rustc", "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({type(error).__name__})"
    return result.stdout.strip() or "unknown"


def describe_environment() -> dict[str, Any]:
    """Return the machine, the versions and the date for the benchmark record."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": _usable_cores(),
        "memory": _memory_total(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "wasmtime": _package_version("wasmtime"),
        "maubot": _package_version("maubot"),
        "aiohttp": _package_version("aiohttp"),
        "rustc": _rustc_version(),
    }


def resident_bytes() -> Optional[int]:
    """Return this process's resident set size from /proc/self/statm, or None off Linux."""
    try:
        fields = Path("/proc/self/statm").read_text(encoding="ascii").split()
    except OSError:
        return None
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def to_json_line(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
