"""End-to-end tests of the extended commands, as an admin types them, through the built plugin and the MAS emulator.

Covers edit, filtered and summarised lists, generate with a custom string and
each expiry form, the aliases, help with a configured base command, status,
OpenID discovery from `mas_url` alone, and the audit log of every change.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator
from urllib.parse import parse_qs

import pytest
import pytest_asyncio

from tests.mas_emulator import Client, MasEmulator
from tests.mas_emulator.clock import datetime_to_ns

from .conftest import ADMIN, CLIENT_ID, CLIENT_SECRET, OPS_ROOM, OTHER_ROOM, OUTSIDER, Harness, plugin_config
from .plugin_harness import (
    TOKEN_ENDPOINT_PATH,
    TOKENS_PATH,
    admin_requests,
    assert_no_secrets,
    only_reply,
    requests_to,
    secrets_of,
    token_endpoint_requests,
)

# The bot's clock and the emulator's clock are both set to this instant in
# tests that check computed expiry times, so "now" is the same on both sides.
FIXED_NOW = datetime(2026, 12, 4, 20, 0, 0, tzinfo=timezone.utc)
FIXED_NOW_MS = int(FIXED_NOW.timestamp() * 1000)
PAST_EXPIRY = "2020-01-01T00:00:00Z"
DISCOVERY_PATH = "/.well-known/openid-configuration"


# Helpers


def fix_clocks(harness: Harness, emu: MasEmulator) -> None:
    """Set the bot's clock and the emulator's clock to FIXED_NOW, and stop the emulator's clock."""
    harness.set_clock(lambda: FIXED_NOW_MS)
    emu.set_clock(FIXED_NOW)
    emu.freeze_clock()


def rfc3339_to_ns(text: str) -> int:
    """Convert an RFC 3339 time to epoch nanoseconds, as the emulator stores times."""
    return datetime_to_ns(datetime.fromisoformat(text.replace("Z", "+00:00")))


def query_of(record: Any) -> dict[str, str]:
    """Return a request's query parameters with percent-encoding undone."""
    return {key: values[-1] for key, values in parse_qs(record.query, keep_blank_values=True).items()}


def filters_of(record: Any) -> dict[str, str]:
    return {key: value for key, value in query_of(record).items() if key.startswith("filter[")}


def list_requests(emu: MasEmulator) -> list[Any]:
    return requests_to(emu, "GET", TOKENS_PATH)


def create_requests(emu: MasEmulator) -> list[Any]:
    return requests_to(emu, "POST", TOKENS_PATH)


def put_requests(emu: MasEmulator) -> list[Any]:
    return [record for record in emu.requests if record.method == "PUT"]


def admin_signature(
    emu: MasEmulator, start: int, end: int | None = None, ulid: str | None = None
) -> list[tuple[str, str, dict[str, str], str]]:
    """Return (method, path, query, body) of the admin requests in emu.requests[start:end], with `ulid` replaced by {id}."""
    signature = []
    for record in emu.requests[start:end]:
        if not record.path.startswith("/api/admin/"):
            continue
        path = record.path.replace(ulid, "{id}") if ulid else record.path
        signature.append((record.method, path, query_of(record), record.body))
    return signature


def audit_records(harness: Harness, start: int = 0, end: int | None = None) -> list[logging.LogRecord]:
    """Return the plugin's log records from index `start` to `end` that are audit lines."""
    return [record for record in harness.log.records[start:end] if "audit:" in record.getMessage()]


def audit_lines(harness: Harness, start: int = 0, end: int | None = None) -> list[str]:
    return [record.getMessage() for record in audit_records(harness, start, end)]


def seed_mix(emu: MasEmulator) -> dict[str, list[str]]:
    """Add tokens in every state, with a different count per state, and return their strings by state.

    State counts: 4 active (2 of them used, 2 never used), 3 revoked, 2
    expired and 1 used up. Only the used-up token and the 2 used active ones
    have times_used > 0.
    """
    groups: dict[str, list[str]] = {"used_active": [], "unused_active": [], "revoked": [], "expired": [], "used_up": []}
    for letter in "AB":
        name = f"liveused-{letter}"
        emu.add_token(token=name, usage_limit=5, times_used=2)
        groups["used_active"].append(name)
    for letter in "AB":
        name = f"livefree-{letter}"
        emu.add_token(token=name)
        groups["unused_active"].append(name)
    for letter in "ABC":
        name = f"revoked-{letter}"
        emu.add_token(token=name, revoked=True)
        groups["revoked"].append(name)
    for letter in "AB":
        name = f"expired-{letter}"
        emu.add_token(token=name, expires_at=PAST_EXPIRY)
        groups["expired"].append(name)
    emu.add_token(token="usedup-A", usage_limit=1, times_used=1)
    groups["used_up"].append("usedup-A")
    return groups


def all_strings(groups: dict[str, list[str]]) -> list[str]:
    return [name for names in groups.values() for name in names]


@pytest_asyncio.fixture
async def non_admin_emulator() -> AsyncIterator[MasEmulator]:
    """A MAS emulator that has the test client but does not list it in policy.data.admin_clients."""
    emu = MasEmulator(clients=[Client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, admin=False)])
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


# edit


async def test_edit_sets_uses_and_expiry(harness: Harness, emulator: MasEmulator) -> None:
    fix_clocks(harness, emulator)
    target = emulator.add_token(token="welcome-2027", usage_limit=5)

    body = only_reply(await harness.send("!token edit welcome-2027 uses 10 expires 2027-01-31"))["body"]

    token = emulator.get_token(target)
    assert token.usage_limit == 10
    assert token.expires_at_ns == rfc3339_to_ns("2027-01-31T00:00:00Z")
    assert "uses 0 / 5 → 0 / 10" in body
    assert "expires never → 2027-01-31 00:00 UTC" in body
    puts = put_requests(emulator)
    assert len(puts) == 1
    assert puts[0].path == f"{TOKENS_PATH}/{target}"
    assert json.loads(puts[0].body) == {"usage_limit": 10, "expires_at": "2027-01-31T00:00:00Z"}


async def test_edit_by_ulid_sets_uses(harness: Harness, emulator: MasEmulator) -> None:
    fix_clocks(harness, emulator)
    target = emulator.add_token(token="edit-by-ulid", usage_limit=2, times_used=1)

    body = only_reply(await harness.send(f"!token edit {target} uses 10 expires 2027-01-31"))["body"]

    token = emulator.get_token(target)
    assert token.usage_limit == 10
    assert token.expires_at_ns == rfc3339_to_ns("2027-01-31T00:00:00Z")
    assert "uses 1 / 2 → 1 / 10" in body
    # A ULID needs no search through the list.
    assert list_requests(emulator) == []


async def test_edit_unlimited_never_clears_both(harness: Harness, emulator: MasEmulator) -> None:
    fix_clocks(harness, emulator)
    target = emulator.add_token(token="clear-both", usage_limit=10, expires_at="2027-01-31T00:00:00Z")

    body = only_reply(await harness.send("!token edit clear-both uses unlimited expires never"))["body"]

    token = emulator.get_token(target)
    assert token.usage_limit is None
    assert token.expires_at_ns is None
    assert "uses 0 / 10 → 0 / unlimited" in body
    assert "→ never" in body
    puts = put_requests(emulator)
    assert len(puts) == 1
    assert json.loads(puts[0].body) == {"usage_limit": None, "expires_at": None}


async def test_edit_revoked_token_rejected(harness: Harness, emulator: MasEmulator) -> None:
    target = emulator.add_token(token="revoked-edit", usage_limit=5, revoked=True)

    for command in ("!token edit revoked-edit uses 10 expires 2027-01-31", f"!token edit {target} uses unlimited"):
        body = only_reply(await harness.send(command))["body"]

        assert "is revoked" in body
        assert "not edited" in body
        assert "Unrevoke it first" in body

    assert put_requests(emulator) == []
    token = emulator.get_token(target)
    assert token.usage_limit == 5
    assert token.expires_at_ns is None


async def test_edit_expired_token_extends_expiry(harness: Harness, emulator: MasEmulator) -> None:
    # Only revoked tokens are rejected, so an expired token can get a new expiry.
    fix_clocks(harness, emulator)
    target = emulator.add_token(token="expired-edit", expires_at="2026-01-01T00:00:00Z")

    body = only_reply(await harness.send("!token edit expired-edit expires 2027-01-31 12:00"))["body"]

    assert emulator.get_token(target).expires_at_ns == rfc3339_to_ns("2027-01-31T12:00:00Z")
    assert "expires 2026-01-01 00:00 UTC" in body
    assert "→ 2027-01-31 12:00 UTC" in body
    puts = put_requests(emulator)
    assert len(puts) == 1
    assert json.loads(puts[0].body) == {"expires_at": "2027-01-31T12:00:00Z"}


async def test_past_expiry_rejected_without_request(harness: Harness, emulator: MasEmulator) -> None:
    fix_clocks(harness, emulator)
    target = emulator.add_token(token="keeps-expiry", expires_at="2027-01-31T00:00:00Z")

    for command in ("!token generate 1 2020-01-01", "!token edit keeps-expiry expires 2020-01-01"):
        body = only_reply(await harness.send(command))["body"]

        assert "The expiry 2020-01-01 00:00 UTC is in the past." in body

    assert create_requests(emulator) == []
    assert put_requests(emulator) == []
    assert emulator.get_token(target).expires_at_ns == rfc3339_to_ns("2027-01-31T00:00:00Z")


# list with a state, and the summary of plain list


FILTER_CASES = [
    ("revoked", {"filter[revoked]": "true"}, ["revoked"]),
    ("expired", {"filter[expired]": "true"}, ["expired"]),
    ("used", {"filter[used]": "true"}, ["used_active", "used_up"]),
    ("unused", {"filter[used]": "false"}, ["unused_active", "revoked", "expired"]),
    ("valid", {"filter[valid]": "true"}, ["used_active", "unused_active"]),
    ("invalid", {"filter[valid]": "false"}, ["revoked", "expired", "used_up"]),
]


@pytest.mark.parametrize(("word", "expected_filters", "matching_groups"), FILTER_CASES, ids=[case[0] for case in FILTER_CASES])
async def test_list_state_filters_tokens(
    harness: Harness, emulator: MasEmulator, word: str, expected_filters: dict[str, str], matching_groups: list[str]
) -> None:
    groups = seed_mix(emulator)
    matching = [name for group in matching_groups for name in groups[group]]
    others = [name for name in all_strings(groups) if name not in matching]

    body = only_reply(await harness.send(f"!token list {word}"))["body"]

    lists = list_requests(emulator)
    assert len(lists) == 1
    assert filters_of(lists[0]) == expected_filters
    assert lists[0].status == 200
    for name in matching:
        assert f"`{name}`" in body, f"{name} is missing from the {word} list:\n{body}"
    for name in others:
        assert f"`{name}`" not in body, f"{name} is not {word} but is listed:\n{body}"
    assert f"Registration tokens: {len(matching)} {word}" in body


async def test_list_summary_counts_each_state(harness: Harness, emulator: MasEmulator) -> None:
    groups = seed_mix(emulator)

    body = only_reply(await harness.send("!token list"))["body"]

    first_line = body.splitlines()[0]
    assert first_line == "Registration tokens: 4 active, 3 revoked, 2 expired, 1 used up"
    for name in all_strings(groups):
        assert f"`{name}`" in body


async def test_list_summary_counts_overlaps_once(harness: Harness, emulator: MasEmulator) -> None:
    # A revoked token that has also expired counts as revoked, and an expired
    # token that is also used up counts as expired, so each token counts once.
    emulator.add_token(token="live-one")
    emulator.add_token(token="revoked-and-expired", revoked=True, expires_at=PAST_EXPIRY)
    emulator.add_token(token="expired-and-used-up", usage_limit=1, times_used=1, expires_at=PAST_EXPIRY)
    emulator.add_token(token="used-up-only", usage_limit=2, times_used=2)

    body = only_reply(await harness.send("!token list"))["body"]

    assert body.splitlines()[0] == "Registration tokens: 1 active, 1 revoked, 1 expired, 1 used up"


async def test_list_summary_when_all_active(harness: Harness, emulator: MasEmulator) -> None:
    emulator.seed_tokens(3)

    body = only_reply(await harness.send("!token list"))["body"]

    assert body.splitlines()[0] == "Registration tokens: 3 active, 0 revoked, 0 expired, 0 used up"


async def test_list_summary_counts_beyond_one_page(harness: Harness, emulator: MasEmulator) -> None:
    # More tokens per state than one list page holds on either engine (300
    # with wasmtime, 30 with the fallback), so the counts must come from MAS.
    emulator.seed_tokens(310)
    emulator.seed_tokens(305, revoked=True)
    emulator.seed_tokens(302, expires_at=PAST_EXPIRY)
    emulator.seed_tokens(301, usage_limit=1, times_used=1)

    body = only_reply(await harness.send("!token list"))["body"]
    revoked_body = only_reply(await harness.send("!token list revoked"))["body"]

    assert body.splitlines()[0] == "Registration tokens: 310 active, 305 revoked, 302 expired, 301 used up"
    assert "Valid (310)" in body
    assert "Invalid, newest first (908)" in body
    assert revoked_body.splitlines()[0] == "Registration tokens: 305 revoked"


# generate


async def test_generate_custom_string_uses_expiry(harness: Harness, emulator: MasEmulator) -> None:
    fix_clocks(harness, emulator)

    body = only_reply(await harness.send("!token generate 5 7d --token welcome-2027"))["body"]

    token = emulator.find_by_string("welcome-2027")
    assert token is not None
    assert token.usage_limit == 5
    assert token.expires_at_ns == datetime_to_ns(FIXED_NOW + timedelta(days=7))
    assert "Created a registration token" in body
    assert "`welcome-2027`" in body
    assert token.id in body


async def test_generate_duplicate_string_rejected(harness: Harness, emulator: MasEmulator) -> None:
    fix_clocks(harness, emulator)
    only_reply(await harness.send("!token generate 5 7d --token welcome-2027"))

    second = only_reply(await harness.send("!token generate 5 7d --token welcome-2027"))["body"]

    assert "that token string already exists" in second
    assert [record.status for record in create_requests(emulator)] == [201, 409]
    assert [token.token for token in emulator.tokens.values()] == ["welcome-2027"]


async def test_generate_unlimited_never_sets_nothing(harness: Harness, emulator: MasEmulator) -> None:
    only_reply(await harness.send("!token generate unlimited never"))

    creates = create_requests(emulator)
    assert len(creates) == 1
    sent = json.loads(creates[0].body)
    assert sent.get("usage_limit") is None
    assert sent.get("expires_at") is None
    tokens = list(emulator.tokens.values())
    assert len(tokens) == 1
    assert tokens[0].usage_limit is None
    assert tokens[0].expires_at_ns is None


EXPIRY_CASES = [
    ("1d12h", "2026-12-06T08:00:00Z"),
    ("2027-01-31T12:00+02:00", "2027-01-31T10:00:00Z"),
    ("2027-01-31T12:00", "2027-01-31T12:00:00Z"),
    ("2027-01-31 12:00", "2027-01-31T12:00:00Z"),
    ("2027-01-31", "2027-01-31T00:00:00Z"),
]


@pytest.mark.parametrize(("expiry", "expected"), EXPIRY_CASES, ids=[case[0] for case in EXPIRY_CASES])
async def test_generate_expiry_forms_exact(harness: Harness, emulator: MasEmulator, expiry: str, expected: str) -> None:
    fix_clocks(harness, emulator)

    only_reply(await harness.send(f"!token generate 1 {expiry}"))

    creates = create_requests(emulator)
    assert len(creates) == 1
    assert json.loads(creates[0].body)["expires_at"] == expected
    tokens = list(emulator.tokens.values())
    assert len(tokens) == 1
    assert tokens[0].usage_limit == 1
    assert tokens[0].expires_at_ns == rfc3339_to_ns(expected)


async def test_ulid_shaped_string_found_by_search(harness: Harness, emulator: MasEmulator) -> None:
    # A custom token string that parses as a ULID is tried as an ID first, and
    # MAS's 404 for that ID leads to a search by string.
    fix_clocks(harness, emulator)
    ulid_shaped = "01JD4ZQ7X6G8K2N3P5R7T9V1W3"
    emulator.seed_tokens(5)
    created = emulator.get_token(emulator.add_token(token=ulid_shaped, usage_limit=2))
    assert created.id != ulid_shaped

    edited = only_reply(await harness.send(f"!token edit {ulid_shaped} uses 9"))["body"]
    revoked = only_reply(await harness.send(f"!token delete {ulid_shaped}"))["body"]

    assert "uses 0 / 2 → 0 / 9" in edited
    assert "Revoked" in revoked
    assert created.usage_limit == 9
    assert created.revoked_at_ns is not None
    statuses = [(record.method, record.path, record.status) for record in admin_requests(emulator)]
    assert ("GET", f"{TOKENS_PATH}/{ulid_shaped}", 404) in statuses
    assert ("PUT", f"{TOKENS_PATH}/{created.id}", 200) in statuses
    assert ("POST", f"{TOKENS_PATH}/{created.id}/revoke", 200) in statuses


# Aliases


async def test_ls_matches_list(harness: Harness, emulator: MasEmulator) -> None:
    seed_mix(emulator)
    only_reply(await harness.send("!token list"))
    middle = len(emulator.requests)

    alias_body = only_reply(await harness.send("!token ls"))["body"]

    canonical = admin_signature(emulator, 0, middle)
    assert admin_signature(emulator, middle) == canonical
    assert len(canonical) == 4
    assert alias_body.startswith("Registration tokens: 4 active")


async def test_active_matches_list_valid(harness: Harness, emulator: MasEmulator) -> None:
    seed_mix(emulator)

    only_reply(await harness.send("!token list active"))

    lists = list_requests(emulator)
    assert len(lists) == 1
    assert filters_of(lists[0]) == {"filter[valid]": "true"}


@pytest.mark.parametrize("alias", ["new", "create"])
async def test_generate_aliases_create(harness: Harness, emulator: MasEmulator, alias: str) -> None:
    fix_clocks(harness, emulator)
    only_reply(await harness.send("!token generate 3 1d"))
    middle = len(emulator.requests)

    body = only_reply(await harness.send(f"!token {alias} 3 1d"))["body"]

    assert "Created a registration token" in body
    assert admin_signature(emulator, middle) == admin_signature(emulator, 0, middle)
    creates = create_requests(emulator)
    assert len(creates) == 2
    assert json.loads(creates[1].body) == {"usage_limit": 3, "expires_at": "2026-12-05T20:00:00Z"}
    assert len(emulator.tokens) == 2


async def test_revoke_alias_revokes(harness: Harness, emulator: MasEmulator) -> None:
    first = emulator.add_token(token="by-delete")
    second = emulator.add_token(token="by-revoke")
    only_reply(await harness.send(f"!token delete {first}"))
    middle = len(emulator.requests)

    body = only_reply(await harness.send(f"!token revoke {second}"))["body"]

    assert "Revoked" in body
    assert admin_signature(emulator, middle, ulid=second) == admin_signature(emulator, 0, middle, ulid=first)
    assert [(record.method, record.path) for record in admin_requests(emulator)[-1:]] == [
        ("POST", f"{TOKENS_PATH}/{second}/revoke")
    ]
    assert emulator.get_token(second).revoked_at_ns is not None


async def test_restore_alias_unrevokes(harness: Harness, emulator: MasEmulator) -> None:
    first = emulator.add_token(token="by-unrevoke", revoked=True)
    second = emulator.add_token(token="by-restore", revoked=True)
    only_reply(await harness.send(f"!token unrevoke {first}"))
    middle = len(emulator.requests)

    body = only_reply(await harness.send(f"!token restore {second}"))["body"]

    assert "Unrevoked" in body
    assert admin_signature(emulator, middle, ulid=second) == admin_signature(emulator, 0, middle, ulid=first)
    assert [(record.method, record.path) for record in admin_requests(emulator)[-1:]] == [
        ("POST", f"{TOKENS_PATH}/{second}/unrevoke")
    ]
    assert emulator.get_token(second).revoked_at_ns is None


@pytest.mark.parametrize("alias", ["show", "info"])
async def test_show_aliases_read_one_token(harness: Harness, emulator: MasEmulator, alias: str) -> None:
    target = emulator.add_token(token="shown-token", usage_limit=4, times_used=1)
    only_reply(await harness.send(f"!token list {target}"))
    middle = len(emulator.requests)

    body = only_reply(await harness.send(f"!token {alias} {target}"))["body"]

    assert admin_signature(emulator, middle) == admin_signature(emulator, 0, middle)
    assert [(record.method, record.path) for record in admin_requests(emulator)] == [
        ("GET", f"{TOKENS_PATH}/{target}"),
        ("GET", f"{TOKENS_PATH}/{target}"),
    ]
    assert "`shown-token`" in body
    assert "1 / 4" in body


# help and base_command


HELP_LINES = [
    "list [valid|invalid|revoked|expired|used|unused|token|ULID]",
    "show <token|ULID>",
    "generate [uses|unlimited] [expiry] [--token STRING]",
    "edit <token|ULID> [uses N|unlimited] [expires EXPIRY]",
    "delete <token|ULID>",
    "unrevoke <token|ULID>",
    "status",
    "help",
]
HELP_ALIASES = ["Also: ls.", "Also: info.", "Also: new, create.", "Also: revoke.", "Also: restore."]


@pytest.mark.parametrize("command", ["!token help", "!token"])
async def test_help_lists_every_subcommand(harness: Harness, emulator: MasEmulator, command: str) -> None:
    body = only_reply(await harness.send(command))["body"]

    for line in HELP_LINES:
        assert f"`!token {line}`" in body, f"{line!r} is missing from help:\n{body}"
    for aliases in HELP_ALIASES:
        assert aliases in body
    assert emulator.requests == []


async def test_help_uses_base_command(make_plugin: Any, emulator: MasEmulator) -> None:
    running = await make_plugin(plugin_config(emulator, base_command="regtoken"))

    for command in ("!regtoken help", "!regtoken"):
        body = only_reply(await running.send(command))["body"]

        for line in HELP_LINES:
            assert f"`!regtoken {line}`" in body, f"{line!r} is missing from help:\n{body}"
        assert "!token " not in body

    assert await running.send("!token help") == []
    assert await running.send("!token list") == []
    assert emulator.requests == []


# status


async def test_status_all_checks_pass(harness: Harness, emulator: MasEmulator) -> None:
    seed_mix(emulator)

    body = only_reply(await harness.send("!token status"))["body"]

    assert "everything works" in body
    assert body.count("✅") == 4
    assert "❌" not in body
    assert "4 valid registration tokens" in body
    lists = list_requests(emulator)
    assert len(lists) == 1
    assert query_of(lists[0]) == {"filter[valid]": "true", "count": "only"}


async def test_status_requests_fresh_access_token(harness: Harness, emulator: MasEmulator) -> None:
    # A cached access token proves nothing about the credentials, so status
    # requests a new one even while the cached one is still valid.
    only_reply(await harness.send("!token list"))
    assert len(token_endpoint_requests(emulator)) == 1

    body = only_reply(await harness.send("!token status"))["body"]

    assert "everything works" in body
    assert len(token_endpoint_requests(emulator)) == 2


async def test_status_wrong_secret_names_key(make_plugin: Any, emulator: MasEmulator) -> None:
    running = await make_plugin(plugin_config(emulator, client_secret="wrong-secret"))

    content = only_reply(await running.send("!token status"))
    body = content["body"]

    assert "problems found" in body
    assert "client_secret" in body
    assert "❌" in body
    assert "wrong-secret" not in body
    assert "wrong-secret" not in content["formatted_body"]
    assert [record.status for record in token_endpoint_requests(emulator)] == [401]
    assert admin_requests(emulator) == []


async def test_status_non_admin_names_policy(make_plugin: Any, non_admin_emulator: MasEmulator) -> None:
    running = await make_plugin(plugin_config(non_admin_emulator))

    body = only_reply(await running.send("!token status"))["body"]

    assert "problems found" in body
    assert "policy.data.admin_clients" in body
    assert "❌" in body
    assert [record.status for record in token_endpoint_requests(non_admin_emulator)] == [403]
    assert admin_requests(non_admin_emulator) == []


# mas_url alone, with the token endpoint from OpenID discovery


def mas_url_config(emu: MasEmulator) -> dict[str, Any]:
    config = plugin_config(emu, mas_url=emu.base_url)
    del config["admin_api"]
    del config["token_url"]
    return config


async def test_mas_url_discovers_token_endpoint(make_plugin: Any, emulator: MasEmulator) -> None:
    groups = seed_mix(emulator)
    running = await make_plugin(mas_url_config(emulator))

    body = only_reply(await running.send("!token list"))["body"]

    assert emulator.requests[0].method == "GET"
    assert emulator.requests[0].path == DISCOVERY_PATH
    assert emulator.requests[0].status == 200
    assert emulator.requests[1].path == TOKEN_ENDPOINT_PATH
    assert emulator.requests[1].status == 200
    assert body.splitlines()[0] == "Registration tokens: 4 active, 3 revoked, 2 expired, 1 used up"
    for name in all_strings(groups):
        assert f"`{name}`" in body
    assert {record.status for record in admin_requests(emulator)} == {200}


async def test_mas_url_commands_reuse_discovery(make_plugin: Any, emulator: MasEmulator) -> None:
    target = emulator.add_token(token="discovered-a")
    running = await make_plugin(mas_url_config(emulator))

    only_reply(await running.send("!token list"))
    revoked = only_reply(await running.send("!token delete discovered-a"))["body"]
    status = only_reply(await running.send("!token status"))["body"]

    assert "Revoked" in revoked
    assert emulator.get_token(target).revoked_at_ns is not None
    assert "everything works" in status
    assert status.count("✅") == 4
    assert f"{emulator.base_url}{DISCOVERY_PATH}" in status
    assert len(requests_to(emulator, "GET", DISCOVERY_PATH)) == 1


# Audit log


async def test_each_change_logs_one_audit_line(harness: Harness, emulator: MasEmulator) -> None:
    fix_clocks(harness, emulator)
    replies: list[dict[str, Any]] = []

    generate_start = len(harness.log.records)
    replies += await harness.send("!token generate 5 7d --token audited-2027")
    created = emulator.find_by_string("audited-2027")
    assert created is not None

    # Each row is (change, index of its first log record, sender, room). The
    # sender and room vary, so the audit line has to name the real ones.
    changes = [("generate", generate_start, ADMIN, OPS_ROOM)]
    steps = [
        ("edit", "!token edit audited-2027 uses 10", ADMIN, OTHER_ROOM),
        ("revoke", "!token delete audited-2027", OUTSIDER, OPS_ROOM),
        ("unrevoke", f"!token unrevoke {created.id}", ADMIN, OPS_ROOM),
    ]
    for name, command, sender, room in steps:
        changes.append((name, len(harness.log.records), sender, room))
        replies += await harness.send(command, sender=sender, room_id=room)
    ends = [begin for _, begin, _, _ in changes[1:]] + [len(harness.log.records)]

    for (name, begin, sender, room), end in zip(changes, ends):
        lines = audit_lines(harness, begin, end)
        assert len(lines) == 1, f"{name} logged {len(lines)} audit lines: {lines!r}"
        assert f"audit: {sender} in {room} " in lines[0]
        assert created.id in lines[0]

    assert len(audit_lines(harness)) == 4
    assert {record.levelno for record in audit_records(harness)} == {logging.INFO}
    assert created.usage_limit == 10
    assert created.revoked_at_ns is None
    assert_no_secrets(secrets_of(emulator), replies, harness)


async def test_reads_and_rejections_log_no_audit(harness: Harness, emulator: MasEmulator) -> None:
    fix_clocks(harness, emulator)
    emulator.add_token(token="taken-string")
    emulator.add_token(token="already-revoked", revoked=True)
    emulator.add_token(token="still-active")

    for command in (
        "!token list",
        "!token list revoked",
        "!token show taken-string",
        "!token status",
        "!token help",
        "!token generate 1 1d --token taken-string",
        "!token edit already-revoked uses 3",
        "!token delete already-revoked",
        "!token unrevoke still-active",
        "!token edit still-active uses 0",
    ):
        only_reply(await harness.send(command))

    assert audit_lines(harness) == []
