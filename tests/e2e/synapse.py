"""Run a throwaway Synapse homeserver and talk to it as its users.

Synapse listens on one loopback port with the client API (which includes the
admin API) and no federation listener. It stores everything in SQLite under the
run directory and generates its signing key on first start.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml

from .processes import ServerProcess

SERVER_NAME = "e2e.test"

# Generous limits so that a burst of test commands is never rate-limited.
_RELAXED = {"per_second": 1000, "burst_count": 1000}


def write_config(directory: Path, port: int, shared_secret: str) -> Path:
    """Write homeserver.yaml for a loopback-only, SQLite-backed Synapse."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "server_name": SERVER_NAME,
        "pid_file": str(directory / "homeserver.pid"),
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(directory / "homeserver.db")}},
        "media_store_path": str(directory / "media_store"),
        "signing_key_path": str(directory / "signing.key"),
        "registration_shared_secret": shared_secret,
        "macaroon_secret_key": secrets.token_hex(32),
        "form_secret": secrets.token_hex(32),
        "report_stats": False,
        "enable_registration": False,
        "enable_metrics": False,
        # No key servers and no federation: the homeserver never contacts
        # another host.
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "rc_message": _RELAXED,
        "rc_registration": _RELAXED,
        "rc_room_creation": _RELAXED,
        "rc_login": {"address": _RELAXED, "account": _RELAXED, "failed_attempts": _RELAXED},
        "rc_joins": {"local": _RELAXED, "remote": _RELAXED},
        "rc_joins_per_room": _RELAXED,
        "rc_invites": {"per_room": _RELAXED, "per_user": _RELAXED, "per_issuer": _RELAXED},
        "rc_admin_redaction": _RELAXED,
        "rc_profile": _RELAXED,
    }
    path = directory / "homeserver.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def make_process(python: Path, config_path: Path, log_path: Path) -> ServerProcess:
    return ServerProcess(
        "synapse",
        [str(python), "-m", "synapse.app.homeserver", "-c", str(config_path)],
        log_path,
        cwd=config_path.parent,
    )


async def wait_until_healthy(session: aiohttp.ClientSession, process: ServerProcess,
                             base_url: str, timeout: float) -> None:
    """Poll /health until Synapse returns 200, failing early if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        process.check_running()
        try:
            async with session.get(f"{base_url}/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"Synapse at {base_url} was not healthy within {timeout:.0f} s")
        await asyncio.sleep(0.2)


@dataclass
class RegisteredUser:
    user_id: str
    access_token: str = field(repr=False)
    device_id: str


async def register_user(session: aiohttp.ClientSession, base_url: str, shared_secret: str,
                        localpart: str, admin: bool = False) -> RegisteredUser:
    """Register a user through Synapse's shared-secret admin API."""
    url = f"{base_url}/_synapse/admin/v1/register"
    async with session.get(url) as response:
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"GET {url} failed with {response.status}: {body}")
        nonce = body["nonce"]

    password = secrets.token_urlsafe(24)
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    for part in (nonce, localpart, password):
        mac.update(part.encode())
        mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")

    payload = {
        "nonce": nonce,
        "username": localpart,
        "password": password,
        "admin": admin,
        "mac": mac.hexdigest(),
    }
    async with session.post(url, json=payload) as response:
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"registering {localpart} failed with {response.status}: "
                               f"{body.get('errcode')} {body.get('error')}")
    return RegisteredUser(body["user_id"], body["access_token"], body["device_id"])


class MatrixError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        errcode = body.get("errcode") if isinstance(body, dict) else None
        error = body.get("error") if isinstance(body, dict) else body
        super().__init__(f"{method} {path} failed with HTTP {status}: {errcode} {error}")
        self.status = status
        self.errcode = errcode


class MatrixUser:
    """A minimal client-server API client acting as one registered user."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str,
                 user: RegisteredUser) -> None:
        self.session = session
        self.base_url = base_url
        self.user_id = user.user_id
        self._headers = {"Authorization": f"Bearer {user.access_token}"}

    async def request(self, method: str, path: str, json: Any = None,
                      params: dict[str, str] | None = None) -> Any:
        url = f"{self.base_url}/_matrix/client/v3{path}"
        async with self.session.request(method, url, json=json, params=params,
                                        headers=self._headers) as response:
            try:
                body = await response.json()
            except (aiohttp.ContentTypeError, ValueError):
                body = await response.text()
            if response.status != 200:
                raise MatrixError(method, path, response.status, body)
            return body

    async def create_room(self, name: str, invite: list[str] = ()) -> str:
        body = await self.request("POST", "/createRoom", json={
            "name": name,
            "preset": "private_chat",
            "invite": list(invite),
        })
        return body["room_id"]

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.request("POST", f"/rooms/{quote(room_id)}/invite", json={"user_id": user_id})

    async def kick(self, room_id: str, user_id: str, reason: str) -> None:
        await self.request("POST", f"/rooms/{quote(room_id)}/kick",
                           json={"user_id": user_id, "reason": reason})

    async def join(self, room_id: str) -> None:
        await self.request("POST", f"/join/{quote(room_id)}", json={})

    async def membership(self, room_id: str, user_id: str) -> str | None:
        """Return the member's membership in the room, or None if it has none."""
        try:
            body = await self.request(
                "GET", f"/rooms/{quote(room_id)}/state/m.room.member/{quote(user_id)}")
        except MatrixError as error:
            if error.status == 404:
                return None
            raise
        return body.get("membership")

    async def send_text(self, room_id: str, text: str) -> str:
        """Send an m.text message and return its event ID."""
        transaction_id = uuid.uuid4().hex
        body = await self.request(
            "PUT", f"/rooms/{quote(room_id)}/send/m.room.message/{transaction_id}",
            json={"msgtype": "m.text", "body": text})
        return body["event_id"]

    async def events_after(self, room_id: str, event_id: str) -> list[dict[str, Any]]:
        """Return the room's timeline events sent after `event_id`, oldest first.

        Pages backwards from the newest event until `event_id` is found.
        """
        newer: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params = {"dir": "b", "limit": "100"}
            if token:
                params["from"] = token
            page = await self.request("GET", f"/rooms/{quote(room_id)}/messages", params=params)
            for event in page.get("chunk", []):
                if event.get("event_id") == event_id:
                    newer.reverse()
                    return newer
                newer.append(event)
            token = page.get("end")
            if not token or not page.get("chunk"):
                raise LookupError(f"event {event_id} not found in room {room_id}")

    async def all_events(self, room_id: str) -> list[dict[str, Any]]:
        """Return every event of the room that this user can see, oldest first."""
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params = {"dir": "b", "limit": "100"}
            if token:
                params["from"] = token
            page = await self.request("GET", f"/rooms/{quote(room_id)}/messages", params=params)
            events.extend(page.get("chunk", []))
            token = page.get("end")
            if not token or not page.get("chunk"):
                events.reverse()
                return events
