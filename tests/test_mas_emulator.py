"""Focused tests of the MAS emulator: behaviour beyond the recorded exchanges,
the path prefix, faults, the control API over HTTP, the CLI and scale.

The recorded exchanges themselves are replayed in test_mas_emulator_replay.py.
"""

import asyncio
import base64
import datetime
import json
import re
import subprocess
import sys
import time

import aiohttp
import pytest

from tests.mas_emulator import MasEmulator
from tests.mas_emulator.fixtures import mas_emulator  # noqa: F401
from tests.mas_emulator.jsonbody import ADD_TOKEN_REQUEST, EDIT_TOKEN_REQUEST, BodyError, parse_body
from tests.mas_emulator.rawhttp import raw_request
from tests.mas_emulator.spec import REPOSITORY, response_schema, validate

COLLECTION = "/api/admin/v1/user-registration-tokens"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic_auth(client_id: str, client_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


def admin_headers(emulator: MasEmulator) -> dict:
    return {"Authorization": "Bearer " + emulator.issue_access_token()}


async def admin_get(session: aiohttp.ClientSession, emulator: MasEmulator, target: str) -> tuple[int, dict]:
    async with session.get(emulator.base_url + target, headers=admin_headers(emulator)) as response:
        payload = await response.json()
        schema = response_schema("GET", target.split("?")[0], response.status)
        validate(payload, schema)
        return response.status, payload


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client_session:
        yield client_session


# Token endpoint and admin authentication.


async def test_token_endpoint_issues_expiring_token(mas_emulator, session):
    form = {"grant_type": "client_credentials", "scope": "urn:mas:admin"}
    auth = {"Authorization": basic_auth(mas_emulator.client_id, mas_emulator.client_secret)}
    async with session.post(mas_emulator.token_url, data=form, headers=auth) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        payload = await response.json()

    assert set(payload) == {"access_token", "token_type", "expires_in", "scope"}
    assert re.fullmatch(r"mat_[A-Za-z0-9]{30}_[A-Za-z0-9]{6}", payload["access_token"])
    assert [record.token for record in mas_emulator.issued_access_tokens] == [payload["access_token"]]

    bearer = {"Authorization": f"Bearer {payload['access_token']}"}
    async with session.get(mas_emulator.base_url + COLLECTION, headers=bearer) as response:
        assert response.status == 200

    mas_emulator.advance_clock(301)
    async with session.get(mas_emulator.base_url + COLLECTION, headers=bearer) as response:
        assert response.status == 401
        assert await response.json() == {"errors": [{"title": "Access token expired"}]}


async def test_token_endpoint_joins_denied_scopes(mas_emulator, session):
    form = {"grant_type": "client_credentials", "scope": "urn:mas:admin urn:synapse:admin:* urn:matrix:client:api:*"}
    auth = {"Authorization": basic_auth(mas_emulator.client_id, mas_emulator.client_secret)}
    async with session.post(mas_emulator.token_url, data=form, headers=auth) as response:
        assert response.status == 403
        payload = await response.json()

    assert payload == {
        "error": "invalid_scope",
        "error_description": "scope 'urn:matrix:client:api:*' not allowed, scope 'urn:synapse:admin:*' not allowed",
    }


async def test_token_endpoint_basic_credentials_form_decoded():
    emulator = MasEmulator(client_id="client:one", client_secret="s e+cret%")
    await emulator.start()
    try:
        encoded = "client%3Aone:s+e%2Bcret%25"
        response = await raw_request(
            emulator.host,
            emulator.port,
            "POST",
            "/oauth2/token",
            {**FORM, "Authorization": "Basic " + base64.b64encode(encoded.encode()).decode()},
            b"grant_type=client_credentials&scope=urn%3Amas%3Aadmin",
        )
        assert response.status == 200, response.text()
    finally:
        await emulator.stop()


@pytest.mark.parametrize(
    ("authorization", "status", "titles"),
    [
        ("Bearer", 400, ["Invalid authorization header"]),
        ("Token abc", 400, ["Invalid authorization header"]),
        ("Bearer a_b", 401, ["Invalid type of access token", "invalid token format"]),
        (
            "Bearer abc_" + "a" * 30 + "_abcdef",
            401,
            ["Invalid type of access token", 'unknown token prefix "abc"'],
        ),
        ("Bearer syt_anything", 401, ["Invalid type of access token"]),
    ],
)
async def test_admin_auth_rejections(mas_emulator, session, authorization, status, titles):
    async with session.get(mas_emulator.base_url + COLLECTION, headers={"Authorization": authorization}) as response:
        assert response.status == status
        assert await response.json() == {"errors": [{"title": title} for title in titles]}


async def test_admin_auth_revoked_session(mas_emulator, session):
    token = mas_emulator.issue_access_token()
    mas_emulator.revoke_access_token(token)
    async with session.get(mas_emulator.base_url + COLLECTION, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 401
        assert await response.json() == {"errors": [{"title": "Access token revoked"}]}


# Registration tokens.


async def test_create_precision_then_read_back(mas_emulator, session):
    mas_emulator.freeze_clock()
    mas_emulator.set_clock("2030-05-06T07:08:09.123456789Z")
    body = {"expires_at": "2030-06-01T00:00:00.987654321+02:00"}

    async with session.post(mas_emulator.base_url + COLLECTION, json=body, headers=admin_headers(mas_emulator)) as response:
        assert response.status == 201
        created = (await response.json())["data"]
    assert created["attributes"]["created_at"] == "2030-05-06T07:08:09.123456789Z"
    assert created["attributes"]["expires_at"] == "2030-05-31T22:00:00.987654321Z"
    assert len(created["attributes"]["token"]) == 12
    assert created["id"].startswith("01")

    status, payload = await admin_get(session, mas_emulator, f"{COLLECTION}/{created['id']}")
    assert status == 200
    assert payload["data"]["attributes"]["created_at"] == "2030-05-06T07:08:09.123456Z"
    assert payload["data"]["attributes"]["expires_at"] == "2030-05-31T22:00:00.987654Z"


async def test_valid_follows_clock_and_usage(mas_emulator, session):
    mas_emulator.freeze_clock()
    expiring = mas_emulator.add_token(expires_at=time.time() + 60)
    limited = mas_emulator.add_token(usage_limit=1)

    _, before = await admin_get(session, mas_emulator, f"{COLLECTION}?filter[valid]=true")
    assert [item["id"] for item in before["data"]] == [expiring, limited]

    mas_emulator.use_token(limited)
    mas_emulator.advance_clock(61)
    _, after = await admin_get(session, mas_emulator, f"{COLLECTION}?filter[valid]=false")
    assert [item["id"] for item in after["data"]] == [expiring, limited]

    _, used = await admin_get(session, mas_emulator, f"{COLLECTION}?filter[used]=true&filter[expired]=false")
    assert [item["id"] for item in used["data"]] == [limited]
    assert used["data"][0]["attributes"]["times_used"] == 1
    assert used["data"][0]["attributes"]["last_used_at"] is not None


@pytest.mark.parametrize(
    ("body", "struct", "status", "text"),
    [
        (b"", ADD_TOKEN_REQUEST, 400, "Failed to parse the request body as JSON: EOF while parsing a value at line 1 column 0"),
        (b'{"token": 5}', ADD_TOKEN_REQUEST, 422, "Failed to deserialize the JSON body into the target type: token: invalid type: integer `5`, expected a string at line 1 column 11"),
        (b'{"usage_limit": 4294967296}', ADD_TOKEN_REQUEST, 422, "Failed to deserialize the JSON body into the target type: usage_limit: invalid value: integer `4294967296`, expected u32 at line 1 column 26"),
        (b'{"usage_limit": 1e3}', ADD_TOKEN_REQUEST, 422, "Failed to deserialize the JSON body into the target type: usage_limit: invalid type: floating point `1000.0`, expected u32 at line 1 column 19"),
        (b'{"expires_at": "2030-02-30T00:00:00Z"}', EDIT_TOKEN_REQUEST, 422, "Failed to deserialize the JSON body into the target type: expires_at: input is out of range at line 1 column 37"),
        (b'{"expires_at": "2030-01-01T00:00:00Zx"}', EDIT_TOKEN_REQUEST, 422, "Failed to deserialize the JSON body into the target type: expires_at: trailing input at line 1 column 38"),
        (b"null", EDIT_TOKEN_REQUEST, 422, "Failed to deserialize the JSON body into the target type: invalid type: null, expected struct EditUserRegistrationTokenRequest at line 1 column 4"),
        (b'{"token": "a", "token": "b"}', ADD_TOKEN_REQUEST, 422, "Failed to deserialize the JSON body into the target type: duplicate field `token` at line 1 column 22"),
        (b'{"usage_limit": 5,}', ADD_TOKEN_REQUEST, 400, "Failed to parse the request body as JSON: trailing comma at line 1 column 19"),
        (b'{"usage_limit" 5}', ADD_TOKEN_REQUEST, 400, "Failed to parse the request body as JSON: usage_limit: expected `:` at line 1 column 16"),
        (b'{"a": [1, }', ADD_TOKEN_REQUEST, 400, "Failed to parse the request body as JSON: a: expected value at line 1 column 11"),
        (b'{"token": "abc', ADD_TOKEN_REQUEST, 400, "Failed to parse the request body as JSON: token: EOF while parsing a string at line 1 column 14"),
    ],
)
def test_body_errors_match_serde(body, struct, status, text):
    with pytest.raises(BodyError) as caught:
        parse_body(body, struct)
    assert caught.value.status == status
    assert caught.value.text == text


def test_body_accepts_relaxed_dates_and_nulls():
    fields = parse_body(b'{"expires_at": "2030-1-2 3:4:5 UTC", "usage_limit": null, "x": [1, {"y": null}]}', EDIT_TOKEN_REQUEST)
    expected_ns = int(datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc).timestamp()) * 10**9
    assert fields == {"expires_at": expected_ns, "usage_limit": None}


# Listing.


async def test_listing_walks_forward_and_backward(mas_emulator, session):
    ids = mas_emulator.seed_tokens(25)
    assert ids == sorted(ids)

    collected = []
    target = f"{COLLECTION}?page[first]=10"
    while True:
        _, page = await admin_get(session, mas_emulator, target)
        collected += [item["id"] for item in page["data"]]
        assert "prev" not in page["links"]
        if "next" not in page["links"]:
            break
        target = page["links"]["next"]
    assert collected == ids

    _, last_page = await admin_get(session, mas_emulator, f"{COLLECTION}?page[last]=10")
    assert [item["id"] for item in last_page["data"]] == ids[-10:]
    assert last_page["links"]["prev"] == f"{COLLECTION}?page[before]={ids[-10]}&page[last]=10"

    _, first_page = await admin_get(session, mas_emulator, f"{COLLECTION}?page[last]=10&page[before]={ids[5]}")
    assert [item["id"] for item in first_page["data"]] == ids[:5]
    assert "prev" not in first_page["links"]


async def test_listing_cursor_case_and_bounds(mas_emulator, session):
    ids = mas_emulator.seed_tokens(6)
    query = f"page[after]={ids[0].lower()}&page[before]={ids[4]}&page[first]=10&count=false"
    _, page = await admin_get(session, mas_emulator, f"{COLLECTION}?{query}")
    assert [item["id"] for item in page["data"]] == ids[1:4]
    assert "meta" not in page
    assert page["links"]["self"] == f"{COLLECTION}?count=false&page[before]={ids[4]}&page[after]={ids[0]}&page[first]=10"


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("page[last]=0", ["page[last]: invalid value: integer `0`, expected a nonzero usize"]),
        ("page[first]=", ["page[first]: cannot parse integer from empty string"]),
        ("page[first]=99999999999999999999", ["page[first]: number too large to fit in target type"]),
        ("page[before]=01ARZ3NDEKTSV4RRFFQ69G5FAU", ["page[before]: invalid character"]),
        ("page[first]=1&page[first]=2", ["duplicate field `page[first]`"]),
    ],
)
async def test_listing_rejects_bad_pagination(mas_emulator, session, query, titles):
    status, payload = await admin_get(session, mas_emulator, f"{COLLECTION}?{query}")
    assert status == 400
    message = titles[0]
    assert payload == {
        "errors": [
            {"title": "Invalid pagination parameters"},
            {"title": f"Failed to deserialize query string: {message}"},
            {"title": message},
            {"title": message},
        ]
    }


async def test_listing_count_only_with_filter(mas_emulator, session):
    mas_emulator.seed_tokens(3)
    mas_emulator.seed_tokens(2, revoked=True)
    _, payload = await admin_get(session, mas_emulator, f"{COLLECTION}?count=only&filter[revoked]=true&page[first]=1")
    assert payload == {"meta": {"count": 2}, "links": {"self": f"{COLLECTION}?filter[revoked]=true&count=only"}}


async def test_listing_scales_to_ten_thousand(mas_emulator, session):
    started = time.perf_counter()
    ids = mas_emulator.seed_tokens(10_000, usage_limit=5)
    seeded_s = time.perf_counter() - started
    assert len(mas_emulator.tokens) == 10_000
    assert seeded_s < 10, f"seeding 10,000 tokens took {seeded_s:.1f} s"

    started = time.perf_counter()
    for index in range(200):
        _, page = await admin_get(session, mas_emulator, f"{COLLECTION}?filter[valid]=true&page[after]={ids[index * 40]}")
        assert page["meta"]["count"] == 10_000
        assert page["data"][0]["id"] == ids[index * 40 + 1]
    listed_s = time.perf_counter() - started
    assert listed_s < 20, f"200 filtered pages over 10,000 tokens took {listed_s:.1f} s"


# Routing, methods and the path prefix.


async def test_path_prefix_serves_routes_and_unprefixed_links():
    emulator = MasEmulator(path_prefix="/mas/")
    await emulator.start()
    try:
        assert emulator.base_url.endswith("/mas")
        ids = emulator.seed_tokens(3)
        headers = admin_headers(emulator)
        async with aiohttp.ClientSession() as client_session:
            async with client_session.get(f"{emulator.base_url}{COLLECTION}?page[first]=2", headers=headers) as response:
                assert response.status == 200
                page = await response.json()
            async with client_session.get(f"{emulator.root_url}{COLLECTION}", headers=headers) as response:
                assert response.status == 404
                assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            async with client_session.get(f"{emulator.base_url}/.well-known/openid-configuration") as response:
                discovery = await response.json()

        assert page["links"]["next"] == f"{COLLECTION}?page[after]={ids[1]}&page[first]=2"
        assert page["data"][0]["links"]["self"] == f"{COLLECTION}/{ids[0]}"
        assert discovery["issuer"] == emulator.base_url + "/"
        assert discovery["token_endpoint"] == emulator.base_url + "/oauth2/token"
        assert emulator.requests[0].path == f"/mas{COLLECTION}"
    finally:
        await emulator.stop()


@pytest.mark.parametrize(
    ("method", "target", "allow"),
    [
        ("DELETE", COLLECTION, "GET,HEAD,POST"),
        ("PATCH", f"{COLLECTION}/01ARZ3NDEKTSV4RRFFQ69G5FAV", "GET,HEAD,PUT"),
        ("PUT", f"{COLLECTION}/01ARZ3NDEKTSV4RRFFQ69G5FAV/unrevoke", "POST"),
        ("POST", "/.well-known/openid-configuration", "GET,HEAD"),
    ],
)
async def test_wrong_method_gets_405(mas_emulator, method, target, allow):
    response = await raw_request(mas_emulator.host, mas_emulator.port, method, target, admin_headers(mas_emulator))
    assert response.status == 405
    assert response.headers["allow"] == allow
    assert response.body == b""


@pytest.mark.parametrize(
    "target",
    [f"{COLLECTION}/", f"{COLLECTION}//revoke", f"{COLLECTION}/x/revoke/", "/api/admin/v1/users", "/"],
)
async def test_unknown_routes_get_html_404(mas_emulator, target):
    response = await raw_request(mas_emulator.host, mas_emulator.port, "GET", target, admin_headers(mas_emulator))
    assert response.status == 404
    assert response.content_type == "text/html; charset=utf-8"
    assert "Page not found" in response.text()
    assert f"GET {target} HTTP/1.1".replace("/", "&#x2f;") in response.text()


async def test_head_on_get_route_has_no_body(mas_emulator):
    response = await raw_request(mas_emulator.host, mas_emulator.port, "HEAD", COLLECTION, admin_headers(mas_emulator))
    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.body == b""


# Faults.


async def fetch_status(emulator: MasEmulator, path: str = COLLECTION, timeout_s: float = 5.0):
    """Return (status, headers, body) on a fresh connection, or the exception class on failure."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client_session:
        try:
            async with client_session.get(
                emulator.base_url + path, headers=admin_headers(emulator), timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                return response.status, response.headers, await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            return type(error)


@pytest.mark.parametrize(("status", "body"), [(500, "json"), (502, "html"), (503, "json")])
async def test_fault_status_then_recovers(mas_emulator, status, body):
    mas_emulator.set_fault("status", status=status, body=body, count=1)
    first_status, headers, payload = await fetch_status(mas_emulator)
    assert first_status == status
    expected_type = "application/json" if body == "json" else "text/html; charset=utf-8"
    assert headers["Content-Type"] == expected_type

    second_status, _, _ = await fetch_status(mas_emulator)
    assert second_status == 200
    assert [record.fault for record in mas_emulator.requests] == ["status", None]


async def test_fault_targets_token_endpoint_only(mas_emulator, session):
    mas_emulator.set_fault("missing_access_token", target="token")
    auth = {"Authorization": basic_auth(mas_emulator.client_id, mas_emulator.client_secret)}
    async with session.post(mas_emulator.token_url, data={"grant_type": "client_credentials"}, headers=auth) as response:
        assert response.status == 200
        assert "access_token" not in await response.json()

    status, _, _ = await fetch_status(mas_emulator)
    assert status == 200


async def test_fault_path_and_method_filter(mas_emulator):
    token_id = mas_emulator.add_token()
    mas_emulator.set_fault("unauthorized", path=f"{COLLECTION}/{token_id}", method="GET")
    item_status, _, item_body = await fetch_status(mas_emulator, f"{COLLECTION}/{token_id}")
    list_status, _, _ = await fetch_status(mas_emulator)
    assert item_status == 401
    assert json.loads(item_body) == {"errors": [{"title": "Unknown access token"}]}
    assert list_status == 200


async def test_fault_rate_limited_has_retry_after(mas_emulator):
    mas_emulator.set_fault("rate_limited", retry_after_s=7)
    status, headers, _ = await fetch_status(mas_emulator)
    assert status == 429
    assert headers["Retry-After"] == "7"


async def test_fault_invalid_json_and_html(mas_emulator):
    mas_emulator.set_fault("invalid_json", count=1)
    mas_emulator.add_fault("html", count=1)
    status, headers, body = await fetch_status(mas_emulator)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)

    status, headers, _ = await fetch_status(mas_emulator)
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert mas_emulator.faults.active == []


async def test_fault_reset_and_truncated(mas_emulator):
    # No count: aiohttp retries an idempotent request once after a dropped connection.
    mas_emulator.set_fault("reset")
    outcome = await fetch_status(mas_emulator)
    assert isinstance(outcome, type)
    assert issubclass(outcome, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError))
    assert mas_emulator.requests[-1].status is None

    mas_emulator.set_fault("truncated")
    assert await fetch_status(mas_emulator) is aiohttp.ClientPayloadError

    mas_emulator.clear_fault()

    status, _, _ = await fetch_status(mas_emulator)
    assert status == 200


async def test_fault_slow_delays_response(mas_emulator):
    mas_emulator.set_fault("slow", delay_s=0.3)
    started = time.perf_counter()
    status, _, _ = await fetch_status(mas_emulator)
    assert status == 200
    assert time.perf_counter() - started >= 0.3


async def test_fault_hang_times_out_without_blocking_stop():
    emulator = MasEmulator()
    await emulator.start()
    emulator.set_fault("hang")
    assert await fetch_status(emulator, timeout_s=0.3) is asyncio.TimeoutError

    pending = asyncio.create_task(fetch_status(emulator, timeout_s=30))
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    await emulator.stop()
    assert time.perf_counter() - started < 3
    outcome = await pending
    assert isinstance(outcome, type)
    assert issubclass(outcome, aiohttp.ClientError)


def test_fault_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown fault kind"):
        MasEmulator().set_fault("explode")


# Control API over HTTP.


async def test_control_api_round_trip(mas_emulator, session):
    control = mas_emulator.control_url
    async with session.post(f"{control}/tokens", json={"count": 3, "usage_limit": 2}) as response:
        assert response.status == 201
        seeded = (await response.json())["ids"]
    async with session.post(f"{control}/tokens", json={"tokens": [{"token": "abc", "revoked": True}]}) as response:
        custom = (await response.json())["ids"]
    async with session.post(f"{control}/fault", json={"kind": "status", "status": 503, "target": "admin", "count": 1}) as response:
        assert (await response.json())["faults"][0]["status"] == 503

    first_status, _, _ = await fetch_status(mas_emulator)
    async with session.delete(f"{control}/fault") as response:
        assert (await response.json()) == {"faults": []}
    async with session.post(f"{control}/clock", json={"advance_s": 3600}) as response:
        assert (await response.json())["clock_offset_s"] == pytest.approx(3600)
    async with session.get(f"{control}/state") as response:
        state = await response.json()

    assert first_status == 503
    assert [token["id"] for token in state["tokens"]] == seeded + custom
    assert state["tokens"][0]["usage_limit"] == 2
    assert state["tokens"][3]["token"] == "abc"
    assert state["tokens"][3]["valid"] is False
    assert [record["status"] for record in state["requests"]] == [503]
    assert state["requests"][0]["path"] == COLLECTION

    async with session.post(f"{control}/reset") as response:
        assert response.status == 200
    assert mas_emulator.tokens == {}
    assert mas_emulator.requests == []


async def test_control_api_rejects_bad_input(mas_emulator, session):
    control = mas_emulator.control_url
    async with session.post(f"{control}/tokens", json={"count": 1, "colour": "red"}) as response:
        assert response.status == 400
        assert "colour" in (await response.json())["error"]
    async with session.post(f"{control}/clock", json={"advance_s": "soon"}) as response:
        assert response.status == 400
    async with session.get(f"{control}/nothing") as response:
        assert response.status == 404


# Construction and the CLI.


def test_rejects_non_loopback_host():
    with pytest.raises(ValueError, match="loopback"):
        MasEmulator(host="0.0.0.0")


def test_cli_serves_until_terminated():
    command = [
        sys.executable, "-m", "tests.mas_emulator", "--host", "127.0.0.1", "--port", "0",
        "--client-id", "01JCLIENT0000000000000000AD", "--client-secret", "cli-secret",
        "--path-prefix", "/mas", "--seed", "4",
    ]
    process = subprocess.Popen(command, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"MAS emulator listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line

        async def query() -> dict:
            async with aiohttp.ClientSession() as client_session:
                async with client_session.get(match.group(1) + "/__emulator__/state") as response:
                    return await response.json()

        state = asyncio.run(query())
        assert len(state["tokens"]) == 4
        assert state["base_url"] == match.group(1) + "/mas"
    finally:
        process.terminate()
        return_code = process.wait(timeout=10)
    assert return_code == 0
    assert "cli-secret" not in process.stderr.read()


def test_cli_rejects_public_host():
    result = subprocess.run(
        [sys.executable, "-m", "tests.mas_emulator", "--host", "192.0.2.1"],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr
