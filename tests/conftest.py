"""Fixtures for the Python tests: the built plugin archive, the MAS emulator and a running plugin."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import aiohttp
import pytest
import pytest_asyncio
from maubot.loader import PluginMeta
from maubot.standalone.loader import FileSystemLoader
from maubot.testing import TestBot
from mautrix.types import EventType, MessageEvent, MessageType, TextMessageEventContent
from mautrix.util.config import RecursiveDict
from mautrix.util.logging import TraceLogger
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from mas_token_bot import MasTokenBot
from mas_token_bot import engine as engine_module
from mas_token_bot.config import Config

ROOT = Path(__file__).resolve().parent.parent
WASM_NAME = "mas_token_core.wasm"

CLIENT_ID = "01JAYQ5R6M3T8V2N4K7W9X1Z0B"
CLIENT_SECRET = "test-client-secret-7f3a9c"
ADMIN = "@admin:example.org"
OUTSIDER = "@mallory:example.org"
OPS_ROOM = "!ops:example.org"
OTHER_ROOM = "!lobby:example.org"
BOT_MXID = "@tokenbot:example.org"


def engines_under_test() -> list[str]:
    """Return the engines that engine and plugin tests run on: ENGINE=wasmtime|fallback, or both."""
    chosen = os.environ.get("ENGINE", "").strip()
    if not chosen:
        return [engine_module.ENGINE_WASMTIME, engine_module.ENGINE_FALLBACK]
    known = (engine_module.ENGINE_WASMTIME, engine_module.ENGINE_FALLBACK)
    if chosen not in known:
        raise pytest.UsageError(f"ENGINE={chosen!r} is not an engine, expected one of {', '.join(known)}")
    return [chosen]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that runs the built core (directly or through the plugin)
    # runs once per engine. A test marked single_engine selects the engine
    # itself and runs once, on the first engine under test.
    if "built_plugin" not in metafunc.fixturenames:
        return
    engines = engines_under_test()
    if metafunc.definition.get_closest_marker("single_engine") is not None:
        engines = engines[:1]
    metafunc.parametrize("wasm_engine", engines, indirect=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "single_engine: run once, on the first engine under test")


@pytest.fixture(autouse=True)
def wasm_engine(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Force the engine this test is parametrized with, or leave the engine alone for other tests."""
    name = getattr(request, "param", None)
    if name is None:
        yield None
        return
    engine_module.force_engine(name)
    try:
        yield name
    finally:
        engine_module.force_engine(None)


@dataclass(frozen=True)
class BuiltPlugin:
    """The .mbp written by tools/build.sh and the .wasm inside it."""

    mbp: Path
    wasm: bytes


def _read_meta() -> PluginMeta:
    return PluginMeta.deserialize(YAML().load((ROOT / "maubot.yaml").read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def built_plugin() -> BuiltPlugin:
    """Run `./worker build` once per test session and return the archive it wrote.

    With MAS_TOKEN_BOT_MBP set to the path of an archive, use that archive and
    build nothing, for example to test a build made from another checkout.
    """
    prebuilt = os.environ.get("MAS_TOKEN_BOT_MBP")
    if prebuilt:
        with zipfile.ZipFile(prebuilt) as archive:
            return BuiltPlugin(mbp=Path(prebuilt), wasm=archive.read(WASM_NAME))

    result = subprocess.run(
        [str(ROOT / "worker"), "build"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        pytest.fail(f"./worker build failed with exit status {result.returncode}:\n{result.stdout}\n{result.stderr}")

    meta = _read_meta()
    mbp = ROOT / "dist" / f"{meta.id}-v{meta.version}.mbp"
    with zipfile.ZipFile(mbp) as archive:
        wasm = archive.read(WASM_NAME)
    return BuiltPlugin(mbp=mbp, wasm=wasm)


@pytest.fixture
def plugin_dir(tmp_path: Path, built_plugin: BuiltPlugin) -> Path:
    """Return a directory laid out like the archive, for maubot's FileSystemLoader."""
    with zipfile.ZipFile(built_plugin.mbp) as archive:
        archive.extractall(tmp_path / "plugin")
    return tmp_path / "plugin"


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[Any]:
    """Start a MAS emulator on 127.0.0.1 that accepts the test client's credentials."""
    from tests.mas_emulator import MasEmulator

    emu = MasEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


def plugin_config(emu: Any, **overrides: Any) -> dict[str, Any]:
    """Return an instance config that points the plugin at the emulator."""
    config: dict[str, Any] = {
        "admin_api": f"{emu.base_url}/api/admin",
        "token_url": f"{emu.base_url}/oauth2/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "whitelist": [ADMIN],
        "room_whitelist": [OPS_ROOM],
        "http_timeout": 5,
    }
    config.update(overrides)
    return config


class LogCapture(logging.Handler):
    """Keep every record the plugin logs, with its message and exception text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> list[str]:
        formatter = logging.Formatter()
        return [formatter.format(record) for record in self.records]

    def at_level(self, level: int) -> list[str]:
        return [record.getMessage() for record in self.records if record.levelno == level]


@dataclass
class Harness:
    """A started plugin with a fake Matrix client, its config and its log."""

    plugin: MasTokenBot
    bot: TestBot
    config: dict[str, Any]
    log: LogCapture
    http: aiohttp.ClientSession
    sent: list[Any] = field(default_factory=list)

    async def send(self, body: str, sender: str = ADMIN, room_id: str = OPS_ROOM,
                   msgtype: MessageType = MessageType.TEXT) -> list[dict[str, Any]]:
        """Deliver one message and return the serialised contents of the replies it caused."""
        before = len(self.bot.responded)
        await self.bot.send(body, room_id=room_id, sender=sender, msg_type=msgtype)
        return self.replies_since(before)

    async def dispatch(self, content: TextMessageEventContent, sender: str = ADMIN,
                       room_id: str = OPS_ROOM) -> list[dict[str, Any]]:
        """Deliver a message with prepared content (an edit, for example)."""
        before = len(self.bot.responded)
        event = MessageEvent(
            type=EventType.ROOM_MESSAGE,
            room_id=room_id,
            event_id="$test",
            sender=sender,
            timestamp=1,
            content=content,
        )
        await self.bot.dispatch(EventType.ROOM_MESSAGE, event)
        return self.replies_since(before)

    def replies_since(self, index: int) -> list[dict[str, Any]]:
        return [event.content.serialize() for event in self.bot.responded[index:]]

    async def reconfigure(self, **changes: Any) -> None:
        """Change the instance config the way maubot's web UI does, then notify the plugin."""
        self.config.update(changes)
        await self.plugin.on_external_config_update()

    def set_clock(self, clock: Callable[[], int]) -> None:
        self.plugin.runner.clock = clock

    async def stop(self) -> None:
        await self.plugin.internal_stop()
        # TestBot's Matrix API object opens its own aiohttp session.
        await self.bot.client.api.session.close()


def _load_base_config() -> RecursiveDict[CommentedMap]:
    # A fresh copy each time: BaseConfig.update() writes into the base it gets.
    data = YAML().load((ROOT / "base-config.yaml").read_text(encoding="utf-8"))
    return RecursiveDict(data, CommentedMap)


async def start_plugin(plugin_dir: Path, config: dict[str, Any], http: aiohttp.ClientSession,
                       check_connection: bool = False) -> Harness:
    """Build and start a MasTokenBot the way maubot's PluginInstance.start does.

    The start-up MAS connection check is off unless `check_connection` is set,
    so that tests count MAS requests from zero.
    """
    bot = TestBot(mxid=BOT_MXID)
    log = TraceLogger(f"test.plugin.{id(config)}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    capture = LogCapture()
    log.addHandler(capture)

    yaml = YAML()

    def load() -> CommentedMap:
        # maubot keeps the instance config as YAML text and parses it on each load.
        buffer = io.StringIO()
        yaml.dump(dict(config), buffer)
        return yaml.load(buffer.getvalue())

    plugin_config_object = Config(load=load, load_base=_load_base_config, save=lambda data: None)
    meta = _read_meta()
    plugin = MasTokenBot(
        client=bot.client,
        loop=asyncio.get_running_loop(),
        http=http,
        instance_id="tests",
        log=log,
        config=plugin_config_object,
        database=None,
        webapp=None,
        webapp_url=None,
        loader=FileSystemLoader(str(plugin_dir), meta),
    )
    plugin.check_connection_on_configure = check_connection
    await plugin.internal_start()
    return Harness(plugin=plugin, bot=bot, config=config, log=capture, http=http)


@pytest_asyncio.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture
async def harness(plugin_dir: Path, emulator: Any, http_session: aiohttp.ClientSession) -> AsyncIterator[Harness]:
    """A plugin configured for the emulator, with an admin in the whitelist and an ops room."""
    running = await start_plugin(plugin_dir, plugin_config(emulator), http_session)
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture
async def make_plugin(plugin_dir: Path, emulator: Any, http_session: aiohttp.ClientSession) -> AsyncIterator[Callable[..., Any]]:
    """Return a function that starts a plugin with a given config and stops it after the test."""
    started: list[Harness] = []

    async def make(config: dict[str, Any], check_connection: bool = False) -> Harness:
        running = await start_plugin(plugin_dir, config, http_session, check_connection)
        started.append(running)
        return running

    yield make
    for running in started:
        await running.stop()

