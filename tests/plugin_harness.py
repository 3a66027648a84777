"""Helpers shared by the hardening tests: reply checks, request filters and secret checks.

The fixtures that start the plugin and the emulator are in conftest.py.
"""

from __future__ import annotations

import base64
import re
import socket
from typing import Any, Iterable, Optional

from mautrix.types import Format, MessageType

from .conftest import CLIENT_ID, CLIENT_SECRET, Harness

TOKENS_PATH = "/api/admin/v1/user-registration-tokens"
TOKEN_ENDPOINT_PATH = "/oauth2/token"

# Every path the plugin may request from MAS: the token list, one token by
# ULID (Crockford base32, 26 characters), its revoke and unrevoke actions, and
# the OAuth 2.0 token endpoint.
ALLOWED_PATH = re.compile(
    r"^(?:/api/admin/v1/user-registration-tokens(?:/[0-9A-HJKMNP-TV-Z]{26}(?:/(?:revoke|unrevoke))?)?"
    r"|/oauth2/token)$"
)


def only_reply(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the single reply after checking that it is an HTML m.notice with empty m.mentions."""
    assert len(replies) == 1, f"expected one reply, got {replies!r}"
    content = replies[0]
    assert content["msgtype"] == MessageType.NOTICE.value
    assert content["m.mentions"] == {}
    assert content["format"] == Format.HTML.value
    assert isinstance(content["formatted_body"], str)
    return content


def requests_to(emu: Any, method: Optional[str] = None, path: Optional[str] = None) -> list[Any]:
    """Return the emulator's recorded requests with this method and exact path (None matches any)."""
    return [
        record
        for record in emu.requests
        if (method is None or record.method == method) and (path is None or record.path == path)
    ]


def token_endpoint_requests(emu: Any) -> list[Any]:
    return requests_to(emu, "POST", TOKEN_ENDPOINT_PATH)


def admin_requests(emu: Any) -> list[Any]:
    return [record for record in emu.requests if record.path.startswith("/api/admin/")]


def secrets_of(emu: Any) -> list[str]:
    """Return every credential the plugin holds: the client secret, its Basic header value and all access tokens."""
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    return [CLIENT_SECRET, basic, *(issued.token for issued in emu.issued_access_tokens)]


def assert_no_secrets(secrets: Iterable[str], replies: list[dict[str, Any]], harness: Harness) -> None:
    """Check that no secret occurs in any reply body, formatted body or log record (with exception text)."""
    log_lines = harness.log.texts()
    for secret in secrets:
        for reply in replies:
            assert secret not in reply.get("body", ""), f"a secret is in the reply body: {reply['body']!r}"
            assert secret not in reply.get("formatted_body", ""), "a secret is in the reply's formatted_body"
        for line in log_lines:
            assert secret not in line, f"a secret is in the log line {line!r}"


def closed_port() -> int:
    """Return a 127.0.0.1 port that nothing listens on, so connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
