"""Run the project's MAS emulator (tests/mas_emulator) and read its control API."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import aiohttp

from .processes import ServerProcess

_LISTENING = re.compile(r"MAS emulator listening on (http://127\.0\.0\.1:\d+)")


def make_process(repo_root: Path, client_id: str, client_secret: str,
                 log_path: Path) -> ServerProcess:
    # The emulator runs under the test's own Python, which has aiohttp.
    return ServerProcess(
        "mas-emulator",
        [sys.executable, "-m", "tests.mas_emulator", "--host", "127.0.0.1", "--port", "0",
         "--client-id", client_id, "--client-secret", client_secret],
        log_path,
        cwd=repo_root,
    )


async def wait_for_base_url(process: ServerProcess, timeout: float) -> str:
    """Wait for the emulator's start-up line and return its base URL."""
    line = await process.wait_for_log_line("MAS emulator listening on", timeout)
    match = _LISTENING.search(line)
    if not match:
        raise RuntimeError(f"unexpected start-up line from the MAS emulator: {line!r}")
    return match.group(1)


class EmulatorControl:
    """Client of the emulator's /__emulator__ control API."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def state(self) -> dict[str, Any]:
        async with self.session.get(f"{self.base_url}/__emulator__/state") as response:
            response.raise_for_status()
            return await response.json()

    async def seed_tokens(self, count: int) -> Any:
        async with self.session.post(f"{self.base_url}/__emulator__/tokens",
                                     json={"count": count}) as response:
            response.raise_for_status()
            return await response.json()

    async def reset(self) -> None:
        async with self.session.post(f"{self.base_url}/__emulator__/reset") as response:
            response.raise_for_status()
