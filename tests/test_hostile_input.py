"""Hostile input through the plugin: markup in token strings stays text, and identifiers never leave the allowed paths."""

from __future__ import annotations

import html
import json
import logging
from typing import Any

import pytest

from mas_token_bot.notice import MAX_CONTENT_BYTES
from mas_token_bot.protocol import Reply

from .conftest import OPS_ROOM, Harness
from .plugin_harness import ALLOWED_PATH, only_reply

# Token strings that would be markup, mentions or links if a client rendered them.
MARKUP_TOKENS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "**bold**",
    "back`tick`x",
    "```fence```",
    "@room",
    "@admin:example.org",
    "[link](https://evil.example)",
    "<b>hi</b>&amp;",
    "_under_score_",
]

# Identifiers that try to escape the token's path segment or confuse a URL parser.
HOSTILE_IDENTIFIERS = [
    "../../oauth2/token",
    "..",
    "a/b",
    "%2f..%2fapi%2fadmin%2fv1%2fusers",
    "%2F",
    "abc?page[first]=1",
    "abc#fragment",
    "01JAYQ5R6M3T8V2N4K7W9X1Z0B/../../users",
    "01JAYQ5R6M3T8V2N4K7W9X1Z0B?x=1",
    "tök€n-ünïcödé",
    "\u202eevil\u200b",
    "<img src=x onerror=alert(1)>",
    "x" * 10240,
]
COMMANDS = ["list {}", "delete {}", "unrevoke {}", "edit {} uses 5"]
ALLOWED_METHODS = {"GET", "POST", "PUT"}


def markup_free(formatted_body: str, token: str) -> None:
    """Check that `token` appears in the HTML only as escaped text."""
    assert html.escape(token, quote=False) in formatted_body
    assert "<script" not in formatted_body
    assert "<img" not in formatted_body
    assert "<a " not in formatted_body
    assert "matrix.to" not in formatted_body
    assert "<b>" not in formatted_body
    assert "<em>" not in formatted_body


async def test_markup_tokens_in_list_stay_text(harness: Harness, emulator: Any) -> None:
    for token in MARKUP_TOKENS:
        emulator.add_token(token=token)

    content = only_reply(await harness.send("!token list"))

    for token in MARKUP_TOKENS:
        assert token in content["body"]
        markup_free(content["formatted_body"], token)


@pytest.mark.parametrize("token", MARKUP_TOKENS)
async def test_markup_token_shown_literally(harness: Harness, emulator: Any, token: str) -> None:
    ulid = emulator.add_token(token=token)

    for command in (f"!token show {ulid}", f"!token list {token}"):
        content = only_reply(await harness.send(command))

        assert token in content["body"], command
        markup_free(content["formatted_body"], token)


@pytest.mark.parametrize("token", ["<script>alert(1)</script>", "@room", "**bold**"])
async def test_generated_markup_token_escaped(harness: Harness, emulator: Any, token: str) -> None:
    content = only_reply(await harness.send(f"!token generate 1 --token {token}"))

    assert token in content["body"]
    markup_free(content["formatted_body"], token)


@pytest.mark.parametrize("template", COMMANDS, ids=[command.split()[0] for command in COMMANDS])
@pytest.mark.parametrize(
    "identifier",
    HOSTILE_IDENTIFIERS,
    ids=[f"id{index}" for index in range(len(HOSTILE_IDENTIFIERS))],
)
async def test_identifier_stays_in_allowed_paths(harness: Harness, emulator: Any, template: str, identifier: str) -> None:
    emulator.seed_tokens(5)
    # A token whose string looks like a path, so a search by string finds it.
    found = emulator.add_token(token="../../oauth2/token", revoked=True)

    content = only_reply(await harness.send("!token " + template.format(identifier)))

    assert "Traceback" not in content["body"]
    assert "<img" not in content["formatted_body"]
    if " " not in identifier:
        # With spaces the command may be a usage error that sends nothing.
        assert len(emulator.requests) >= 1
    for record in emulator.requests:
        assert record.method in ALLOWED_METHODS, record
        assert ALLOWED_PATH.match(record.path), f"request outside the allow-list: {record.method} {record.path}"
    if identifier == "../../oauth2/token":
        # The search by string found the token, so its ULID is the only one requested.
        targeted = {record.path.split("/")[5] for record in emulator.requests if record.path.count("/") >= 5}
        assert targeted <= {found}


@pytest.mark.parametrize("command", ["list {}", "delete {}", "generate 1 --token {}"])
async def test_huge_argument_reply_fits_event(harness: Harness, emulator: Any, command: str) -> None:
    # A Matrix client may send a message of up to about 64 KB; the core
    # repeats at most the start of the argument, so its reply fits.
    argument = "y" * 40_000

    content = only_reply(await harness.send("!token " + command.format(argument)))

    size = len(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    assert size <= MAX_CONTENT_BYTES
    # The core cuts the argument it repeats, so the real answer fits.
    assert "too large" not in content["body"]
    assert argument not in content["body"]
    errors = harness.log.at_level(logging.ERROR)
    assert not any("more than the 60000 a Matrix event can carry" in line for line in errors), errors


@pytest.mark.single_engine
async def test_oversized_reply_replaced_with_notice(harness: Harness, emulator: Any) -> None:
    # The core keeps its replies small; this guard catches one that is not,
    # because Synapse rejects events over 65,536 bytes and the admin would
    # get no answer at all.
    before = len(harness.bot.responded)
    huge = Reply(body="x" * 100_000, html="<p>" + "x" * 100_000 + "</p>", error=False)

    await harness.plugin._send_reply(OPS_ROOM, huge)
    content = only_reply(harness.replies_since(before))

    size = len(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    assert size <= MAX_CONTENT_BYTES
    assert "too large" in content["body"]
    errors = harness.log.at_level(logging.ERROR)
    assert any("more than the 60000 a Matrix event can carry" in line for line in errors), errors
