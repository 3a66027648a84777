"""Tests of ./worker mas-client: the printed snippets, the client ID, and --check against the MAS emulator."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.mas_emulator import MasEmulator
from tests.mas_emulator import ulids

sys.path.insert(0, str(ROOT / "tools"))
import standalone  # noqa: E402

# These tests run the core in subprocesses or only read the archive, so a
# second pass per engine would repeat them without testing anything new.
pytestmark = pytest.mark.single_engine

ADMIN_ID = "01JAYQ5R6M3T8V2N4K7W9X1Z0B"
ADMIN_SECRET = "admin-secret-Qm9vZ3Jvb3Q"
PLAIN_ID = "01JAYQ5R6M3T8V2N4K7W9X1Z0C"
PLAIN_SECRET = "plain-secret-c2Vjb25k"
BASE_URL = "https://auth.example.test"

HEADINGS = ("==> 1. MAS config", "==> 2. Plugin config", "==> 3. Apply the MAS change")


def run_worker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "worker"), "mas-client", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def split_sections(output: str) -> list[str]:
    """Return the text under each of the three headings, in order."""
    sections: list[list[str]] = []
    for line in output.splitlines():
        if line.startswith(HEADINGS):
            sections.append([])
        elif sections:
            sections[-1].append(line)
    return ["\n".join(lines) for lines in sections]


@pytest.fixture(scope="module")
def generated() -> tuple[subprocess.CompletedProcess, list[str]]:
    result = run_worker(BASE_URL)
    return result, split_sections(result.stdout)


def test_generation_exits_zero(generated) -> None:
    result, sections = generated
    assert result.returncode == 0, result.stderr
    assert len(sections) == 3, result.stdout


def test_snippets_parse_as_yaml(generated) -> None:
    _, sections = generated
    mas = yaml.safe_load(sections[0])
    plugin = yaml.safe_load(sections[1])
    assert isinstance(mas, dict)
    assert isinstance(plugin, dict)


def test_mas_snippet_client_entry(generated) -> None:
    _, sections = generated
    mas = yaml.safe_load(sections[0])

    clients = mas["clients"]
    assert len(clients) == 1
    client = clients[0]
    assert set(client) == {"client_id", "client_auth_method", "client_secret"}
    assert client["client_auth_method"] == "client_secret_basic"
    for forbidden in ("grants", "grant_types", "scope", "scopes"):
        assert forbidden not in client
        assert f"{forbidden}:" not in sections[0]

    assert mas["policy"]["data"]["admin_clients"] == [client["client_id"]]


def test_mas_snippet_exposes_adminapi(generated) -> None:
    _, sections = generated
    mas = yaml.safe_load(sections[0])
    listeners = mas["http"]["listeners"]
    resources = [resource["name"] for listener in listeners for resource in listener["resources"]]
    assert "adminapi" in resources
    assert "oauth" in resources
    assert "skip" in sections[0].lower()


def test_plugin_snippet_matches_mas_snippet(generated) -> None:
    _, sections = generated
    client = yaml.safe_load(sections[0])["clients"][0]
    plugin = yaml.safe_load(sections[1])

    assert plugin["client_id"] == client["client_id"]
    assert plugin["client_secret"] == client["client_secret"]
    assert plugin["token_url"] == f"{BASE_URL}/oauth2/token"
    assert plugin["admin_api"] == f"{BASE_URL}/api/admin"
    assert plugin["token_scope"] == "urn:mas:admin"


def test_plugin_snippet_keys_are_plugin_settings(generated) -> None:
    _, sections = generated
    plugin = yaml.safe_load(sections[1])
    base = yaml.safe_load((ROOT / "base-config.yaml").read_text(encoding="utf-8"))
    assert set(plugin) <= set(base)


def test_client_id_is_a_ulid(generated) -> None:
    _, sections = generated
    client_id = yaml.safe_load(sections[1])["client_id"]

    assert len(client_id) == 26
    assert ulids.canonical(client_id) == client_id
    assert client_id[0] in "01234567"
    # The time part is the generation time, in milliseconds.
    assert abs(ulids.timestamp_ms(client_id) - time.time() * 1000) < 10 * 60 * 1000


def test_secret_is_strong(generated) -> None:
    _, sections = generated
    secret = yaml.safe_load(sections[1])["client_secret"]
    # secrets.token_urlsafe(32) gives 43 URL-safe base64 characters.
    assert len(secret) >= 43
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_apply_section_names_config_sync(generated) -> None:
    _, sections = generated
    assert "mas-cli config sync" in sections[2]
    assert "systemctl restart" in sections[2]
    assert "docker compose" in sections[2]


def test_secret_not_on_stderr(generated) -> None:
    result, sections = generated
    secret = yaml.safe_load(sections[1])["client_secret"]
    assert secret not in result.stderr


def test_each_run_makes_new_credentials(generated) -> None:
    _, sections = generated
    first = yaml.safe_load(sections[1])
    second = yaml.safe_load(split_sections(run_worker(BASE_URL).stdout)[1])
    assert second["client_id"] != first["client_id"]
    assert second["client_secret"] != first["client_secret"]


def test_default_url_has_placeholder_note() -> None:
    result = run_worker()
    assert result.returncode == 0, result.stderr
    plugin_section = split_sections(result.stdout)[1]
    assert "https://mas.example.org/oauth2/token" in plugin_section
    assert "placeholder" in plugin_section


def test_invalid_base_url_rejected() -> None:
    result = run_worker("ftp://mas.example.test")
    assert result.returncode == 2
    assert "invalid MAS base URL" in result.stderr
    assert result.stdout == ""


def test_write_config_is_private(tmp_path: Path) -> None:
    target = tmp_path / "plugin.yaml"
    result = run_worker(BASE_URL, "--write-config", str(target))
    assert result.returncode == 0, result.stderr

    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == 0o600
    written = yaml.safe_load(target.read_text(encoding="utf-8"))
    printed = yaml.safe_load(split_sections(result.stdout)[1])
    assert written == printed


def test_write_config_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "plugin.yaml"
    target.write_text("keep: me\n", encoding="utf-8")
    result = run_worker(BASE_URL, "--write-config", str(target))
    assert result.returncode == 1
    assert "already exists" in result.stderr
    assert target.read_text(encoding="utf-8") == "keep: me\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0" * 26),
        ((1 << 128) - 1, "7" + "Z" * 25),
        (1 << 80, "0000000001" + "0" * 16),
    ],
)
def test_encode_ulid_known_values(value: int, expected: str) -> None:
    assert standalone.encode_ulid(value) == expected


def test_new_ulid_keeps_time() -> None:
    ulid = standalone.new_ulid(1_700_000_000_123)
    assert ulids.timestamp_ms(ulid) == 1_700_000_000_123
    assert ulids.canonical(ulid) == ulid


# --check against the emulator.

@pytest.fixture
def wasm_file(built_plugin, tmp_path: Path) -> Path:
    """The session's built core as a file, so that --check runs it instead of building."""
    path = tmp_path / "mas_token_core.wasm"
    path.write_bytes(built_plugin.wasm)
    return path


async def run_check(config: dict[str, Any], tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    """Write `config` as a plugin config file and run mas_client.py --check on it with the built core."""
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    extra = ("--wasm", str(tmp_path / "mas_token_core.wasm"), *extra)
    process = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "python"),
        str(ROOT / "tools" / "mas_client.py"),
        "--check",
        str(path),
        *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, stdout.decode(), stderr.decode()


def check_config(emulator: MasEmulator, client_id: str, client_secret: str, **overrides: Any) -> dict[str, Any]:
    config = {
        "admin_api": f"{emulator.base_url}/api/admin",
        "token_url": emulator.token_url,
        "client_id": client_id,
        "client_secret": client_secret,
        "http_timeout": 5,
    }
    config.update(overrides)
    return config


@pytest.fixture
async def check_emulator(wasm_file: Path):
    """An emulator with an admin client, a client outside admin_clients, two valid tokens and a revoked one."""
    emulator = MasEmulator(client_id=ADMIN_ID, client_secret=ADMIN_SECRET, clients=[(PLAIN_ID, PLAIN_SECRET, False)])
    await emulator.start()
    emulator.seed_tokens(2)
    emulator.add_token(revoked=True)
    try:
        yield emulator
    finally:
        await emulator.stop()


def assert_no_credentials(emulator: MasEmulator, *texts: str) -> None:
    for text in texts:
        assert ADMIN_SECRET not in text
        assert PLAIN_SECRET not in text
        for issued in emulator.issued_access_tokens:
            assert issued.token not in text


async def test_check_passes_with_good_config(check_emulator: MasEmulator, tmp_path: Path) -> None:
    status, stdout, stderr = await run_check(check_config(check_emulator, ADMIN_ID, ADMIN_SECRET), tmp_path)

    assert status == 0, stdout + stderr
    assert "2 valid registration tokens" in stdout
    assert "❌" not in stdout
    assert len(check_emulator.issued_access_tokens) == 1
    assert_no_credentials(check_emulator, stdout, stderr)


async def test_check_wrong_secret_names_fix(check_emulator: MasEmulator, tmp_path: Path) -> None:
    config = check_config(check_emulator, ADMIN_ID, "not-the-secret")
    status, stdout, stderr = await run_check(config, tmp_path)

    assert status == 1
    assert "invalid_client" in stdout
    assert "client_secret" in stdout
    assert "mas-cli config sync" in stdout
    assert "not-the-secret" not in stdout + stderr
    assert check_emulator.issued_access_tokens == []


async def test_check_non_admin_client_names_fix(check_emulator: MasEmulator, tmp_path: Path) -> None:
    config = check_config(check_emulator, PLAIN_ID, PLAIN_SECRET)
    status, stdout, stderr = await run_check(config, tmp_path)

    assert status == 1
    assert "invalid_scope" in stdout
    assert "policy.data.admin_clients" in stdout
    assert_no_credentials(check_emulator, stdout, stderr)


async def test_check_wrong_admin_api_names_fix(check_emulator: MasEmulator, tmp_path: Path) -> None:
    config = check_config(check_emulator, ADMIN_ID, ADMIN_SECRET, admin_api=f"{check_emulator.base_url}/wrong/api/admin")
    status, stdout, stderr = await run_check(config, tmp_path, "--verbose")

    assert status == 1
    assert "404" in stdout
    assert "adminapi" in stdout
    assert "admin_api" in stdout
    # --verbose shows the plugin's log, which must not leak credentials either.
    assert stderr != ""
    assert_no_credentials(check_emulator, stdout, stderr)


async def test_check_unreachable_token_endpoint(wasm_file: Path, tmp_path: Path) -> None:
    # A port that was free a moment ago, so nothing listens on it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {
        "admin_api": f"http://127.0.0.1:{port}/api/admin",
        "token_url": f"http://127.0.0.1:{port}/oauth2/token",
        "client_id": ADMIN_ID,
        "client_secret": ADMIN_SECRET,
    }
    status, stdout, stderr = await run_check(config, tmp_path)

    assert status == 1
    assert "Token endpoint reachable" in stdout
    assert "token_url" in stdout
    assert ADMIN_SECRET not in stdout + stderr


async def test_check_missing_file(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "python"),
        str(ROOT / "tools" / "mas_client.py"),
        "--check",
        str(tmp_path / "absent.yaml"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 1
    assert "cannot read the plugin config" in stderr.decode()
