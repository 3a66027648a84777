"""Tests of the pwasm fallback: engine selection without wasmtime, the warning, and the bundled copy."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import pytest

from mas_token_bot import engine
from mas_token_bot.core import Core
from mas_token_bot.protocol import HttpResponse

from .conftest import ADMIN, OPS_ROOM, BuiltPlugin, LogCapture, plugin_config, start_plugin
from .test_engine import CONFIG, NOW_MS

INSTALL_COMMAND = "pip install wasmtime==51.0.0"
DOCKER_FROM = "FROM dock.mau.dev/maubot/maubot:latest"
DOCKER_RUN = "RUN pip3 install --break-system-packages wasmtime==51.0.0"


@pytest.fixture
def without_wasmtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make `import wasmtime` fail and let the next compile_module detect the engine anew."""
    monkeypatch.setitem(sys.modules, "wasmtime", None)
    engine.force_engine(None)
    engine.reset_engine_selection()
    yield
    engine.reset_engine_selection()


def _capture(name: str) -> tuple[logging.Logger, LogCapture]:
    log = logging.getLogger(name)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    capture = LogCapture()
    log.addHandler(capture)
    return log, capture


@pytest.mark.single_engine
def test_missing_wasmtime_selects_fallback(built_plugin: BuiltPlugin, without_wasmtime: None) -> None:
    log, capture = _capture("test.fallback.select")

    first = engine.compile_module(built_plugin.wasm, log)
    second = engine.compile_module(built_plugin.wasm, log)
    warnings = capture.at_level(logging.WARNING)

    assert first is second
    assert first.engine == engine.ENGINE_FALLBACK
    assert len(warnings) == 1
    assert "importing wasmtime failed" in warnings[0]
    assert INSTALL_COMMAND in warnings[0]
    assert DOCKER_FROM in warnings[0]
    assert DOCKER_RUN in warnings[0]


@pytest.mark.single_engine
def test_missing_wasmtime_core_runs_commands(built_plugin: BuiltPlugin, without_wasmtime: None) -> None:
    log, _ = _capture("test.fallback.core")
    core = Core(engine.compile_module(built_plugin.wasm, log), log)

    assert core.configure(CONFIG).problems == []
    started = core.start(NOW_MS, ADMIN, OPS_ROOM, "!token list")

    assert started.step.kind == "http"
    assert started.step.request.url == CONFIG["token_url"]


@pytest.mark.single_engine
def test_fallback_core_uses_small_pages(built_plugin: BuiltPlugin, without_wasmtime: None) -> None:
    log, _ = _capture("test.fallback.pages")
    core = Core(engine.compile_module(built_plugin.wasm, log), log)
    core.configure(CONFIG)

    started = core.start(NOW_MS, ADMIN, OPS_ROOM, "!token list")
    granted = HttpResponse(
        status=200,
        content_type="application/json",
        body=json.dumps({"token_type": "Bearer", "expires_in": 300}),
        retry_after=None,
        access_token_stored=True,
    )
    step = core.resume(started.command, NOW_MS, granted)

    assert step.kind == "http"
    assert step.request.url.endswith("page%5Bfirst%5D=30"), step.request.url


def test_old_wasmtime_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    from mas_token_bot import engine_wasmtime

    monkeypatch.setattr(engine_wasmtime, "_installed_version", lambda: "19.0.0")

    version, reason = engine_wasmtime.probe()

    assert version == "19.0.0"
    assert reason is not None
    assert "needs version 20 or later" in reason


def test_broken_wasmtime_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    import wasmtime

    from mas_token_bot import engine_wasmtime

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("Error loading shared library libc.so.6: No such file or directory")

    monkeypatch.setattr(wasmtime, "Store", broken)

    _, reason = engine_wasmtime.probe()

    assert reason is not None
    assert "failed to run a test module" in reason
    assert "libc.so.6" in reason


@pytest.mark.single_engine
async def test_plugin_without_wasmtime_works(plugin_dir: Path, emulator: Any, http_session: aiohttp.ClientSession,
                                             without_wasmtime: None) -> None:
    first = await start_plugin(plugin_dir, plugin_config(emulator), http_session)
    second = await start_plugin(plugin_dir, plugin_config(emulator), http_session)
    try:
        replies = await first.send("!token generate")
        warnings = [
            message for running in (first, second) for message in running.log.at_level(logging.WARNING)
            if "wasmtime is not usable" in message
        ]
        started = [message for message in first.log.at_level(logging.INFO) if "Started the wasm core" in message]

        assert len(replies) == 1
        assert "internal error" not in replies[0]["body"].lower()
        assert len(emulator.tokens) == 1
        assert len(warnings) == 1
        assert INSTALL_COMMAND in warnings[0]
        assert len(started) == 1
        assert "fallback engine (pwasm" in started[0]
    finally:
        await first.stop()
        await second.stop()


@pytest.mark.single_engine
def test_archive_bundles_pwasm(built_plugin: BuiltPlugin) -> None:
    with zipfile.ZipFile(built_plugin.mbp) as archive:
        names = set(archive.namelist())
        license_text = archive.read("mas_token_bot/_vendor/pwasm-LICENSE").decode("utf-8")
        vendor_init = archive.read("mas_token_bot/_vendor/__init__.py").decode("utf-8")

    assert "mas_token_bot/_vendor/pwasm/__init__.py" in names
    assert "mas_token_bot/_vendor/pwasm/codegen.py" in names
    assert not any(name.startswith("mas_token_bot/_vendor/pwasm/guests/") for name in names)
    assert "Apache License" in license_text
    assert "Version 2.0" in license_text
    assert "PWASM_VERSION = '0.2a0'" in vendor_init


@pytest.mark.single_engine
def test_archive_runs_without_wasmtime_or_pwasm(built_plugin: BuiltPlugin, tmp_path: Path) -> None:
    # Import the plugin from the .mbp with zipimport, as maubot's
    # ZippedPluginLoader does, in a fresh interpreter where neither wasmtime
    # nor an installed pwasm can be imported: only the bundled copy remains.
    script = textwrap.dedent(
        f"""
        import json, logging, sys, zipimport
        sys.modules["wasmtime"] = None
        sys.modules["pwasm"] = None
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        zipimport.zipimporter({str(built_plugin.mbp)!r}).load_module("mas_token_bot")
        from mas_token_bot import engine
        from mas_token_bot.core import Core
        from mas_token_bot.engine_fallback import load_pwasm
        import zipfile
        wasm = zipfile.ZipFile({str(built_plugin.mbp)!r}).read("mas_token_core.wasm")
        core = Core(engine.compile_module(wasm, logging.getLogger("plugin")), logging.getLogger("plugin"))
        problems = core.configure(json.loads(sys.argv[1])).problems
        started = core.start({NOW_MS}, {ADMIN!r}, {OPS_ROOM!r}, "!token list")
        print("PWASM", load_pwasm()[0].__file__)
        print("RESULT", json.dumps([problems, started.step.kind, started.step.request.url]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, json.dumps(CONFIG)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert f"PWASM {built_plugin.mbp}" in result.stdout
    assert f'RESULT [[], "http", "{CONFIG["token_url"]}"]' in result.stdout
    assert result.stderr.count("wasmtime is not usable") == 1
    assert INSTALL_COMMAND in result.stderr
