"""Run the plugin's real wasm core and Python shim outside maubot, for the developer tools.

tools/console.py and tools/mas_client.py share this module. It builds the
.wasm when it is missing or stale. It loads a plugin config the way the
plugin does: base-config.yaml's defaults completed by the instance config.
It drives chat messages through the shim's Core, Transport and
CommandRunner with a plain aiohttp session. Each message's replies and the MAS requests it caused are
returned together, so a tool can print both.
"""

from __future__ import annotations

import io
import logging
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
WASM_PATH = ROOT / "target" / "wasm32-unknown-unknown" / "release" / "mas_token_core.wasm"
BASE_CONFIG_PATH = ROOT / "base-config.yaml"
BUILD_SCRIPT = ROOT / "tools" / "build.sh"

# The tools run as scripts from tools/, so the repository root (for
# tests.mas_emulator) and python-shim/ (for mas_token_bot) are not on sys.path.
for _path in (ROOT / "python-shim", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import aiohttp  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402
from ruamel.yaml.comments import CommentedMap  # noqa: E402
from ruamel.yaml.error import YAMLError  # noqa: E402
from mautrix.util.config import RecursiveDict  # noqa: E402

from mas_token_bot.config import Config  # noqa: E402
from mas_token_bot.core import Core  # noqa: E402
from mas_token_bot.engine import compile_module  # noqa: E402
from mas_token_bot.protocol import LOG_LEVELS, Configured, HttpFailure, HttpOutcome, HttpRequest, Reply  # noqa: E402
from mas_token_bot.runner import CommandRunner  # noqa: E402
from mas_token_bot.transport import Transport  # noqa: E402

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_LENGTH = 26


class BuildError(Exception):
    """tools/build.sh failed or did not produce the .wasm."""


class ConfigError(Exception):
    """A plugin config file that cannot be read or is not a YAML mapping."""


# ULIDs.

def new_ulid(now_ms: Optional[int] = None) -> str:
    """Return a new ULID: a 48-bit Unix time in milliseconds and 80 random bits, in Crockford base32."""
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    if not 0 <= now_ms < (1 << 48):
        raise ValueError(f"invalid ULID time {now_ms} ms: expected 0 to 2**48 - 1")
    return encode_ulid((now_ms << 80) | secrets.randbits(80))


def encode_ulid(value: int) -> str:
    """Encode a 128-bit integer as 26 Crockford base32 characters, most significant first."""
    if not 0 <= value < (1 << 128):
        raise ValueError("a ULID is a 128-bit unsigned integer")

    # 26 characters hold 130 bits, so the first character is at most "7".
    characters = []
    for _ in range(ULID_LENGTH):
        characters.append(CROCKFORD_ALPHABET[value & 0x1F])
        value >>= 5
    return "".join(reversed(characters))


# Building the core.

def core_sources() -> Iterator[Path]:
    """Yield the files whose change makes the release .wasm stale."""
    for name in ("Cargo.toml", "Cargo.lock", "crate/Cargo.toml"):
        path = ROOT / name
        if path.is_file():
            yield path
    yield from (path for path in (ROOT / "crate" / "src").rglob("*") if path.is_file())


def wasm_is_stale(wasm: Path = WASM_PATH) -> bool:
    """Return whether `wasm` is missing or older than any core source file."""
    try:
        built = wasm.stat().st_mtime
    except FileNotFoundError:
        return True
    return any(source.stat().st_mtime > built for source in core_sources())


def ensure_wasm(wasm: Path = WASM_PATH) -> Path:
    """Run tools/build.sh when the .wasm is missing or stale, and return its path.

    The build's output goes to stderr, so that the tools' stdout carries only
    their own output. Raises BuildError when the build fails.
    """
    if not wasm_is_stale(wasm):
        return wasm

    print("The wasm core is missing or older than crate/src, so it is built first (tools/build.sh).", file=sys.stderr)
    result = subprocess.run([str(BUILD_SCRIPT)], cwd=ROOT, stdout=sys.stderr, stderr=sys.stderr)
    if result.returncode != 0:
        raise BuildError(f"tools/build.sh failed with exit status {result.returncode}; see its output above")
    if not wasm.is_file():
        raise BuildError(f"tools/build.sh finished but {wasm} does not exist")
    return wasm


# Plugin config.

@dataclass(frozen=True)
class PluginConfig:
    """A plugin config as the core's `configure` gets it, plus the keys the plugin ignores."""

    values: dict[str, Any]
    unknown_keys: list[str]

    @property
    def token_url(self) -> str:
        return str(self.values.get("token_url") or "")

    @property
    def admin_api(self) -> str:
        return str(self.values.get("admin_api") or "")

    @property
    def client_id(self) -> str:
        return str(self.values.get("client_id") or "")

    @property
    def client_secret(self) -> str:
        return str(self.values.get("client_secret") or "")


def load_plugin_config_file(path: Path) -> PluginConfig:
    """Read a plugin config YAML file (the keys of base-config.yaml) and complete it with the defaults."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the plugin config {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the plugin config {path} is not UTF-8 text") from None
    return plugin_config_from_text(text, str(path))


def plugin_config_from_mapping(mapping: dict[str, Any]) -> PluginConfig:
    """Complete an instance config given as a dict with base-config.yaml's defaults."""
    buffer = io.StringIO()
    YAML().dump(dict(mapping), buffer)
    return plugin_config_from_text(buffer.getvalue(), "<generated config>")


def plugin_config_from_text(text: str, source: str) -> PluginConfig:
    """Run the YAML text through the plugin's own Config class, as maubot does on load."""
    yaml = YAML()
    try:
        loaded = yaml.load(text)
    except YAMLError as error:
        raise ConfigError(f"the plugin config {source} is not valid YAML: {error}") from None

    if loaded is None:
        loaded = CommentedMap()
    if not isinstance(loaded, dict):
        raise ConfigError(f"the plugin config {source} must be a YAML mapping of keys to values, not a {type(loaded).__name__}")

    def load_base() -> RecursiveDict[CommentedMap]:
        # A fresh copy each time, because BaseProxyConfig.update writes into the base.
        return RecursiveDict(YAML().load(BASE_CONFIG_PATH.read_text(encoding="utf-8")), CommentedMap)

    config = Config(load=lambda: loaded, load_base=load_base, save=lambda data: None)
    config.load_and_update()
    return PluginConfig(values=config.to_core_json(), unknown_keys=list(config.unknown_keys))


# Running commands.

@dataclass(frozen=True)
class Exchange:
    """One HTTP request to MAS and its outcome: a status, or the kind of failure."""

    method: str
    url: str
    status: Optional[int]
    failure: Optional[str]

    def describe(self) -> str:
        """Return e.g. "GET /api/admin/v1/user-registration-tokens?page[first]=100 200"."""
        parts = urlsplit(self.url)
        target = unquote(parts.path)
        if parts.query:
            target += "?" + unquote(parts.query)
        outcome = str(self.status) if self.status is not None else (self.failure or "no response")
        return f"{self.method} {target} {outcome}"


class RecordingTransport(Transport):
    """The shim's Transport, keeping a record of each request and its outcome."""

    def __init__(self, session: aiohttp.ClientSession, log: logging.Logger) -> None:
        super().__init__(session, log)
        self.exchanges: list[Exchange] = []

    async def perform(self, request: HttpRequest) -> HttpOutcome:
        outcome = await super().perform(request)
        if isinstance(outcome, HttpFailure):
            self.exchanges.append(Exchange(request.method, request.url, None, outcome.kind))
        else:
            self.exchanges.append(Exchange(request.method, request.url, outcome.status, None))
        return outcome


@dataclass
class MessageResult:
    """Outcome of one chat message: the replies sent to the room and the MAS requests made."""

    replies: list[Reply] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(reply.error for reply in self.replies)

    def trace(self) -> str:
        """Return the one-line summary of the MAS requests, e.g. "MAS: POST /oauth2/token 200"."""
        if not self.exchanges:
            return "MAS: no requests"
        return "MAS: " + " · ".join(exchange.describe() for exchange in self.exchanges)


class StandaloneBot:
    """The plugin's Core, Transport and CommandRunner on one aiohttp session, without Matrix."""

    def __init__(self, wasm: bytes, session: aiohttp.ClientSession, log: logging.Logger) -> None:
        self.log = log
        self.transport = RecordingTransport(session, log)
        self.core = Core(compile_module(wasm), log)
        self.runner = CommandRunner(self.core, self.transport, self._collect_reply, log)
        self.base_command = "token"
        self._replies: list[Reply] = []

    def configure(self, config: PluginConfig) -> Configured:
        """Pass the config to the transport and the core, as the plugin's _apply_config does."""
        for key in config.unknown_keys:
            self.log.warning("Ignoring config key %r: base-config.yaml has no such setting", key)

        # Without token_url, the shim finds the token endpoint from mas_url.
        token_endpoint = config.token_url or str(config.values.get("mas_url") or "")
        self.transport.set_credentials(token_endpoint, config.client_id, config.client_secret)
        configured = self.core.configure(config.values)
        for line in configured.log:
            self.log.log(LOG_LEVELS[line.level], "core: %s", line.message)

        self.base_command = configured.base_command
        return configured

    async def send(self, body: str, sender: str, room_id: str) -> MessageResult:
        """Run one chat message through the runner and return its replies and MAS requests."""
        self._replies = []
        first_exchange = len(self.transport.exchanges)

        await self.runner.run(sender=sender, room_id=room_id, body=body)

        return MessageResult(
            replies=list(self._replies),
            exchanges=self.transport.exchanges[first_exchange:],
        )

    async def _collect_reply(self, room_id: str, reply: Reply) -> None:
        self._replies.append(reply)


def make_logger(name: str, verbose: bool) -> logging.Logger:
    """Return a logger that writes to stderr: warnings and errors, or everything when `verbose`."""
    log = logging.getLogger(name)
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    log.propagate = False
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        log.addHandler(handler)
    return log


def read_wasm(path: Path) -> bytes:
    """Return the bytes of the .wasm at `path`, raising BuildError when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise BuildError(f"cannot read the wasm core {path}: {error.strerror or error}") from None

