"""Broken instance configs: the plugin stays loaded, names the key, and works once the config is fixed.

The fix goes through on_external_config_update, the call maubot makes when
an admin saves the instance config in its web UI, with no restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import ADMIN, OPS_ROOM, OTHER_ROOM, OUTSIDER, plugin_config
from .plugin_harness import only_reply

MISSING = object()
WORKING_TOKEN = "configtoken01"


@dataclass(frozen=True)
class BadConfig:
    """One broken setting and the value that fixes it."""

    name: str
    key: str
    value: Any  # MISSING removes the key from the instance config
    fix: Any  # "emulator:..." values are filled in from the running emulator


BAD_CONFIGS = [
    BadConfig("missing-admin-api", "admin_api", MISSING, "emulator:admin_api"),
    BadConfig("empty-admin-api", "admin_api", "", "emulator:admin_api"),
    BadConfig("admin-api-bad-url", "admin_api", "http://[::1", "emulator:admin_api"),
    BadConfig("token-url-not-url", "token_url", "not a url", "emulator:token_url"),
    BadConfig("token-url-ftp", "token_url", "ftp://mas.example.org/oauth2/token", "emulator:token_url"),
    BadConfig("whitelist-string", "whitelist", ADMIN, [ADMIN]),
    BadConfig("whitelist-mapping", "whitelist", {"user": ADMIN}, [ADMIN]),
    BadConfig("whitelist-bad-entry", "whitelist", ["admin"], [ADMIN]),
    BadConfig("room-whitelist-string", "room_whitelist", "!x:y", [OPS_ROOM]),
    BadConfig("negative-uses", "default_uses_allowed", -1, 1),
    BadConfig("uses-not-number", "default_uses_allowed", "two", 1),
    BadConfig("expiry-not-number", "default_expiry_time", "soon", 604800),
    BadConfig("empty-client-secret", "client_secret", "", "emulator:client_secret"),
    BadConfig("missing-client-id", "client_id", None, "emulator:client_id"),
    BadConfig("timeout-string", "http_timeout", "ten", 5),
    BadConfig("timeout-zero", "http_timeout", 0, 5),
    BadConfig("timeout-negative", "http_timeout", -5, 5),
    BadConfig("scope-number", "token_scope", 5, "urn:mas:admin"),
    BadConfig("base-command-two-words", "base_command", "to ken", "token"),
]


def fix_value(bad: BadConfig, emulator: Any) -> Any:
    if not (isinstance(bad.fix, str) and bad.fix.startswith("emulator:")):
        return bad.fix
    return plugin_config(emulator)[bad.fix.removeprefix("emulator:")]


def broken_config(emulator: Any, bad: BadConfig) -> dict[str, Any]:
    config = plugin_config(emulator)
    if bad.value is MISSING:
        del config[bad.key]
    else:
        config[bad.key] = bad.value
    return config


@pytest.mark.parametrize("bad", BAD_CONFIGS, ids=[bad.name for bad in BAD_CONFIGS])
async def test_bad_config_named_then_fixed(make_plugin: Any, emulator: Any, bad: BadConfig) -> None:
    emulator.add_token(token=WORKING_TOKEN)
    running = await make_plugin(broken_config(emulator, bad))

    load_warnings = running.log.at_level(logging.WARNING)
    naming_key = [line for line in load_warnings if f"`{bad.key}`" in line]
    assert len(naming_key) == 1, load_warnings
    assert running.plugin.runner is not None

    body = only_reply(await running.send("!token list"))["body"]

    assert f"`{bad.key}`" in body
    assert "configuration has problems" in body
    assert emulator.requests == []

    await running.reconfigure(**{bad.key: fix_value(bad, emulator)})
    fixed = only_reply(await running.send("!token list"))["body"]

    assert WORKING_TOKEN in fixed
    assert "configuration has problems" not in fixed
    assert len(emulator.requests) >= 1


async def test_several_problems_all_named(make_plugin: Any, emulator: Any) -> None:
    config = plugin_config(emulator, http_timeout="ten", default_expiry_time="soon", token_url="not a url")
    running = await make_plugin(config)

    body = only_reply(await running.send("!token list"))["body"]

    for key in ("http_timeout", "default_expiry_time", "token_url"):
        assert f"`{key}`" in body
        assert any(f"`{key}`" in line for line in running.log.at_level(logging.WARNING))


async def test_unknown_key_warned_commands_work(make_plugin: Any, emulator: Any) -> None:
    emulator.add_token(token=WORKING_TOKEN)
    running = await make_plugin(plugin_config(emulator, admin_url="https://typo.example", timeout=3))

    warnings = running.log.at_level(logging.WARNING)

    assert any("'admin_url'" in line for line in warnings)
    assert any("'timeout'" in line for line in warnings)
    # An unknown key is ignored, so it does not stop commands.
    assert WORKING_TOKEN in only_reply(await running.send("!token list"))["body"]


async def test_broken_config_outsider_learns_nothing(make_plugin: Any, emulator: Any) -> None:
    # A value pasted into the wrong key must not reach a room that may not use the bot.
    pasted = "pasted-into-the-wrong-key-4f1c"
    running = await make_plugin(plugin_config(emulator, token_url=pasted))

    body = only_reply(await running.send("!token list", sender=OUTSIDER, room_id=OTHER_ROOM))["body"]

    assert "not allowed" in body
    assert pasted not in body
    assert emulator.requests == []


async def test_broken_whitelist_hides_other_values(make_plugin: Any, emulator: Any) -> None:
    # With the whitelist itself broken the core cannot tell who may see the
    # problems, so it names them, but it must not repeat other keys' values.
    pasted = "pasted-into-the-wrong-key-4f1c"
    running = await make_plugin(plugin_config(emulator, whitelist=ADMIN, token_url=pasted))

    body = only_reply(await running.send("!token list", sender=OUTSIDER, room_id=OTHER_ROOM))["body"]

    assert pasted not in body
    assert emulator.requests == []


async def test_config_fixed_twice_without_restart(make_plugin: Any, emulator: Any) -> None:
    emulator.add_token(token=WORKING_TOKEN)
    running = await make_plugin(plugin_config(emulator))
    plugin = running.plugin
    runner = running.plugin.runner

    await running.reconfigure(http_timeout="ten")
    broken = only_reply(await running.send("!token list"))["body"]
    await running.reconfigure(http_timeout=5)
    fixed = only_reply(await running.send("!token list"))["body"]

    assert "`http_timeout`" in broken
    assert WORKING_TOKEN in fixed
    assert running.plugin is plugin
    assert running.plugin.runner is runner
