"""Start, watch and stop the server processes of the end-to-end test.

Each server runs in its own process group with stdout and stderr sent to a log
file, so stopping it also stops any children it forked, and a failure report
can show the end of its log.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path


def _terminate_with_parent() -> None:
    """Ask Linux to send SIGTERM to this child when the test process dies.

    Runs in the child between fork and exec. Without it, a server would
    outlive a test run that was killed before its teardown.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    NOTE: another process could take the port between this call and the
    server binding it. On a test machine that race is rare, and the server
    then fails to start with an error in its log.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Redactor:
    """Replace known secrets with a placeholder before any text is printed."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *secrets: str | None) -> None:
        for secret in secrets:
            # Very short strings would blank out ordinary words.
            if secret and len(secret) >= 8:
                self._secrets.add(secret)

    def redact(self, text: str) -> str:
        # Replace longer secrets first so a secret that contains another is
        # replaced whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "<redacted>")
        return text


class ServerProcess:
    """One child process with its own process group and log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, cwd: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._stopped = False

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_terminate_with_parent,
            )

    def exit_code(self) -> int | None:
        """Return the exit code, or None while the process runs."""
        if self.process is None:
            return None
        return self.process.poll()

    def check_running(self) -> None:
        """Raise RuntimeError if the process has exited."""
        code = self.exit_code()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with code {code}; see {self.log_path}")

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    async def wait_for_log_line(self, prefix: str, timeout: float) -> str:
        """Wait until a log line starts with `prefix` and return that line."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.read_log().splitlines():
                if line.startswith(prefix):
                    return line
            self.check_running()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name} printed no line starting with {prefix!r} within {timeout:.0f} s"
                )
            await asyncio.sleep(0.1)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Send SIGTERM to the process group, then SIGKILL to what is left of it.

        Calling it again does nothing. If the process had already exited and
        been reaped, its group is left alone, because the group ID may then
        belong to an unrelated process.
        """
        if self.process is None or self._stopped:
            return
        self._stopped = True
        if self.process.returncode is not None:
            return

        pid = self.process.pid
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        exited = self._wait_unreaped(grace_seconds)
        # Until the leader is reaped its PID, and so the group ID, cannot be
        # reused, so this SIGKILL reaches only children left in its group.
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=grace_seconds if exited else None)

    def _wait_unreaped(self, timeout: float) -> bool:
        """Wait until the process exits, leaving it a zombie. Return False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = os.waitid(os.P_PID, self.process.pid,
                               os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if status is not None:
                return True
            time.sleep(0.05)
        return False


def log_tails(servers: Iterable[ServerProcess], redactor: Redactor, lines: int = 40) -> str:
    """Return the last `lines` lines of each server's log, secrets redacted."""
    sections = []
    for server in servers:
        tail = server.read_log().splitlines()[-lines:]
        body = redactor.redact("\n".join(tail)) or "(empty log)"
        sections.append(f"----- last {lines} lines of {server.log_path} -----\n{body}")
    return "\n".join(sections)
