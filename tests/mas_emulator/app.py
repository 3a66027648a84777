"""The MasEmulator class: an aiohttp server that responds like MAS 1.22."""

import asyncio
import datetime
import ipaddress
import logging
import secrets
import string
import time
from dataclasses import dataclass

from aiohttp import web

from . import ulids
from .admin import AdminApi
from .clock import NS_PER_S, Clock, datetime_to_ns, format_rfc3339, truncate_to_us
from .control import ControlApi
from .errors import json_response, method_not_allowed, not_found_page
from .faults import Fault, FaultSet, canned_response, reset_connection, send_truncated, wait_until_gone
from .oauth import ADMIN_SCOPE, DEFAULT_ACCESS_TOKEN_TTL_S, AccessToken, Client, OAuthServer
from .rfc3339 import parse_datetime_ns
from .tokens import RegistrationToken, TokenStore, generate_token_string

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/__emulator__/"
WELL_KNOWN_PATH = "/.well-known/openid-configuration"


@dataclass
class RequestRecord:
    """One request to a MAS route, as received, with the status sent back.

    `status` is None while the request is in progress and for faults that send
    no status line (hang, reset). `path` is the raw path including any prefix.
    """

    method: str
    path: str
    query: str
    authorization: str | None
    content_type: str | None
    body: str
    status: int | None = None
    fault: str | None = None
    received_at: float = 0.0

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "authorization": self.authorization,
            "content_type": self.content_type,
            "body": self.body,
            "status": self.status,
            "fault": self.fault,
            "received_at": self.received_at,
        }


def check_loopback(host: str) -> None:
    """Raise ValueError unless `host` is a loopback address or "localhost"."""
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host {host!r} is not an IP address; the emulator binds loopback addresses only") from None
    if not address.is_loopback:
        raise ValueError(f"host {host!r} is not a loopback address; the emulator binds loopback addresses only")


def _normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip()
    if not prefix or prefix == "/":
        return ""
    if not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix.rstrip("/")


def to_ns(value: object) -> int | None:
    """Convert a datetime, an RFC 3339 string or epoch seconds to epoch nanoseconds."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return datetime_to_ns(value)
    if isinstance(value, str):
        return parse_datetime_ns(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * NS_PER_S)
    raise TypeError(f"expected a datetime, an RFC 3339 string or epoch seconds, got {value!r}")


def new_client_id() -> str:
    """Return a fresh ULID-shaped client id ending in "AD", like MAS's documented examples."""
    return ulids.UlidGenerator().new(int(time.time() * 1000))[:-2] + "AD"


class MasEmulator:
    """A stand-in for a MAS 1.22 server: OAuth token endpoint and registration token admin API.

    Give `clients` as Client objects or (client_id, client_secret, admin) tuples,
    or a single `client_id`/`client_secret` (an admin client). With neither, one
    admin client with a random id and secret is created.
    """

    def __init__(
        self,
        clients: list | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        path_prefix: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        access_token_ttl_s: int = DEFAULT_ACCESS_TOKEN_TTL_S,
    ) -> None:
        check_loopback(host)

        client_list = []
        for entry in clients or []:
            client_list.append(entry if isinstance(entry, Client) else Client(*entry))
        if client_id is not None or client_secret is not None or not client_list:
            client_list.insert(
                0,
                Client(
                    client_id=client_id or new_client_id(),
                    client_secret=client_secret or secrets.token_urlsafe(24),
                    admin=True,
                ),
            )

        self.clients = client_list
        self.path_prefix = _normalise_prefix(path_prefix)
        self.host = host
        self.port = port
        self.base_url: str | None = None
        self.root_url: str | None = None

        self.clock = Clock()
        self.ulid_source = ulids.UlidGenerator()
        self.store = TokenStore()
        self.oauth = OAuthServer(client_list, self.clock, access_token_ttl_s)
        self.admin = AdminApi(self.store, self.oauth, self.clock, self.ulid_source)
        self.faults = FaultSet()
        self.requests: list[RequestRecord] = []
        self.control = ControlApi(self)

        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # Configuration shortcuts for the common single-client case.
    @property
    def client_id(self) -> str:
        return self.clients[0].client_id

    @property
    def client_secret(self) -> str:
        return self.clients[0].client_secret

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    @property
    def control_url(self) -> str:
        return f"{self.root_url}/__emulator__"

    # Lifecycle.
    async def start(self) -> str:
        """Start serving; return and set `base_url` ("http://host:port" plus the prefix)."""
        if self._runner is not None:
            raise RuntimeError("the MAS emulator is already running")

        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner

        sockets = site._server.sockets if site._server is not None else []
        self.port = sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.root_url = f"http://{host}:{self.port}"
        self.base_url = self.root_url + self.path_prefix
        logger.info("MAS emulator listening on %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; requests held by a "hang" fault are closed without a response."""
        if self._runner is None:
            return
        self._stopping.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()
        logger.info("MAS emulator on %s stopped", self.base_url)

    async def __aenter__(self) -> "MasEmulator":
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    # State for tests.
    @property
    def tokens(self) -> dict[str, RegistrationToken]:
        """Registration tokens by id; the live dict, so changes show in the API at once."""
        return self.store.by_id

    @property
    def issued_access_tokens(self) -> list[AccessToken]:
        return self.oauth.issued

    def get_token(self, token_id: str) -> RegistrationToken | None:
        return self.store.get(ulids.canonical(token_id))

    def find_by_string(self, token_string: str) -> RegistrationToken | None:
        return self.store.find_by_string(token_string)

    def add_token(
        self,
        token: str | None = None,
        usage_limit: int | None = None,
        times_used: int = 0,
        expires_at: object = None,
        revoked: object = False,
        created_at: object = None,
        last_used_at: object = None,
    ) -> str:
        """Create a registration token directly and return its id.

        Times may be datetimes, RFC 3339 strings or epoch seconds. `revoked` is a
        bool (revoked now) or a time. `created_at` also sets the time part of the
        id, so tokens created "earlier" sort earlier.
        """
        now_ns = self.clock.now_ns()
        created_ns = to_ns(created_at) if created_at is not None else now_ns
        if revoked is True:
            revoked_ns = now_ns
        elif revoked is False or revoked is None:
            revoked_ns = None
        else:
            revoked_ns = to_ns(revoked)
        last_used_ns = to_ns(last_used_at)
        if last_used_ns is None and times_used > 0:
            last_used_ns = created_ns

        while True:
            token_string = token if token is not None else generate_token_string()
            if token is not None or self.store.find_by_string(token_string) is None:
                break

        record = RegistrationToken(
            id=self.ulid_source.new(created_ns // 1_000_000),
            token=token_string,
            usage_limit=usage_limit,
            times_used=times_used,
            created_at_ns=truncate_to_us(created_ns),
            last_used_at_ns=truncate_to_us(last_used_ns),
            expires_at_ns=truncate_to_us(to_ns(expires_at)),
            revoked_at_ns=truncate_to_us(revoked_ns),
        )
        self.store.add(record)
        return record.id

    def seed_tokens(self, n: int, **kwargs) -> list[str]:
        """Create `n` tokens with the same attributes (see add_token) and random strings."""
        if n > 1 and kwargs.get("token") is not None:
            raise ValueError("seed_tokens cannot give the same token string to several tokens")
        return [self.add_token(**kwargs) for _ in range(n)]

    def use_token(self, token_id: str) -> RegistrationToken:
        """Record one registration with the token, as MAS does when a user signs up."""
        token = self.get_token(token_id)
        if token is None:
            raise KeyError(f"no registration token with id {token_id}")
        token.times_used += 1
        token.last_used_at_ns = truncate_to_us(self.clock.now_ns())
        return token

    def issue_access_token(self, client_id: str | None = None, scope: str = ADMIN_SCOPE) -> str:
        """Issue an access token without an HTTP request, as the token endpoint would."""
        client_id = client_id or self.client_id
        scopes = sorted(set(scope.split())) if scope else []
        return self.oauth.issue(client_id, scopes).token

    def revoke_access_token(self, access_token: str) -> None:
        """End the session of an access token; the admin API then returns 401 "Access token revoked"."""
        self.oauth.access_tokens[access_token].revoked = True

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def set_clock(self, when: object) -> None:
        """Set the clock to a datetime, an RFC 3339 string or epoch seconds; it keeps running."""
        self.clock.set_now(to_ns(when))

    def freeze_clock(self) -> None:
        """Stop the clock, so timestamps are exact; advance_clock() still moves it."""
        self.clock.freeze()

    def unfreeze_clock(self) -> None:
        self.clock.unfreeze()

    def now(self) -> str:
        """Return the emulator's current time in RFC 3339."""
        return format_rfc3339(self.clock.now_ns())

    def set_fault(self, kind: str, **options) -> Fault:
        """Replace the active faults with one fault; see faults.FAULT_KINDS for `kind`."""
        fault = Fault(kind=kind, **options)
        self.faults.active = [fault]
        return fault

    def add_fault(self, kind: str, **options) -> Fault:
        """Add a fault after the active ones; the first fault that matches a request applies."""
        fault = Fault(kind=kind, **options)
        self.faults.active.append(fault)
        return fault

    def clear_fault(self) -> None:
        self.faults.active.clear()

    def reset(self) -> None:
        """Forget tokens, access tokens, recorded requests and faults, and reset the clock."""
        self.store.clear()
        self.oauth.reset()
        self.requests.clear()
        self.faults.active.clear()
        self.clock.reset()

    # HTTP handling.
    def _well_known(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed("GET,HEAD")
        issuer = f"{request.scheme}://{request.host}{self.path_prefix}/"
        return json_response(
            200,
            {
                "issuer": issuer,
                "token_endpoint": f"{issuer}oauth2/token",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": ["openid", "email", ADMIN_SCOPE],
            },
        )

    async def _dispatch(self, request: web.Request, path: str, target: str, body: bytes) -> web.Response:
        if path == "/oauth2/token":
            return await self.oauth.handle_token(request, body)
        if path == WELL_KNOWN_PATH:
            return self._well_known(request)
        return await self.admin.handle(request, path, target, body)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_target = request.raw_path
        raw_path, _, query = raw_target.partition("?")

        if raw_path.startswith(CONTROL_PREFIX) or raw_path == CONTROL_PREFIX.rstrip("/"):
            return await self.control.handle(request, raw_path)

        body = await request.read()
        record = RequestRecord(
            method=request.method,
            path=raw_path,
            query=query,
            authorization=request.headers.get("Authorization"),
            content_type=request.headers.get("Content-Type"),
            body=body.decode("utf-8", errors="replace"),
            received_at=time.time(),
        )
        self.requests.append(record)

        prefix = self.path_prefix
        if prefix and raw_path != prefix and not raw_path.startswith(prefix + "/"):
            response = not_found_page(request.method, raw_target)
            record.status = response.status
            return response
        path = raw_path[len(prefix):] or "/"
        target = raw_target[len(prefix):] or "/"

        fault = self.faults.take(path, request.method)
        if fault is not None:
            record.fault = fault.kind
            return await self._apply_fault(fault, request, record, path, target, body)

        response = await self._dispatch(request, path, target, body)
        record.status = response.status
        return response

    async def _apply_fault(self, fault, request, record, path, target, body) -> web.StreamResponse:
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay_s)
            response = await self._dispatch(request, path, target, body)
            record.status = response.status
            return response

        if fault.kind in ("hang", "reset"):
            if fault.kind == "hang":
                await wait_until_gone(request, self._stopping)
            reset_connection(request)
            raise asyncio.CancelledError

        if fault.kind == "truncated":
            response = await self._dispatch(request, path, target, body)
            record.status = response.status
            await send_truncated(request, response)
            raise asyncio.CancelledError

        response = canned_response(fault, path)
        if response is None:
            response = await self._dispatch(request, path, target, body)
        record.status = response.status
        return response
