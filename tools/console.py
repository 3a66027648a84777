"""Chat with the bot in a terminal: each input line is a Matrix message, each reply is printed.

    ./worker console                         built-in MAS emulator with sample tokens
    ./worker console --sender @mallory:localhost
    ./worker console --script session.txt    non-interactive; exit 1 if a reply is an error
    ./worker console --config plugin.yaml    a real MAS, with confirmation before changes

The messages run through the real wasm core and the plugin's Python shim
(Core, Transport, CommandRunner), so the replies are the ones the room would
get. After each reply, one line lists the HTTP requests made to MAS.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, TextIO
from urllib.parse import urlsplit

import standalone
from standalone import BuildError, ConfigError, MessageResult, PluginConfig, StandaloneBot

DEFAULT_SENDER = "@admin:localhost"
DEFAULT_ROOM = "!console:localhost"

# Subcommands that only read from MAS. With --config every other subcommand,
# including ones this list does not know yet, needs a confirmation first.
READ_ONLY_SUBCOMMANDS = frozenset({"help", "status", "list", "ls", "show", "info"})

QUIT_WORDS = frozenset({"quit", "exit"})

EXIT_OK = 0
EXIT_REPLY_ERROR = 1
EXIT_SETUP_ERROR = 2
EXIT_INTERRUPTED = 130

HISTORY_LENGTH = 1000
DAY_S = 86_400


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./worker console",
        description="Chat with the registration token bot in a terminal. Each line is a chat message; "
        "without --config the bot talks to a built-in MAS emulator on 127.0.0.1 with sample tokens.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="plugin config YAML (the keys of base-config.yaml) to use a real MAS instead of the emulator",
    )
    parser.add_argument(
        "--sender",
        default=DEFAULT_SENDER,
        help=f"Matrix user ID that sends the messages (default {DEFAULT_SENDER}, whitelisted in the emulator config)",
    )
    parser.add_argument("--room", default=DEFAULT_ROOM, help=f"room ID the messages are sent in (default {DEFAULT_ROOM})")
    parser.add_argument(
        "--script",
        type=Path,
        metavar="FILE",
        help="read messages from FILE instead of the terminal; lines starting with # and blank lines are skipped",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="with --config, send change-making commands without asking (required when not interactive)",
    )
    parser.add_argument(
        "--wasm",
        type=Path,
        metavar="FILE",
        help="run this compiled core instead of building target/.../mas_token_core.wasm when it is stale",
    )
    parser.add_argument("--verbose", action="store_true", help="print the plugin's debug log on stderr")
    return parser.parse_args(argv)


# Confirmation of change-making commands.

def is_change_command(body: str, base_command: str) -> bool:
    """Return whether `body` is a bot command that may change tokens in MAS.

    Only the subcommands in READ_ONLY_SUBCOMMANDS count as safe, so a new or
    misspelled subcommand needs a confirmation too.
    """
    words = body.split()
    if not words or words[0].lower() != "!" + base_command.lower():
        return False
    if len(words) == 1:
        return False
    return words[1].lower() not in READ_ONLY_SUBCOMMANDS


def ask_confirmation(body: str, mas_host: str) -> bool:
    """Ask on the terminal whether to send a change to MAS; only "y" or "yes" confirms."""
    try:
        answer = input(f"This changes registration tokens on {mas_host}. Send {body.strip()!r}? [y/N] ")
    except (EOFError, KeyboardInterrupt):
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


# The sample data in the emulator.

def seed_sample_tokens(emulator) -> None:
    """Create tokens in every state the bot reports, with times relative to the emulator's clock.

    The token strings are fixed, so scripts and the README can name them.
    """
    now = emulator.clock.now_ns() / 1e9
    emulator.add_token(token="staff-unlimited", usage_limit=None, times_used=17, created_at=now - 90 * DAY_S,
                       last_used_at=now - 2 * DAY_S)
    emulator.add_token(token="spring-expired", usage_limit=1, times_used=0, created_at=now - 20 * DAY_S,
                       expires_at=now - 13 * DAY_S)
    emulator.add_token(token="meetup-revoked", usage_limit=3, times_used=1, created_at=now - 10 * DAY_S,
                       revoked=now - DAY_S)
    emulator.add_token(token="workshop-used-up", usage_limit=3, times_used=3, created_at=now - 6 * DAY_S,
                       expires_at=now + DAY_S)
    emulator.add_token(
        token="welcome-aboard",
        usage_limit=10,
        times_used=2,
        created_at=now - 4 * DAY_S,
        expires_at=now + 26 * DAY_S,
    )
    emulator.add_token(token="team-onboarding", usage_limit=5, times_used=0, created_at=now - 3600,
                       expires_at=now + 7 * DAY_S - 3600)


def emulator_plugin_config(emulator, sender: str) -> PluginConfig:
    """Return a plugin config for the emulator that whitelists `sender` only."""
    return standalone.plugin_config_from_mapping(
        {
            "admin_api": f"{emulator.base_url}/api/admin",
            "token_url": emulator.token_url,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "whitelist": [sender],
            "room_whitelist": [],
            "http_timeout": 5,
        }
    )


# Input.

@dataclass(frozen=True)
class InputLine:
    text: str
    interactive: bool


def script_lines(stream: TextIO) -> Iterator[InputLine]:
    for line in stream:
        yield InputLine(line.rstrip("\r\n"), interactive=False)


def prompt_lines(prompt: str) -> Iterator[InputLine]:
    """Yield lines typed at the prompt until Ctrl-D; Ctrl-C raises KeyboardInterrupt."""
    while True:
        try:
            text = input(prompt)
        except EOFError:
            print()
            return
        yield InputLine(text, interactive=True)


def enable_history() -> Optional[Path]:
    """Turn on readline editing and history, and return the history file, or None without readline."""
    try:
        import readline
    except ImportError:
        return None

    state_home = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    history = state_home / "mas-token-bot" / "console_history"
    readline.set_history_length(HISTORY_LENGTH)
    try:
        readline.read_history_file(history)
    except OSError:
        pass  # The first run has no history yet.
    return history


def save_history(history: Optional[Path]) -> None:
    if history is None:
        return

    import readline

    try:
        history.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(history)
    except OSError as error:
        print(f"Could not save the command history to {history}: {error.strerror or error}", file=sys.stderr)


# The session.

class Console:
    """Runs input lines through a StandaloneBot and prints replies the way the room shows them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, bot: StandaloneBot, args: argparse.Namespace,
                 mas_host: Optional[str]) -> None:
        self.loop = loop
        self.bot = bot
        self.sender = args.sender
        self.room = args.room
        self.assume_yes = args.yes
        # The MAS host when changes need a confirmation (--config), or None for the emulator.
        self.mas_host = mas_host
        self.failures = 0

    def run(self, lines: Iterable[InputLine]) -> int:
        for line in lines:
            text = line.text.strip()
            if not text or text.startswith("#"):
                continue
            if text.lower() in QUIT_WORDS:
                break

            if not line.interactive:
                print(f"> {line.text}")
            self.handle(text, line.interactive)
            print()

        return EXIT_REPLY_ERROR if self.failures else EXIT_OK

    def handle(self, body: str, interactive: bool) -> None:
        if self.mas_host is not None and is_change_command(body, self.bot.base_command) and not self.assume_yes:
            if not interactive:
                print("Not sent: this command changes tokens on a real MAS. Run with --yes to allow changes in a script.")
                self.failures += 1
                return
            if not ask_confirmation(body, self.mas_host):
                print("Not sent.")
                return

        result = self.send(body)
        if result is None:
            return
        self.print_result(result)

    def send(self, body: str) -> Optional[MessageResult]:
        """Run one message; Ctrl-C cancels it and returns None."""
        task = self.loop.create_task(self.bot.send(body, sender=self.sender, room_id=self.room))
        try:
            return self.loop.run_until_complete(task)
        except KeyboardInterrupt:
            task.cancel()
            try:
                self.loop.run_until_complete(task)
            except (asyncio.CancelledError, KeyboardInterrupt):
                pass
            # NOTE: the core keeps the interrupted command's state until the
            # process ends, because the runner cannot cancel it from outside.
            print("Interrupted: the command was cancelled.")
            self.failures += 1
            return None

    def print_result(self, result: MessageResult) -> None:
        if not result.replies:
            print("(no reply: the bot ignores this message)")
        for reply in result.replies:
            print(reply.body)
            if reply.error:
                print("(the reply is marked as an error)")
            if reply.error and "is not allowed" in reply.body and self.mas_host is not None:
                print(f"(hint: {self.sender} is not in the config's whitelist; pass --sender with a user who is, "
                      "or --room with a room in room_whitelist)")
        print(result.trace())
        if result.failed:
            self.failures += 1


def describe_target(config: PluginConfig) -> str:
    """Return the host of the configured MAS, for messages."""
    for key in ("admin_api", "mas_url", "token_url"):
        url = str(config.values.get(key) or "")
        if url:
            return urlsplit(url).netloc or url
    return "(no MAS URL is set)"


async def start_emulator():
    from tests.mas_emulator import MasEmulator

    emulator = MasEmulator(client_id=standalone.new_ulid(), client_secret=secrets.token_urlsafe(32))
    await emulator.start()
    seed_sample_tokens(emulator)
    return emulator


def run_session(args: argparse.Namespace, loop: asyncio.AbstractEventLoop) -> int:
    log = standalone.make_logger("mas_token_bot.console", args.verbose)
    started = time.monotonic()

    try:
        wasm_path = args.wasm if args.wasm is not None else standalone.ensure_wasm()
        wasm = standalone.read_wasm(wasm_path)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_SETUP_ERROR

    emulator = None
    if args.config is not None:
        try:
            config = standalone.load_plugin_config_file(args.config)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_SETUP_ERROR
        target = f"MAS at {describe_target(config)} (config {args.config})"
    else:
        emulator = loop.run_until_complete(start_emulator())
        config = emulator_plugin_config(emulator, DEFAULT_SENDER)
        target = f"the MAS emulator at {emulator.base_url} ({len(emulator.tokens)} sample tokens)"

    session = loop.run_until_complete(_open_session())
    try:
        bot = StandaloneBot(wasm, session, log)
        configured = bot.configure(config)
        for problem in configured.problems:
            print(f"Config problem: {problem}", file=sys.stderr)

        interactive = args.script is None and sys.stdin.isatty()
        print(
            f"Talking to {target} as {args.sender} in {args.room}; ready in {time.monotonic() - started:.1f} s.",
            file=sys.stderr,
        )
        mas_host = describe_target(config) if args.config is not None else None
        console = Console(loop, bot, args, mas_host)

        if args.script is not None:
            try:
                with args.script.open(encoding="utf-8") as stream:
                    return console.run(script_lines(stream))
            except OSError as error:
                print(f"error: cannot read the script {args.script}: {error.strerror or error}", file=sys.stderr)
                return EXIT_SETUP_ERROR
        if not interactive:
            return console.run(script_lines(sys.stdin))
        return run_interactive(console, bot.base_command)

    finally:
        loop.run_until_complete(session.close())
        if emulator is not None:
            loop.run_until_complete(emulator.stop())


async def _open_session():
    import aiohttp

    return aiohttp.ClientSession()


def run_interactive(console: Console, base_command: str) -> int:
    print(f"Type !{base_command} help for the commands, and quit or Ctrl-D to leave.", file=sys.stderr)
    history = enable_history()
    try:
        console.run(prompt_lines(f"{console.sender}> "))
    except KeyboardInterrupt:
        print()
        return EXIT_INTERRUPTED
    finally:
        save_history(history)
    # An interactive session ends normally even when some replies were errors.
    return EXIT_OK


def main(argv: Optional[list[str]] = None) -> int:
    # A process started in the background by a non-interactive shell inherits
    # an ignored SIGINT, and Python then never raises KeyboardInterrupt, so
    # Ctrl-C would do nothing. The console always wants Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    loop = asyncio.new_event_loop()
    try:
        return run_session(args, loop)
    except KeyboardInterrupt:
        # Ctrl-C while starting up or during a script.
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
