"""Tests of ./worker console: scripted sessions against the built-in emulator and against --config."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.mas_emulator import MasEmulator

sys.path.insert(0, str(ROOT / "tools"))
import console  # noqa: E402
import standalone  # noqa: E402

# These tests run the core in subprocesses or only read the archive, so a
# second pass per engine would repeat them without testing anything new.
pytestmark = pytest.mark.single_engine

CLIENT_ID = "01JAYQ5R6M3T8V2N4K7W9X1Z0B"
CLIENT_SECRET = "console-test-secret-9d2e"
ULID_PATTERN = r"[0-9A-HJKMNP-TV-Z]{26}"


@pytest.fixture(scope="module")
def module_wasm_file(built_plugin, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console") / "mas_token_core.wasm"
    path.write_bytes(built_plugin.wasm)
    return path


@pytest.fixture
def wasm_file(built_plugin, tmp_path: Path) -> Path:
    """The session's built core as a file, so that the console runs it instead of building."""
    path = tmp_path / "mas_token_core.wasm"
    path.write_bytes(built_plugin.wasm)
    return path


def run_console(wasm_file: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    """Run `./worker console --script` with `script` as the script file's content."""
    script_path = wasm_file.parent / "session.txt"
    script_path.write_text(script, encoding="utf-8")
    return subprocess.run(
        [str(ROOT / "worker"), "console", "--wasm", str(wasm_file), "--script", str(script_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def traces(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("MAS: ")]


FULL_SESSION = """\
# Comments and blank lines are skipped.

!token generate 3 86400
!token list
!token list welcome-aboard
!token delete welcome-aboard
!token unrevoke welcome-aboard
"""


@pytest.fixture(scope="module")
def full_session(module_wasm_file: Path) -> subprocess.CompletedProcess:
    return run_console(module_wasm_file, FULL_SESSION)


def test_session_exits_zero(full_session) -> None:
    assert full_session.returncode == 0, full_session.stdout + full_session.stderr
    assert "(the reply is marked as an error)" not in full_session.stdout


def test_session_echoes_commands_only(full_session) -> None:
    echoed = [line for line in full_session.stdout.splitlines() if line.startswith("> ")]
    assert echoed == [
        "> !token generate 3 86400",
        "> !token list",
        "> !token list welcome-aboard",
        "> !token delete welcome-aboard",
        "> !token unrevoke welcome-aboard",
    ]
    assert "Comments and blank lines" not in full_session.stdout


def test_session_traces_mas_requests(full_session) -> None:
    lines = traces(full_session.stdout)
    assert len(lines) == 5, full_session.stdout

    generate, listing, show, delete, unrevoke = lines
    assert generate.startswith("MAS: POST /oauth2/token 200 · ")
    assert "POST /api/admin/v1/user-registration-tokens 201" in generate
    assert "GET /api/admin/v1/user-registration-tokens?" in listing
    # The token came from the emulator's sample data, so it must be found.
    assert " 404" not in show
    assert re.search(rf"POST /api/admin/v1/user-registration-tokens/{ULID_PATTERN}/revoke 200", delete)
    assert re.search(rf"POST /api/admin/v1/user-registration-tokens/{ULID_PATTERN}/unrevoke 200", unrevoke)


def test_session_replies_name_tokens(full_session) -> None:
    stdout = full_session.stdout
    # The list shows the seeded token with a custom string and the one never expiring.
    list_reply = stdout.split("> !token list\n", 1)[1].split("> !token list welcome-aboard", 1)[0]
    assert "welcome-aboard" in list_reply
    assert "unlimited" in list_reply
    show_reply = stdout.split("> !token list welcome-aboard\n", 1)[1].split("> !token delete", 1)[0]
    assert "welcome-aboard" in show_reply


def test_session_never_prints_secrets(full_session) -> None:
    # The emulator's credentials are random, so look for the shapes instead.
    output = full_session.stdout + full_session.stderr
    assert "client_secret" not in output
    assert not re.search(r"mat_[A-Za-z0-9]{30}_", output)
    assert "Authorization" not in output


def test_refused_sender_fails(wasm_file: Path) -> None:
    result = run_console(wasm_file, "!token list\n", "--sender", "@mallory:localhost")

    assert result.returncode == 1
    assert "@mallory:localhost" in result.stdout
    assert "not allowed" in result.stdout
    assert "(the reply is marked as an error)" in result.stdout
    assert traces(result.stdout) == ["MAS: no requests"]


def test_usage_error_fails(wasm_file: Path) -> None:
    result = run_console(wasm_file, "!token help\n!token generate lots\n")

    assert result.returncode == 1
    assert "Usage:" in result.stdout
    assert "> !token generate lots" in result.stdout
    assert traces(result.stdout) == ["MAS: no requests", "MAS: no requests"]


def test_other_messages_get_no_reply(wasm_file: Path) -> None:
    result = run_console(wasm_file, "hello there\n")

    assert result.returncode == 0
    assert "(no reply: the bot ignores this message)" in result.stdout


def test_piped_input_runs_like_script(wasm_file: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "worker"), "console", "--wasm", str(wasm_file)],
        cwd=ROOT,
        input="!token status\nquit\n!token generate\n",
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "> !token status" in result.stdout
    # Everything after `quit` is ignored.
    assert "generate" not in result.stdout
    assert len(traces(result.stdout)) == 1


def test_missing_script_fails(wasm_file: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "worker"), "console", "--wasm", str(wasm_file), "--script", str(wasm_file.parent / "absent.txt")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "cannot read the script" in result.stderr


# --config with an emulator that the test controls.

async def run_with_config(emulator: MasEmulator, wasm_file: Path, script: str, *args: str) -> tuple[int, str, str]:
    config_path = wasm_file.parent / "plugin.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "admin_api": f"{emulator.base_url}/api/admin",
                "token_url": emulator.token_url,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "whitelist": [console.DEFAULT_SENDER],
            }
        ),
        encoding="utf-8",
    )
    script_path = wasm_file.parent / "session.txt"
    script_path.write_text(script, encoding="utf-8")

    process = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "python"),
        str(ROOT / "tools" / "console.py"),
        "--wasm", str(wasm_file),
        "--config", str(config_path),
        "--script", str(script_path),
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.fixture
async def real_mas(wasm_file: Path):
    emulator = MasEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    await emulator.start()
    emulator.add_token(token="spring-cohort", usage_limit=5)
    try:
        yield emulator
    finally:
        await emulator.stop()


async def test_config_script_rejects_changes(real_mas: MasEmulator, wasm_file: Path) -> None:
    script = "!token list\n!token generate 2\n!token delete spring-cohort\n"
    status, stdout, stderr = await run_with_config(real_mas, wasm_file, script)

    assert status == 1
    assert stdout.count("Not sent") == 2
    assert "--yes" in stdout
    assert "spring-cohort" in stdout
    assert len(real_mas.tokens) == 1
    token = real_mas.find_by_string("spring-cohort")
    assert token.revoked_at_ns is None
    methods = {record.method for record in real_mas.requests if record.path.startswith("/api/admin")}
    assert methods == {"GET"}
    assert CLIENT_SECRET not in stdout + stderr


async def test_config_script_with_yes_changes(real_mas: MasEmulator, wasm_file: Path) -> None:
    script = "!token generate 2\n!token delete spring-cohort\n"
    status, stdout, stderr = await run_with_config(real_mas, wasm_file, script, "--yes")

    assert status == 0, stdout + stderr
    assert "Not sent" not in stdout
    assert len(real_mas.tokens) == 2
    assert real_mas.find_by_string("spring-cohort").revoked_at_ns is not None
    assert CLIENT_SECRET not in stdout + stderr


async def test_config_refusal_hints_at_sender(real_mas: MasEmulator, wasm_file: Path) -> None:
    status, stdout, stderr = await run_with_config(real_mas, wasm_file, "!token list\n", "--sender", "@stranger:localhost")

    assert status == 1
    assert "is not allowed" in stdout
    assert "hint: @stranger:localhost is not in the config's whitelist" in stdout
    assert [record for record in real_mas.requests if record.path.startswith("/api/admin")] == []


async def test_missing_config_file_fails(wasm_file: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "worker"), "console", "--wasm", str(wasm_file), "--config", str(wasm_file.parent / "absent.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "cannot read the plugin config" in result.stderr


# Interactive use on a pseudo-terminal.

def _take_terminal() -> None:
    # Make the pseudo-terminal the child's controlling terminal, so that
    # typing Ctrl-C there sends SIGINT to the console as in a real shell.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """The console on a pseudo-terminal, with its output read as it arrives."""

    def __init__(self, wasm_file: Path, home: Path, *args: str) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(home / "state"), "TERM": "dumb"}
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "tools" / "console.py"), "--wasm", str(wasm_file), *args],
            cwd=ROOT,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            close_fds=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.output = ""
        # Length of the output that read_until has already matched.
        self.consumed = 0

    def read_until(self, text: str, timeout: float = 60) -> str:
        """Read until `text` appears in output that arrived after the last call, and return all output."""
        deadline = time.monotonic() + timeout
        while text not in self.output[self.consumed:]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{text!r} did not appear; output so far:\n{self.output}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the console exited before {text!r} appeared; output:\n{self.output}")
                self.output += chunk.decode("utf-8", errors="replace")
        self.consumed = self.output.index(text, self.consumed) + len(text)
        return self.output

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def wait(self, timeout: float = 30) -> int:
        """Wait for the console to exit, reading its output meanwhile.

        A console that writes more than the terminal buffers while nobody
        reads would block and never exit, so the output is drained the whole time.
        """
        deadline = time.monotonic() + timeout
        while True:
            status = self.process.poll()
            ready, _, _ = select.select([self.master], [], [], 0.2)
            chunk = b""
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                self.output += chunk.decode("utf-8", errors="replace")
            if status is not None and not chunk:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"the console did not exit within {timeout} s; output:\n{self.output}")


PROMPT = f"{console.DEFAULT_SENDER}> "


@pytest.fixture
def terminal(wasm_file: Path, tmp_path: Path):
    running = Terminal(wasm_file, tmp_path)
    try:
        yield running
    finally:
        running.close()


def test_terminal_ctrl_c_exits_cleanly(terminal: Terminal) -> None:
    terminal.read_until(PROMPT)
    terminal.type(b"!token help\r")
    terminal.read_until("MAS: no requests")
    terminal.read_until(PROMPT)
    terminal.type(b"\x03")

    assert terminal.wait() == 130
    assert "Traceback" not in terminal.output


def test_terminal_ctrl_d_exits_zero(terminal: Terminal, tmp_path: Path) -> None:
    terminal.read_until(PROMPT)
    terminal.type(b"!token list\r")
    terminal.read_until("MAS: POST /oauth2/token 200")
    terminal.read_until(PROMPT)
    terminal.type(b"\x04")

    assert terminal.wait() == 0
    assert "Traceback" not in terminal.output
    history = tmp_path / "state" / "mas-token-bot" / "console_history"
    assert "!token list" in history.read_text(encoding="utf-8")


def confirm_session(terminal: Terminal) -> None:
    """Answer no, then yes, to the confirmation of a generate command."""
    terminal.read_until(PROMPT)
    terminal.type(b"!token generate 2\r")
    terminal.read_until("[y/N] ")
    terminal.type(b"n\r")
    terminal.read_until("Not sent.")
    terminal.read_until(PROMPT)
    terminal.type(b"!token generate 2\r")
    terminal.read_until("[y/N] ")
    terminal.type(b"y\r")
    terminal.read_until("POST /api/admin/v1/user-registration-tokens 201")
    terminal.read_until(PROMPT)
    terminal.type(b"quit\r")


async def test_terminal_config_asks_before_changes(real_mas: MasEmulator, wasm_file: Path, tmp_path: Path) -> None:
    config_path = tmp_path / "plugin.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "admin_api": f"{real_mas.base_url}/api/admin",
                "token_url": real_mas.token_url,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "whitelist": [console.DEFAULT_SENDER],
            }
        ),
        encoding="utf-8",
    )
    terminal = Terminal(wasm_file, tmp_path, "--config", str(config_path))
    try:
        # The emulator runs on this event loop, so the terminal is driven from a thread.
        await asyncio.to_thread(confirm_session, terminal)
        status = await asyncio.to_thread(terminal.wait)
    finally:
        terminal.close()

    assert status == 0, terminal.output
    assert "127.0.0.1" in terminal.output
    assert len(real_mas.tokens) == 2
    posts = [record for record in real_mas.requests if record.method == "POST" and record.path.startswith("/api/admin")]
    assert len(posts) == 1


# Helpers.

@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("!token generate 3 86400", True),
        ("!token new", True),
        ("!TOKEN Create", True),
        ("!token delete abc", True),
        ("!token revoke abc", True),
        ("!token unrevoke abc", True),
        ("!token restore abc", True),
        ("!token edit abc uses 3", True),
        ("!token frobnicate", True),
        ("!token list", False),
        ("!token list welcome", False),
        ("!token ls", False),
        ("!token show abc", False),
        ("!token info abc", False),
        ("!token status", False),
        ("!token help", False),
        ("!token", False),
        ("hello", False),
        ("!other generate", False),
        ("  !token   delete x", True),
    ],
)
def test_is_change_command(body: str, expected: bool) -> None:
    assert console.is_change_command(body, "token") is expected


def test_is_change_command_other_base() -> None:
    assert console.is_change_command("!regtoken delete x", "regtoken") is True
    assert console.is_change_command("!token delete x", "regtoken") is False


def test_wasm_is_stale_when_missing(tmp_path: Path) -> None:
    assert standalone.wasm_is_stale(tmp_path / "absent.wasm") is True


def test_wasm_is_stale_by_mtime(tmp_path: Path) -> None:
    wasm = tmp_path / "core.wasm"
    wasm.write_bytes(b"\0asm")
    newest_source = max(path.stat().st_mtime for path in standalone.core_sources())

    os.utime(wasm, (newest_source + 60, newest_source + 60))
    assert standalone.wasm_is_stale(wasm) is False

    os.utime(wasm, (newest_source - 60, newest_source - 60))
    assert standalone.wasm_is_stale(wasm) is True
