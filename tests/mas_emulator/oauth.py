"""OAuth 2.0 side of the emulator: clients, access tokens and POST /oauth2/token.

Behaviour follows MAS 1.22: client_secret_basic clients, the client
credentials grant, MAS's default authorization-grant policy for scopes, and
access tokens of the form mat_<30 alphanumerics>_<base62 CRC-32>.
"""

import base64
import binascii
import secrets
import string
import urllib.parse
import zlib
from dataclasses import dataclass, field

from aiohttp import web

from .clock import NS_PER_S, Clock, format_rfc3339
from .errors import json_response, method_not_allowed
from .jsonbody import rust_debug_str

ADMIN_SCOPE = "urn:mas:admin"
DEFAULT_ACCESS_TOKEN_TTL_S = 300
_ALPHANUMERIC = string.ascii_letters + string.digits
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase

_ERROR_DESCRIPTIONS = {
    "invalid_request": (
        "The request is missing a required parameter, includes an invalid parameter value, "
        "includes a parameter more than once, or is otherwise malformed."
    ),
    "invalid_client": "Client authentication failed.",
    "invalid_grant": "The provided access grant is invalid, expired, or revoked.",
    "unsupported_grant_type": "The authorization grant type is not supported by the authorization server.",
}

# Prefixes MAS recognises in TokenType::check, and whether the type is an OAuth access token.
_TOKEN_PREFIXES = {"mat": True, "mar": False, "mct": False, "mcr": False, "syt": False, "syr": False}


@dataclass(frozen=True)
class Client:
    """A static OAuth client from the MAS configuration.

    `admin` means the client is listed in the policy data `admin_clients`, so it
    may obtain urn:mas:admin with the client credentials grant.
    """

    client_id: str
    client_secret: str = field(repr=False)
    admin: bool = True
    auth_method: str = "client_secret_basic"


@dataclass
class AccessToken:
    token: str
    client_id: str
    scope: tuple[str, ...]
    issued_at_ns: int
    expires_at_ns: int
    revoked: bool = False

    def to_dict(self) -> dict:
        return {
            "access_token": self.token,
            "client_id": self.client_id,
            "scope": " ".join(self.scope),
            "issued_at": format_rfc3339(self.issued_at_ns),
            "expires_at": format_rfc3339(self.expires_at_ns),
            "revoked": self.revoked,
        }


def base62_crc(text: str) -> str:
    """Return MAS's checksum: CRC-32 (ISO-HDLC) in base62, least significant digit first,
    left-padded with "0" to six characters."""
    value = zlib.crc32(text.encode("utf-8"))
    digits = []
    while value > 0:
        digits.append(_BASE62[value % 62])
        value //= 62
    return "".join(digits).rjust(6, "0")


def generate_access_token(prefix: str = "mat") -> str:
    random_part = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(30))
    base = f"{prefix}_{random_part}"
    return f"{base}_{base62_crc(base)}"


def check_token_format(token: str) -> tuple[bool | None, str | None]:
    """Classify a bearer token like MAS's TokenType::check.

    Return (is_access_token, None) for a well-formed token of a known type, or
    (None, reason) with MAS's TokenFormatError text when the format is wrong.
    """
    if token.startswith("syt_") or token.startswith("syr_"):
        return False, None

    parts = token.split("_")
    if len(parts) != 3:
        return None, "invalid token format"
    prefix, random_part, crc = parts
    if len(prefix.encode()) != 3 or len(random_part.encode()) != 30 or len(crc.encode()) != 6:
        return None, "invalid token format"

    if prefix not in _TOKEN_PREFIXES or prefix in ("syt", "syr"):
        return None, f"unknown token prefix {rust_debug_str(prefix)}"

    expected = base62_crc(f"{prefix}_{random_part}")
    if crc != expected:
        return None, f"invalid crc {rust_debug_str(crc)}, expected {rust_debug_str(expected)}"

    return _TOKEN_PREFIXES[prefix], None


def _valid_scope_token(token: str) -> bool:
    # RFC 6749 NQCHAR: %x21 / %x23-5B / %x5D-7E
    return bool(token) and all(
        char == "\x21" or "\x23" <= char <= "\x5b" or "\x5d" <= char <= "\x7e" for char in token
    )


def policy_violations(scopes: list[str], client: Client) -> list[str]:
    """Evaluate MAS's default authorization-grant policy for a client credentials grant.

    No user is present, so only openid, email, urn:mas:graphql:* and, for an
    admin client, urn:mas:admin are allowed.
    """
    allowed = {"openid", "email", "urn:mas:graphql:*"}
    if client.admin:
        allowed.add(ADMIN_SCOPE)

    messages = {f"scope '{scope}' not allowed" for scope in scopes if scope not in allowed}

    unstable_device = [s for s in scopes if s.startswith("urn:matrix:org.matrix.msc2967.client:device:")]
    stable_device = [s for s in scopes if s.startswith("urn:matrix:client:device:")]
    if len(unstable_device) > 1 or len(stable_device) > 1:
        messages.add("only one device scope is allowed at a time")
    has_api = any(
        s.startswith("urn:matrix:client:api:") or s.startswith("urn:matrix:org.matrix.msc2967.client:api:")
        for s in scopes
    )
    if (unstable_device or stable_device) and not has_api:
        messages.add("device scopes are only allowed when the client-server API scope is requested")
    uses_unstable = any(s.startswith("urn:matrix:org.matrix.msc2967.client:") for s in scopes)
    uses_stable = any(s.startswith("urn:matrix:client:") for s in scopes)
    if uses_unstable and uses_stable:
        messages.add("request cannot mix unstable and stable scopes")

    # NOTE: MAS joins the policy's violation set in the order its Rego engine
    # returns it; only single violations were observed, so sorted order is a guess.
    return sorted(messages)


def _oauth_error(status: int, error: str, description: str | None = None) -> web.Response:
    payload = {"error": error, "error_description": description or _ERROR_DESCRIPTIONS[error]}
    return json_response(status, payload)


def _decode_basic(header: str) -> tuple[str, str] | None:
    encoded = header[6:].lstrip(" ")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if ":" not in decoded:
        return None
    client_id, client_secret = decoded.split(":", 1)
    return client_id, client_secret


def _is_form(content_type: str | None) -> bool:
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


class OAuthServer:
    """Clients, issued access tokens and the token endpoint handler."""

    def __init__(self, clients: list[Client], clock: Clock, access_token_ttl_s: int) -> None:
        self.clients = {client.client_id: client for client in clients}
        self.clock = clock
        self.access_token_ttl_s = access_token_ttl_s
        self.access_tokens: dict[str, AccessToken] = {}
        self.issued: list[AccessToken] = []

    def reset(self) -> None:
        self.access_tokens.clear()
        self.issued.clear()

    def issue(self, client_id: str, scopes: list[str]) -> AccessToken:
        now = self.clock.now_ns()
        record = AccessToken(
            token=generate_access_token(),
            client_id=client_id,
            scope=tuple(scopes),
            issued_at_ns=now,
            expires_at_ns=now + self.access_token_ttl_s * NS_PER_S,
        )
        self.access_tokens[record.token] = record
        self.issued.append(record)
        return record

    def _authenticate(self, credentials: tuple[str, str, str]) -> Client | None:
        """Return the client when (method, id, secret) authenticates it, else None."""
        method, client_id, client_secret = credentials
        client = self.clients.get(client_id)
        if client is None and method == "client_secret_basic":
            client = self.clients.get(urllib.parse.unquote_plus(client_id))
        if client is None or client.auth_method != method:
            return None

        # MAS compares the Basic credentials as sent. RFC 6749 asks clients to
        # form-encode them first, so the decoded form is accepted as well.
        if secrets.compare_digest(client_secret.encode(), client.client_secret.encode()):
            return client
        if method == "client_secret_basic":
            decoded = urllib.parse.unquote_plus(client_secret)
            if secrets.compare_digest(decoded.encode(), client.client_secret.encode()):
                return client
        return None

    async def handle_token(self, request: web.Request, body: bytes) -> web.Response:
        if request.method != "POST":
            return method_not_allowed("POST")

        basic = None
        bearer = False
        header = request.headers.get("Authorization")
        if header is not None:
            if header[:6].lower() == "basic ":
                basic = _decode_basic(header)
                if basic is None:
                    return _oauth_error(400, "invalid_request", "Invalid Authorization header")
            elif header[:7].lower() == "bearer ":
                bearer = True
            else:
                return _oauth_error(400, "invalid_request", "Invalid Authorization header")

        form: dict[str, str] | None = None
        if _is_form(request.headers.get("Content-Type")):
            try:
                pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError:
                return _oauth_error(400, "invalid_request", "Failed to deserialize form: invalid UTF-8")
            form = {}
            for key, value in pairs:
                form.setdefault(key, value)
            if "grant_type" not in form:
                return _oauth_error(400, "invalid_request", "Failed to deserialize form: missing field `grant_type`")

            required = {
                "authorization_code": "code",
                "refresh_token": "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code": "device_code",
            }.get(form["grant_type"])
            if required is not None and required not in form:
                return _oauth_error(400, "invalid_request", f"Failed to deserialize form: missing field `{required}`")
            if form["grant_type"] == "client_credentials" and "scope" in form:
                if not all(_valid_scope_token(token) for token in form["scope"].split(" ")):
                    return _oauth_error(400, "invalid_request", "Failed to deserialize form: Invalid scope format")

        form_fields = form or {}
        form_id = form_fields.get("client_id")
        form_secret = form_fields.get("client_secret")
        has_assertion = "client_assertion" in form_fields or "client_assertion_type" in form_fields

        if basic is not None and form_secret is None and not has_assertion:
            if form_id is not None and form_id != basic[0]:
                description = f"client_id in form ({form_id!r}) does not match credential ({basic[0]!r})"
                return _oauth_error(400, "invalid_grant", description.replace("'", '"'))
            credentials = ("client_secret_basic", basic[0], basic[1])
        elif basic is None and not bearer and form_id is not None and not has_assertion:
            if form_secret is not None:
                credentials = ("client_secret_post", form_id, form_secret)
            else:
                credentials = ("none", form_id, "")
        elif bearer and form_id is None and form_secret is None and not has_assertion:
            return _oauth_error(401, "invalid_client")
        elif basic is None and not bearer and form_id is None and form_secret is None and not has_assertion:
            return _oauth_error(400, "invalid_request", "No credentials were presented")
        else:
            # NOTE: MAS also supports JWT client assertions; the emulator treats
            # them as an invalid request.
            return _oauth_error(400, "invalid_request")

        client = self._authenticate(credentials)
        if client is None:
            return _oauth_error(401, "invalid_client")

        if form is None:
            return _oauth_error(400, "invalid_request")

        grant_type = form["grant_type"]
        if grant_type in ("authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"):
            return _oauth_error(400, "invalid_grant")
        if grant_type != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type")

        scopes = sorted(set(form["scope"].split(" "))) if "scope" in form else []
        violations = policy_violations(scopes, client)
        if violations:
            return _oauth_error(403, "invalid_scope", ", ".join(violations))

        record = self.issue(client.client_id, scopes)
        payload = {"access_token": record.token, "token_type": "Bearer", "expires_in": self.access_token_ttl_s}
        if scopes:
            payload["scope"] = " ".join(scopes)
        return json_response(200, payload, headers={"cache-control": "no-store", "pragma": "no-cache"})

    def authorize_admin(self, header: str | None) -> tuple[int, list[str]] | None:
        """Check an admin API Authorization header; return (status, titles) on failure."""
        if header is None:
            return 400, ["Missing authorization header"]
        if len(header) <= 7 or header[6] != " " or header[:6].lower() != "bearer":
            return 400, ["Invalid authorization header"]
        if not header.isascii() or any(ord(char) < 0x20 and char != "\t" for char in header):
            return 400, ["Invalid authorization header"]
        token = header[7:].lstrip()

        is_access_token, reason = check_token_format(token)
        if reason is not None:
            return 401, ["Invalid type of access token", reason]
        if not is_access_token:
            return 401, ["Invalid type of access token"]

        record = self.access_tokens.get(token)
        if record is None:
            return 401, ["Unknown access token"]
        if record.revoked:
            return 401, ["Access token revoked"]
        if record.expires_at_ns < self.clock.now_ns():
            return 401, ["Access token expired"]
        if ADMIN_SCOPE not in record.scope:
            return 401, ["Missing urn:mas:admin scope"]
        return None
