"""Tests of the wasm engine wrapper and the core's JSON operations, using the built .wasm."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import wasmtime

from mas_token_bot import engine, engine_wasmtime
from mas_token_bot.core import Core
from mas_token_bot.engine import AbiVersionError, CompiledModule, EngineFault, compile_module
from mas_token_bot.protocol import CoreError, HttpResponse

from .conftest import ADMIN, BuiltPlugin, CLIENT_ID, CLIENT_SECRET, OPS_ROOM, OUTSIDER, OTHER_ROOM

NOW_MS = 1_764_878_824_000

CONFIG = {
    "admin_api": "http://127.0.0.1:9/api/admin",
    "token_url": "http://127.0.0.1:9/oauth2/token",
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "token_scope": "urn:mas:admin",
    "default_uses_allowed": 1,
    "default_expiry_time": 604800,
    "base_command": "token",
    "whitelist": [ADMIN],
    "room_whitelist": [OPS_ROOM],
    "http_timeout": 10,
}

TOKEN_RESPONSE = HttpResponse(
    status=200,
    content_type="application/json",
    body=json.dumps({"token_type": "Bearer", "expires_in": 300, "scope": "urn:mas:admin"}),
    retry_after=None,
    access_token_stored=True,
)

EMPTY_PAGE = HttpResponse(
    status=200,
    content_type="application/json",
    body=json.dumps({"meta": {"count": 0}, "data": [], "links": {"self": "/api/admin/v1/user-registration-tokens"}}),
    retry_after=None,
    access_token_stored=False,
)


@pytest.fixture
def core(built_plugin: BuiltPlugin) -> Core:
    configured = Core(compile_module(built_plugin.wasm), logging.getLogger("test.engine"))
    result = configured.configure(CONFIG)
    assert result.problems == []
    return configured


def _module_from_wat(text: str) -> CompiledModule:
    # wasmtime here only assembles the text format, for either engine.
    return compile_module(wasmtime.wat2wasm(text))


def test_module_imports_nothing(built_plugin: BuiltPlugin) -> None:
    module = wasmtime.Module(wasmtime.Engine(), built_plugin.wasm)

    assert [f"{item.module}.{item.name}" for item in module.imports] == []


def test_module_exports_boundary(built_plugin: BuiltPlugin) -> None:
    module = wasmtime.Module(wasmtime.Engine(), built_plugin.wasm)
    names = {item.name for item in module.exports}

    assert {"memory", "abi_version", "alloc", "dealloc", "call"} <= names


def test_module_compiled_once(built_plugin: BuiltPlugin) -> None:
    first = compile_module(built_plugin.wasm)
    second = compile_module(bytes(built_plugin.wasm))

    assert first is second


def test_module_uses_forced_engine(built_plugin: BuiltPlugin, wasm_engine: str) -> None:
    module = compile_module(built_plugin.wasm)

    assert module.engine == wasm_engine
    assert module.engine_version != ""


def test_abi_version_matches_shim(built_plugin: BuiltPlugin) -> None:
    instance = compile_module(built_plugin.wasm).instantiate()

    assert instance._invoke("abi_version") == 2


def test_wrapper_accepts_built_module(built_plugin: BuiltPlugin, wasm_engine: str) -> None:
    instance = compile_module(built_plugin.wasm).instantiate()
    response = json.loads(instance.call(b'{"abi": 2, "op": "cancel", "command": 1}'))
    budget = engine.FUEL_PER_CALL
    if wasm_engine == engine.ENGINE_FALLBACK:
        budget //= engine.FALLBACK_FUEL_DIVISOR

    assert set(response) <= {"ok", "error"}
    assert 0 < instance.last_call_fuel < budget


def test_configure_reports_missing_admin_api(built_plugin: BuiltPlugin) -> None:
    fresh = Core(compile_module(built_plugin.wasm), logging.getLogger("test.engine"))

    result = fresh.configure({**CONFIG, "admin_api": ""})

    assert result.base_command == "token"
    assert len(result.problems) >= 1
    assert any("admin_api" in problem for problem in result.problems)


def test_start_ignores_plain_chat(core: Core) -> None:
    started = core.start(NOW_MS, ADMIN, OPS_ROOM, "hello everyone")

    assert started.command is None
    assert started.step.kind == "ignore"


def test_list_runs_token_then_admin_request(core: Core) -> None:
    started = core.start(NOW_MS, ADMIN, OPS_ROOM, "!token list")

    assert started.command is not None
    assert started.step.kind == "http"
    token_request = started.step.request
    assert token_request.method == "POST"
    assert token_request.url == CONFIG["token_url"]
    assert token_request.auth == "client"
    assert token_request.timeout_ms == 10_000
    assert "grant_type=client_credentials" in (token_request.body or "")
    assert CLIENT_SECRET not in json.dumps(token_request.__dict__)

    step = core.resume(started.command, NOW_MS + 50, TOKEN_RESPONSE)

    assert step.kind == "http"
    assert step.request.method == "GET"
    assert step.request.auth == "bearer"
    assert step.request.url.startswith(CONFIG["admin_api"] + "/v1/user-registration-tokens")

    # The core may read several list pages, such as valid and then invalid
    # tokens. An empty page answers each of them.
    for _ in range(5):
        if step.kind != "http":
            break
        assert step.request.method == "GET"
        step = core.resume(started.command, NOW_MS + 100, EMPTY_PAGE)

    assert step.kind == "reply"
    assert step.reply.error is False
    assert step.reply.body != ""


def test_resume_unknown_command_is_core_error(core: Core) -> None:
    with pytest.raises(CoreError):
        core.resume(987_654, NOW_MS, EMPTY_PAGE)


def test_outsider_refused_without_request(core: Core) -> None:
    started = core.start(NOW_MS, OUTSIDER, OTHER_ROOM, "!token list")

    assert started.step.kind == "reply"
    assert "not allowed" in started.step.reply.body
    assert started.step.reply.error is True


def test_cancel_forgets_command(core: Core) -> None:
    started = core.start(NOW_MS, ADMIN, OPS_ROOM, "!token list")
    core.cancel(started.command)

    with pytest.raises(CoreError):
        core.resume(started.command, NOW_MS, TOKEN_RESPONSE)


def test_fuel_exhaustion_is_fault_then_rebuilt(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "FUEL_PER_CALL", 50)

    with pytest.raises(EngineFault, match="fuel"):
        core.start(NOW_MS, ADMIN, OPS_ROOM, "!token list")

    monkeypatch.undo()
    started = core.start(NOW_MS, ADMIN, OPS_ROOM, "!token list")

    # The rebuilt instance kept the config: a whitelisted command gets its token request.
    assert started.step.kind == "http"
    assert started.step.request.url == CONFIG["token_url"]


def test_memory_limit_is_fault_then_rebuilt(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    # A new instance under a 4 MiB cap cannot allocate room for an 8 MiB request.
    monkeypatch.setattr(engine, "MEMORY_LIMIT_BYTES", 4 * 1024 * 1024)
    small = Core(core._module, logging.getLogger("test.engine"))
    small.configure(CONFIG)
    huge_body = "!token list " + "x" * (8 * 1024 * 1024)

    with pytest.raises(EngineFault):
        small.start(NOW_MS, ADMIN, OPS_ROOM, huge_body)

    started = small.start(NOW_MS, ADMIN, OPS_ROOM, "!token list")

    assert started.step.kind == "http"


def test_out_of_bounds_input_traps(built_plugin: BuiltPlugin) -> None:
    # Hand `call` a buffer that lies past the end of linear memory: the guest's
    # first read of it must trap, and the wrapper must turn that into EngineFault.
    instance = compile_module(built_plugin.wasm).instantiate()

    with pytest.raises(EngineFault, match="out of bounds"):
        instance._invoke("call", -64, 32)


def test_wrong_abi_version_rejected() -> None:
    module = _module_from_wat(
        """
        (module
          (memory (export "memory") 1)
          (func (export "abi_version") (result i32) i32.const 1)
          (func (export "alloc") (param i32) (result i32) i32.const 8)
          (func (export "dealloc") (param i32 i32))
          (func (export "call") (param i32 i32) (result i64) i64.const 0))
        """
    )

    with pytest.raises(AbiVersionError, match="ABI version 1"):
        module.instantiate()


def test_buffer_past_memory_end_rejected() -> None:
    # `call` returns out_ptr = 65000, out_len = 4096: past the end of one 64 KiB page.
    module = _module_from_wat(
        """
        (module
          (memory (export "memory") 1)
          (func (export "abi_version") (result i32) i32.const 2)
          (func (export "alloc") (param i32) (result i32) i32.const 8)
          (func (export "dealloc") (param i32 i32))
          (func (export "call") (param i32 i32) (result i64)
            i64.const 279172874240000
            i64.const 4096
            i64.or))
        """
    )
    instance = module.instantiate()

    with pytest.raises(EngineFault, match="past the end"):
        instance.call(b'{"abi":2,"op":"cancel","command":1}')


def test_module_with_imports_rejected() -> None:
    wasm = wasmtime.wat2wasm(
        """
        (module
          (import "env" "now" (func (result i64)))
          (memory (export "memory") 1))
        """
    )

    with pytest.raises(EngineFault, match="env.now"):
        compile_module(wasm)


@pytest.mark.single_engine
def test_compiled_core_is_cached_on_disk(built_plugin: BuiltPlugin, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv(engine_wasmtime.CACHE_DIR_ENV, str(folder))

    first = engine_wasmtime.WasmtimeModule(built_plugin.wasm)
    second = engine_wasmtime.WasmtimeModule(built_plugin.wasm)
    cached = list(folder.iterdir())

    assert not first.from_cache
    assert second.from_cache
    assert len(cached) == 1
    assert cached[0].stat().st_mode & 0o077 == 0
    assert folder.stat().st_mode & 0o077 == 0
    assert json.loads(second.instantiate().call(b'{"abi": 2, "op": "cancel", "command": 1}')) == {"ok": {}}


@pytest.mark.single_engine
def test_shared_cache_folder_is_not_used(built_plugin: BuiltPlugin, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    monkeypatch.setenv(engine_wasmtime.CACHE_DIR_ENV, str(folder))

    engine_wasmtime.WasmtimeModule(built_plugin.wasm)
    second = engine_wasmtime.WasmtimeModule(built_plugin.wasm)

    assert not second.from_cache
    assert list(folder.iterdir()) == []


@pytest.mark.single_engine
def test_corrupt_cached_core_is_recompiled(built_plugin: BuiltPlugin, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv(engine_wasmtime.CACHE_DIR_ENV, str(folder))
    engine_wasmtime.WasmtimeModule(built_plugin.wasm)
    cached = next(folder.iterdir())
    cached.write_bytes(b"not a compiled module")

    module = engine_wasmtime.WasmtimeModule(built_plugin.wasm)

    assert not module.from_cache
    assert json.loads(module.instantiate().call(b'{"abi": 2, "op": "cancel", "command": 1}')) == {"ok": {}}


@pytest.mark.single_engine
def test_configure_hides_secret_and_names_nan(built_plugin: BuiltPlugin) -> None:
    from mas_token_bot.config import _plain

    core = Core(compile_module(built_plugin.wasm), logging.getLogger("test.engine"))
    sent: list[bytes] = []
    instance = core._instance
    original = instance.call

    def recording_call(request: bytes) -> bytes:
        sent.append(request)
        return original(request)

    instance.call = recording_call  # type: ignore[method-assign]
    config = {**CONFIG, "client_secret": 123456789012345, "http_timeout": _plain(float("nan"))}

    problems = core.configure(config).problems

    assert b"123456789012345" not in b"".join(sent)
    assert any("`client_secret` must be a string" in problem for problem in problems), problems
    assert any("`http_timeout`" in problem for problem in problems), problems
