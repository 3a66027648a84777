"""Replay the exchanges recorded with a real MAS 1.22 against the emulator.

All 104 recordings run in their recorded order against one emulator whose
clock follows each recording's Date header, so expiry and `valid` come out as
they did on the real server. For each exchange the test compares the status,
the Content-Type, the Allow, Cache-Control and Pragma headers, the absence of
WWW-Authenticate, and the body: text/plain and HTML bodies exactly, JSON bodies
exactly after these substitutions:

- ids and generated token strings are mapped from the recorded ones to the
  emulator's, learned from the create responses;
- created_at, revoked_at and last_used_at are replaced by a placeholder after
  checking their RFC 3339 form (their exact precision has focused tests);
- access_token values, redacted in the recordings, are checked for MAS's
  format (mat_, 30 alphanumerics, base62 CRC-32, 41 characters).

Every JSON admin API response is also validated against the response schemas
of the OpenAPI description.

Recordings that need more than a literal replay:

- 031 (bad CRC): the recorded bearer token is redacted, so the test sends a
  token that ends in the recorded wrong CRC "p6Q7r8" and expects the correct
  CRC that it computes itself in place of the recorded "wxcXx3".
- 063 and 064 are 2 of 25 bulk creates; the other 23, and the 80 tokens
  created before 094 and 095, were not recorded. The replay creates them
  through the admin API with the attributes the later listings (085, 094) show,
  so 065 to 095 list exactly the recorded token sets.
- 096 sends the secret in the form body; the recording redacts it, so the test
  substitutes the emulator client's secret.
- Authorization values are redacted everywhere; the table AUTHORIZATION says
  which credential each recording used, from its name and notes.
"""

import base64
import email.utils
import json
import re
import secrets
import string
import zlib

import pytest

from tests.mas_emulator import Client, MasEmulator
from tests.mas_emulator.rawhttp import raw_request
from tests.mas_emulator.spec import recordings, response_schema, validate

RECORDED_ADMIN_CLIENT_ID = "01M9191696PH32DYQJG8R92VYY"
NON_ADMIN_CLIENT_ID = "01M9191696PH32DYQJG8R92VZZ"
UNKNOWN_CLIENT_ID = "01M9191696PH32DYQJG8R92W00"
RECORDED_BAD_CRC = "p6Q7r8"
RECORDED_EXPECTED_CRC = "wxcXx3"

# Credential behind each redacted Authorization header; other admin requests use a fresh admin token.
AUTHORIZATION = {
    "001": "basic_admin",
    "002": "basic_wrong_secret",
    "003": "basic_admin",
    "004": "basic_admin",
    "005": "basic_admin",
    "006": "basic_unknown_client",
    "008": "basic_admin",
    "011": "bearer_garbage",
    "012": "basic_admin",
    "013": "bearer_without_admin_scope",
    "031": "bearer_bad_crc",
    "097": "basic_admin",
    "099": "basic_non_admin",
    "100": "basic_non_admin",
    "101": "bearer_unknown_valid_crc",
    "102": "bearer_refresh_token",
    "103": "bearer_lowercase_scheme",
    "104": "bearer_expired",
}

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$")
ULID = re.compile(r"0[0-9A-HJKMNP-TV-Z]{25}")
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def crc_suffix(base: str) -> str:
    """Compute MAS's token checksum independently of the emulator's code."""
    value = zlib.crc32(base.encode())
    digits = ""
    while value:
        digits += BASE62[value % 62]
        value //= 62
    return digits.rjust(6, "0")


def random_alphanumeric(length: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


def well_formed_token(prefix: str) -> str:
    base = f"{prefix}_{random_alphanumeric(30)}"
    return f"{base}_{crc_suffix(base)}"


def assert_access_token_format(value: str) -> None:
    assert len(value) == 41, value
    assert re.fullmatch(r"mat_[A-Za-z0-9]{30}_[A-Za-z0-9]{6}", value), value
    assert value[-6:] == crc_suffix(value[:-7]), value


def normalise(value: object, check: bool) -> object:
    """Replace the parts of a JSON body that legitimately differ between servers."""
    if isinstance(value, list):
        return [normalise(item, check) for item in value]
    if not isinstance(value, dict):
        return value

    result = {}
    for key, item in value.items():
        if key in ("created_at", "revoked_at", "last_used_at") and isinstance(item, str):
            if check:
                assert TIMESTAMP.match(item), f"{key} is not RFC 3339 UTC: {item}"
            result[key] = "<timestamp>"
        elif key == "access_token" and isinstance(item, str):
            if check:
                assert_access_token_format(item)
            result[key] = "<access-token>"
        else:
            result[key] = normalise(item, check)
    return result


class Replay:
    """State shared across the recordings: the emulator and the recorded-to-emulator maps."""

    def __init__(self, emulator: MasEmulator, admin_secret: str, non_admin_secret: str) -> None:
        self.emulator = emulator
        self.admin_secret = admin_secret
        self.non_admin_secret = non_admin_secret
        self.ids: dict[str, str] = {}
        self.token_strings: dict[str, str] = {}
        self.access_tokens: dict[str, str] = {}
        self.clock_s = 0.0
        self.bad_crc_expected: str | None = None

    def follow_clock(self, recording: dict) -> None:
        date = recording["response"]["headers"].get("date")
        when = email.utils.parsedate_to_datetime(date).timestamp()
        if when > self.clock_s:
            self.clock_s = when
            self.emulator.set_clock(when)

    def map_ids(self, text: str) -> str:
        def replace(match: re.Match) -> str:
            return self.ids.get(match.group(0).upper(), match.group(0))

        return ULID.sub(replace, text) if self.ids else text

    def map_ids_lowercase_aware(self, text: str) -> str:
        text = self.map_ids(text)
        for recorded, actual in self.ids.items():
            text = text.replace(recorded.lower(), actual.lower())
        return text

    def authorization(self, number: str) -> str:
        kind = AUTHORIZATION.get(number, "bearer_admin")
        basic = {
            "basic_admin": (RECORDED_ADMIN_CLIENT_ID, self.admin_secret),
            "basic_wrong_secret": (RECORDED_ADMIN_CLIENT_ID, self.admin_secret + "-wrong"),
            "basic_unknown_client": (UNKNOWN_CLIENT_ID, self.admin_secret),
            "basic_non_admin": (NON_ADMIN_CLIENT_ID, self.non_admin_secret),
        }
        if kind in basic:
            client_id, secret = basic[kind]
            return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()

        if kind == "bearer_admin":
            return "Bearer " + self.emulator.issue_access_token(RECORDED_ADMIN_CLIENT_ID)
        if kind == "bearer_lowercase_scheme":
            return "bearer " + self.emulator.issue_access_token(RECORDED_ADMIN_CLIENT_ID)
        if kind == "bearer_garbage":
            return "Bearer this-is-not-a-token"
        if kind == "bearer_without_admin_scope":
            return "Bearer " + self.access_tokens["005"]
        if kind == "bearer_expired":
            return "Bearer " + self.access_tokens["001"]
        if kind == "bearer_unknown_valid_crc":
            return "Bearer " + well_formed_token("mat")
        if kind == "bearer_refresh_token":
            return "Bearer " + well_formed_token("mar")
        if kind == "bearer_bad_crc":
            while True:
                base = f"mat_{random_alphanumeric(30)}"
                if crc_suffix(base) != RECORDED_BAD_CRC:
                    break
            self.bad_crc_expected = crc_suffix(base)
            return f"Bearer {base}_{RECORDED_BAD_CRC}"
        raise AssertionError(f"unknown authorization kind {kind}")

    def request_body(self, number: str, recording: dict) -> bytes | None:
        request = recording["request"]
        body = request["body"]
        if body is None:
            return None
        if isinstance(body, str):
            return body.replace("<redacted>", self.admin_secret).encode()

        # The recorder used either json.dumps's default separators or compact ones;
        # Content-Length tells which, and error columns depend on it.
        for separators in ((", ", ": "), (",", ":")):
            encoded = json.dumps(body, separators=separators).encode()
            if str(len(encoded)) == request["headers"]["Content-Length"]:
                return encoded
        raise AssertionError(f"{number}: cannot re-encode the recorded JSON body to its recorded length")

    async def send(self, method: str, target: str, headers: dict, body: bytes | None):
        emulator = self.emulator
        return await raw_request(emulator.host, emulator.port, method, target, headers, body)

    async def create_unrecorded(self, recorded_items: list[dict]) -> None:
        """Create, through the admin API, tokens that the recordings list but never created."""
        for item in recorded_items:
            attributes = item["attributes"]
            body = {key: attributes[key] for key in ("usage_limit", "expires_at") if attributes[key] is not None}
            headers = {
                "Authorization": "Bearer " + self.emulator.issue_access_token(RECORDED_ADMIN_CLIENT_ID),
                "Content-Type": "application/json",
            }
            response = await self.send("POST", "/api/admin/v1/user-registration-tokens", headers, json.dumps(body).encode())
            assert response.status == 201, response.text()
            created = json.loads(response.body)["data"]
            self.ids[item["id"]] = created["id"]
            self.token_strings[attributes["token"]] = created["attributes"]["token"]


def load(path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture
async def replay():
    admin_secret = secrets.token_urlsafe(18)
    non_admin_secret = secrets.token_urlsafe(18)
    emulator = MasEmulator(
        clients=[
            Client(RECORDED_ADMIN_CLIENT_ID, admin_secret, admin=True),
            Client(NON_ADMIN_CLIENT_ID, non_admin_secret, admin=False),
        ]
    )
    await emulator.start()
    try:
        yield Replay(emulator, admin_secret, non_admin_secret)
    finally:
        await emulator.stop()


def expected_json(replay: Replay, number: str, body: object) -> object:
    text = replay.map_ids(json.dumps(body))
    if number == "031":
        text = text.replace(RECORDED_EXPECTED_CRC, replay.bad_crc_expected)
    expected = json.loads(text)

    def map_strings(value: object) -> object:
        if isinstance(value, list):
            return [map_strings(item) for item in value]
        if isinstance(value, dict):
            mapped = {key: map_strings(item) for key, item in value.items()}
            if "token" in mapped and "valid" in mapped:
                mapped["token"] = replay.token_strings.get(mapped["token"], mapped["token"])
            return mapped
        return value

    return normalise(map_strings(expected), check=False)


async def test_replay_all_recordings(replay):
    paths = recordings()
    assert len(paths) == 104
    checked = []

    for path in paths:
        recording = load(path)
        number = path.name[:3]
        request = recording["request"]
        recorded = recording["response"]

        replay.follow_clock(recording)
        if number == "065":
            later_listing = load(next(p for p in paths if p.name.startswith("085")))
            await replay.create_unrecorded(later_listing["response"]["body"]["data"][10:])
        if number == "094":
            await replay.create_unrecorded(recorded["body"]["data"][33:])

        headers = {
            name: value
            for name, value in request["headers"].items()
            if name.lower() not in ("host", "authorization", "content-length")
        }
        if "Authorization" in request["headers"]:
            headers["Authorization"] = replay.authorization(number)
        target = replay.map_ids_lowercase_aware(request["target"])
        response = await replay.send(request["method"], target, headers, replay.request_body(number, recording))

        label = path.name
        if response.status == 201 and recorded["status"] == 201:
            # A create response is where the replay learns the emulator's id and token string.
            created = json.loads(response.body)["data"]
            replay.ids[recorded["body"]["data"]["id"]] = created["id"]
            replay.token_strings[recorded["body"]["data"]["attributes"]["token"]] = created["attributes"]["token"]

        assert response.status == recorded["status"], f"{label}: {response.text()}"
        assert response.content_type == recorded["headers"].get("content-type"), label
        for header in ("allow", "cache-control", "pragma"):
            assert response.headers.get(header) == recorded["headers"].get(header), f"{label}: {header}"
        assert "www-authenticate" not in response.headers, label

        if recorded["body"] is None:
            assert response.body == b"", label
        elif recorded["headers"]["content-type"] == "application/json":
            actual = json.loads(response.body)
            schema = response_schema(request["method"], request["path"], response.status)
            if schema is not None:
                validate(actual, schema)
            assert normalise(actual, check=True) == expected_json(replay, number, recorded["body"]), label
        else:
            assert response.text() == replay.map_ids(recorded["body"]), label

        if request["path"] == "/oauth2/token" and response.status == 200:
            replay.access_tokens[number] = json.loads(response.body)["access_token"]
        checked.append(number)

    assert len(checked) == 104
