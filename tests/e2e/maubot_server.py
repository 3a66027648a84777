"""Run maubot in server mode and drive it through its management API.

The calls match what maubot 0.6.0's web UI sends (maubot/management/api/*.py):
password login at /auth/login, plugin upload as a raw zip body, clients and
instances created with PUT.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml

from .processes import ServerProcess

API_PREFIX = "/_matrix/maubot/v1"


def write_config(directory: Path, port: int, admin_name: str, admin_password: str,
                 unshared_secret: str) -> Path:
    """Write config.yaml for a loopback-only maubot with SQLite and a DEBUG log."""
    directory.mkdir(parents=True, exist_ok=True)
    plugins = directory / "plugins"
    plugins.mkdir(exist_ok=True)
    config = {
        "database": f"sqlite:{directory / 'maubot.db'}",
        "crypto_database": "default",
        "plugin_directories": {
            "upload": str(plugins),
            "load": [str(plugins)],
            "trash": str(directory / "trash"),
        },
        "plugin_databases": {"sqlite": str(plugins), "postgres": None},
        "server": {
            "hostname": "127.0.0.1",
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "unshared_secret": unshared_secret,
        },
        "homeservers": {},
        # maubot's "root" admin can never log in with a password, so the test
        # logs in as a second admin.
        "admins": {"root": "", admin_name: admin_password},
        "logging": {
            "version": 1,
            "formatters": {
                "normal": {"format": "[%(asctime)s] [%(levelname)s@%(name)s] %(message)s"},
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "normal",
                    "filename": str(directory / "maubot.log"),
                },
            },
            # DEBUG makes maubot log whole Matrix request bodies, which is
            # what the secret scan needs to see.
            "loggers": {
                "maubot": {"level": "DEBUG"},
                "mau": {"level": "DEBUG"},
                "aiohttp": {"level": "INFO"},
            },
            "root": {"level": "DEBUG", "handlers": ["file"]},
        },
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def make_process(python: Path, config_path: Path, log_path: Path) -> ServerProcess:
    return ServerProcess(
        "maubot",
        [str(python), "-m", "maubot", "-c", str(config_path)],
        log_path,
        cwd=config_path.parent,
    )


class MaubotError(RuntimeError):
    pass


class MaubotAdmin:
    """A logged-in client of maubot's management API."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.api = f"{base_url}{API_PREFIX}"
        self._headers: dict[str, str] = {}

    async def wait_until_ready(self, process: ServerProcess, timeout: float) -> None:
        """Poll /features, which needs no login, until maubot responds."""
        deadline = time.monotonic() + timeout
        while True:
            process.check_running()
            try:
                async with self.session.get(f"{self.api}/features") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"maubot at {self.api} did not respond within {timeout:.0f} s")
            await asyncio.sleep(0.2)

    async def _call(self, method: str, path: str, expected: tuple[int, ...],
                    content_type: str | None = None, **kwargs: Any) -> Any:
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        async with self.session.request(method, f"{self.api}{path}", headers=headers,
                                        **kwargs) as response:
            try:
                body = await response.json()
            except (aiohttp.ContentTypeError, ValueError):
                body = await response.text()
            if response.status not in expected:
                # maubot's error bodies contain "error" and "errcode" but not
                # the request, so no secret sent in the request leaks here.
                if isinstance(body, dict):
                    detail = f"{body.get('errcode')}: {body.get('error')}"
                    if "stacktrace" in body:
                        detail += f"\n{body['stacktrace']}"
                else:
                    detail = str(body)[:2000]
                raise MaubotError(f"{method} {API_PREFIX}{path} failed with HTTP "
                                  f"{response.status}: {detail}")
            return body

    async def login(self, username: str, password: str) -> None:
        body = await self._call("POST", "/auth/login", (200,),
                                json={"username": username, "password": password})
        self._headers = {"Authorization": f"Bearer {body['token']}"}

    async def upload_plugin(self, mbp: bytes) -> dict[str, Any]:
        """Upload an .mbp the way the web UI does and return maubot's plugin record."""
        return await self._call("POST", "/plugins/upload", (200, 201),
                                params={"allow_override": "true"}, data=mbp,
                                content_type="application/zip")

    async def create_client(self, user_id: str, homeserver: str,
                            access_token: str) -> dict[str, Any]:
        return await self._call("PUT", f"/client/{quote(user_id)}", (200, 201), json={
            "homeserver": homeserver,
            "access_token": access_token,
            "enabled": True,
            "sync": True,
            "autojoin": True,
            "online": True,
            "displayname": "disable",
            "avatar_url": "disable",
        })

    async def put_instance(self, instance_id: str, plugin_type: str, primary_user: str,
                           config_yaml: str) -> dict[str, Any]:
        """Create the instance, or replace its settings if it exists."""
        return await self._call("PUT", f"/instance/{quote(instance_id)}", (200, 201), json={
            "type": plugin_type,
            "primary_user": primary_user,
            "enabled": True,
            "started": True,
            "config": config_yaml,
        })

    async def get_instance(self, instance_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/instance/{quote(instance_id)}", (200,))
