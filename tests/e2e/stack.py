"""Bring up Synapse, maubot and the MAS emulator with the plugin installed.

`Stack.start()` runs each set-up step under a name. `Stack.step()` wraps a
step so that a failure names it and shows the end of every server log, with
known secrets replaced by "<redacted>".
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from . import emulator, maubot_server, synapse
from .processes import Redactor, ServerProcess, free_port, log_tails

REPO_ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = REPO_ROOT / ".e2e"
# Each run gets its own folder under .e2e/runs/, because developers sharing a
# checkout may run the test at the same time.
RUNS_DIR = E2E_DIR / "runs"
# Run folders older than this are deleted when a new run starts.
KEEP_RUNS_SECONDS = 3600
INSTALL_SCRIPT = Path(__file__).with_name("install.sh")
SYNAPSE_PYTHON = E2E_DIR / "venv-synapse" / "bin" / "python"


@dataclass(frozen=True)
class MaubotEnvironment:
    """A maubot venv from install.sh and the wasm engine the plugin should pick in it."""

    name: str
    python: Path
    has_wasmtime: bool
    # The engine and library names as bot.py logs them at start.
    engine: str
    engine_library: str


MAUBOT_ENVIRONMENTS = [
    MaubotEnvironment("wasmtime", E2E_DIR / "venv-maubot" / "bin" / "python",
                      has_wasmtime=True, engine="wasmtime", engine_library="wasmtime"),
    MaubotEnvironment("no-wasmtime", E2E_DIR / "venv-maubot-nowasm" / "bin" / "python",
                      has_wasmtime=False, engine="fallback", engine_library="pwasm"),
]

# Files and folders whose changes make dist/*.mbp stale.
PLUGIN_SOURCES = ["maubot.yaml", "base-config.yaml", "Cargo.toml", "Cargo.lock",
                  "crate", "python-shim/mas_token_bot"]

INSTANCE_ID = "e2e-token-bot"
MAS_CLIENT_ID = "01J0E2ETESTCL1ENT0000000000"


class StepFailed(AssertionError):
    pass


def install_servers(timeout: float = 1200) -> None:
    """Run tests/e2e/install.sh, which skips venvs whose stamp already matches."""
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(
            f"tests/e2e/install.sh failed with exit code {result.returncode}:\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}")


def plugin_meta() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "maubot.yaml").read_text(encoding="utf-8"))


def _newest_mtime(paths: list[Path]) -> float:
    newest = 0.0
    for path in paths:
        if path.is_dir():
            for child in path.rglob("*"):
                if child.is_file() and "__pycache__" not in child.parts:
                    newest = max(newest, child.stat().st_mtime)
        elif path.is_file():
            newest = max(newest, path.stat().st_mtime)
    return newest


def ensure_plugin_built(timeout: float = 1800) -> Path:
    """Return dist/<id>-v<version>.mbp, running `./worker build` if it is missing or stale.

    The environment variable E2E_MBP names another .mbp to test as it is, with
    no build and no staleness check.
    """
    override = os.environ.get("E2E_MBP")
    if override:
        path = Path(override).resolve()
        if not path.is_file():
            raise RuntimeError(f"E2E_MBP is set to {override!r}, which is not a file")
        return path

    meta = plugin_meta()
    mbp = REPO_ROOT / "dist" / f"{meta['id']}-v{meta['version']}.mbp"
    sources_mtime = _newest_mtime([REPO_ROOT / name for name in PLUGIN_SOURCES])
    if mbp.is_file() and mbp.stat().st_mtime >= sources_mtime:
        return mbp

    reason = "is missing" if not mbp.is_file() else "is older than its sources"
    result = subprocess.run(["./worker", "build"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(
            f"{mbp.relative_to(REPO_ROOT)} {reason} and `./worker build` failed with exit code "
            f"{result.returncode}; run `./worker build` from the repository root to see why:\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    if not mbp.is_file():
        raise RuntimeError(f"`./worker build` succeeded but did not write "
                           f"{mbp.relative_to(REPO_ROOT)}")
    return mbp


def new_run_dir() -> Path:
    """Create .e2e/runs/<time>-<pid>/ and delete run folders older than an hour."""
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - KEEP_RUNS_SECONDS
    for old in RUNS_DIR.iterdir():
        if old.is_dir() and old.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)
    run_dir = RUNS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run_dir.mkdir()
    return run_dir


class Step:
    """Named test step with a time limit, timed into stack.timings.

    A failure inside it is raised again as StepFailed, whose message names the
    step and shows the end of every server log.
    """

    def __init__(self, stack: Stack, name: str, timeout: float) -> None:
        self.stack = stack
        self.name = name
        self.timeout = timeout
        self._timeout = asyncio.timeout(timeout)
        self._started = 0.0

    async def __aenter__(self) -> None:
        self._started = time.monotonic()
        await self._timeout.__aenter__()

    async def __aexit__(self, exc_type: Any, error: BaseException | None, traceback: Any) -> bool:
        # pytest leaves this frame out of failure reports, because the
        # StepFailed message already names the step and the error.
        __tracebackhide__ = True
        self.stack.timings[self.name] = time.monotonic() - self._started
        try:
            await self._timeout.__aexit__(exc_type, error, traceback)
        except TimeoutError:
            detail = f"timed out after {self.timeout:.0f} s"
        else:
            if error is None or not isinstance(error, Exception):
                return False
            detail = f"{type(error).__name__}: {error}"
        redactor = self.stack.redactor
        message = redactor.redact(f"step '{self.name}' failed: {detail}")
        raise StepFailed(f"{message}\n\n{log_tails(self.stack.servers, redactor)}") from None


@dataclass
class Rooms:
    # Alice's room with the bot, mallory and bob. It is in no room whitelist.
    general: str = ""
    # The room in the plugin's room_whitelist, with alice, bob and the bot.
    ops: str = ""


@dataclass
class Stack:
    session: aiohttp.ClientSession
    maubot_env: MaubotEnvironment = MAUBOT_ENVIRONMENTS[0]
    run_dir: Path = field(default_factory=new_run_dir)
    redactor: Redactor = field(default_factory=Redactor)
    servers: list[ServerProcess] = field(default_factory=list)
    mas_client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    synapse_url: str = ""
    maubot_url: str = ""
    emulator_url: str = ""
    users: dict[str, synapse.RegisteredUser] = field(default_factory=dict)
    clients: dict[str, synapse.MatrixUser] = field(default_factory=dict)
    rooms: Rooms = field(default_factory=Rooms)
    plugin_id: str = ""
    maubot: maubot_server.MaubotAdmin | None = None
    control: emulator.EmulatorControl | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # The token that the first test generated, as the emulator stores it.
    # Later tests on the same stack reuse it.
    generated: dict[str, Any] = field(default_factory=dict)

    def step(self, name: str, timeout: float = 60) -> Step:
        """Return a context manager that runs one named step with a time limit."""
        return Step(self, name, timeout)

    def __repr__(self) -> str:
        # The default dataclass repr would show the secrets that pytest must
        # never print.
        return f"Stack(maubot_env={self.maubot_env.name!r}, run_dir={str(self.run_dir)!r})"

    def server(self, name: str) -> ServerProcess:
        for server in self.servers:
            if server.name == name:
                return server
        raise KeyError(name)

    async def start(self, mbp: Path) -> None:
        """Start the servers, register users, install the plugin and create the rooms."""
        self.plugin_id = plugin_meta()["id"]
        self.redactor.add(self.mas_client_secret)

        async with self.step("start Synapse, maubot and the MAS emulator", timeout=120):
            await self._start_servers()

        async with self.step("register users through the shared-secret admin API"):
            for localpart in ("bot", "alice", "mallory", "bob"):
                user = await synapse.register_user(self.session, self.synapse_url,
                                                   self._synapse_shared_secret, localpart)
                self.redactor.add(user.access_token)
                self.users[localpart] = user
                self.clients[localpart] = synapse.MatrixUser(self.session, self.synapse_url, user)

        async with self.step("log in to maubot and upload the plugin"):
            self.maubot = maubot_server.MaubotAdmin(self.session, self.maubot_url)
            await self.maubot.login(self._maubot_admin, self._maubot_password)
            plugin = await self.maubot.upload_plugin(mbp.read_bytes())
            if plugin.get("id") != self.plugin_id:
                raise AssertionError(f"maubot loaded plugin {plugin.get('id')!r}, "
                                     f"expected {self.plugin_id!r}")

        async with self.step("create the maubot client for the bot account"):
            bot = self.users["bot"]
            client = await self.maubot.create_client(bot.user_id, self.synapse_url,
                                                     bot.access_token)
            if not client.get("started"):
                raise AssertionError(f"maubot created the client but did not start it: "
                                     f"started={client.get('started')}")

        async with self.step("create rooms and wait for the bot to join them", timeout=90):
            await self._create_rooms()

        async with self.step("create the plugin instance"):
            instance = await self.maubot.put_instance(INSTANCE_ID, self.plugin_id,
                                                      self.users["bot"].user_id,
                                                      self.instance_config_yaml())
            if not instance.get("started"):
                raise AssertionError(f"maubot created instance {INSTANCE_ID} but did not start "
                                     f"it: started={instance.get('started')}")

    async def _start_servers(self) -> None:
        for python in (SYNAPSE_PYTHON, self.maubot_env.python):
            if not python.exists():
                raise RuntimeError(f"{python} is missing; run tests/e2e/install.sh")

        self._synapse_shared_secret = secrets.token_urlsafe(32)
        self._maubot_admin = "e2e-admin"
        self._maubot_password = secrets.token_urlsafe(24)
        unshared_secret = secrets.token_urlsafe(48)
        self.redactor.add(self._synapse_shared_secret, self._maubot_password, unshared_secret)

        synapse_port = free_port()
        synapse_dir = self.run_dir / "synapse"
        synapse_config = synapse.write_config(synapse_dir, synapse_port,
                                              self._synapse_shared_secret)
        synapse_process = synapse.make_process(SYNAPSE_PYTHON, synapse_config,
                                               synapse_dir / "synapse.log")
        self.synapse_url = f"http://127.0.0.1:{synapse_port}"

        maubot_port = free_port()
        maubot_dir = self.run_dir / "maubot"
        maubot_config = maubot_server.write_config(maubot_dir, maubot_port, self._maubot_admin,
                                                   self._maubot_password, unshared_secret)
        maubot_process = maubot_server.make_process(self.maubot_env.python, maubot_config,
                                                    maubot_dir / "maubot.stdout.log")
        self.maubot_url = f"http://127.0.0.1:{maubot_port}"

        emulator_process = emulator.make_process(REPO_ROOT, MAS_CLIENT_ID, self.mas_client_secret,
                                                 self.run_dir / "mas-emulator.log")

        # maubot writes its DEBUG log to a file of its own. Listing that file
        # as a process with no command puts its tail in failure reports too.
        maubot_log = ServerProcess("maubot log", [], maubot_dir / "maubot.log", maubot_dir)

        self.servers.extend([synapse_process, maubot_process, maubot_log, emulator_process])
        for process in (synapse_process, maubot_process, emulator_process):
            process.start()

        maubot_probe = maubot_server.MaubotAdmin(self.session, self.maubot_url)
        self.emulator_url, _, _ = await asyncio.gather(
            emulator.wait_for_base_url(emulator_process, timeout=60),
            synapse.wait_until_healthy(self.session, synapse_process, self.synapse_url,
                                       timeout=110),
            maubot_probe.wait_until_ready(maubot_process, timeout=110),
        )
        self.control = emulator.EmulatorControl(self.session, self.emulator_url)

    async def _create_rooms(self) -> None:
        alice = self.clients["alice"]
        bot_id = self.users["bot"].user_id
        self.rooms.general = await alice.create_room(
            "e2e general", invite=[self.users["mallory"].user_id, self.users["bob"].user_id])
        self.rooms.ops = await alice.create_room("e2e ops", invite=[self.users["bob"].user_id])
        for localpart, room_id in (("mallory", self.rooms.general), ("bob", self.rooms.general),
                                   ("bob", self.rooms.ops)):
            await self.clients[localpart].join(room_id)
        await asyncio.gather(self._invite_until_joined(self.rooms.general, bot_id),
                             self._invite_until_joined(self.rooms.ops, bot_id))

    async def _invite_until_joined(self, room_id: str, user_id: str) -> None:
        # maubot 0.6.0 drops every event of the bot's first sync, including
        # an invite, and that sync may finish after the first invite. An
        # identical repeated invite from the same sender creates no new event
        # in Synapse 1.163 (handlers/room_member.py), so withdraw the invite
        # with a kick and invite again until the bot has joined.
        alice = self.clients["alice"]
        attempt = 0
        while True:
            attempt += 1
            if await alice.membership(room_id, user_id) == "invite":
                await alice.kick(room_id, user_id, "re-inviting: the bot missed the invite")
            await alice.invite(room_id, user_id)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if await alice.membership(room_id, user_id) == "join":
                    return
                await asyncio.sleep(0.2)
            if attempt >= 10:
                raise TimeoutError(f"{user_id} did not join {room_id} after {attempt} invites")

    def instance_config(self) -> dict[str, Any]:
        return {
            "admin_api": f"{self.emulator_url}/api/admin",
            "token_url": f"{self.emulator_url}/oauth2/token",
            "client_id": MAS_CLIENT_ID,
            "client_secret": self.mas_client_secret,
            "token_scope": "urn:mas:admin",
            "whitelist": [self.users["alice"].user_id],
            "room_whitelist": [self.rooms.ops],
            "base_command": "token",
            "default_uses_allowed": 1,
            "default_expiry_time": 604800,
            "http_timeout": 10,
        }

    def instance_config_yaml(self) -> str:
        return yaml.safe_dump(self.instance_config(), sort_keys=False)

    def stop(self) -> None:
        """Stop every server that was started, in reverse order."""
        for server in reversed(self.servers):
            if server.argv:
                server.stop()
