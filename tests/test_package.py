"""Tests of the .mbp archive that tools/build.sh writes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from typing import Iterator

import pytest
from maubot import Plugin
from maubot.loader.abc import PluginLoader
from maubot.loader.zip import ZippedPluginLoader

from .conftest import ROOT, WASM_NAME, BuiltPlugin

# These tests run the core in subprocesses or only read the archive, so a
# second pass per engine would repeat them without testing anything new.
pytestmark = pytest.mark.single_engine

PREBUILT = bool(os.environ.get("MAS_TOKEN_BOT_MBP"))


def _expected_files() -> set[str]:
    package = ROOT / "python-shim" / "mas_token_bot"
    modules = {f"mas_token_bot/{path.name}" for path in package.glob("*.py")}
    return {"maubot.yaml", "base-config.yaml", WASM_NAME} | modules


VENDOR = "mas_token_bot/_vendor/"


@pytest.fixture
def isolated_imports() -> Iterator[None]:
    """Undo what ZippedPluginLoader does to sys.modules and its class-level caches.

    Loading the archive imports mas_token_bot from the zip under the same name
    as the source tree's package, which the other tests keep using.
    """
    saved_modules = {name: module for name, module in sys.modules.items() if name.startswith("mas_token_bot")}
    saved_ids = dict(PluginLoader.id_cache)
    saved_paths = dict(ZippedPluginLoader.path_cache)
    yield

    for name in [name for name in sys.modules if name.startswith("mas_token_bot")]:
        del sys.modules[name]
    sys.modules.update(saved_modules)
    PluginLoader.id_cache.clear()
    PluginLoader.id_cache.update(saved_ids)
    ZippedPluginLoader.path_cache.clear()
    ZippedPluginLoader.path_cache.update(saved_paths)


def test_archive_holds_expected_files(built_plugin: BuiltPlugin) -> None:
    with zipfile.ZipFile(built_plugin.mbp) as archive:
        names = set(archive.namelist())

    vendored = {name for name in names if name.startswith(VENDOR)}
    pwasm_modules = {name for name in vendored if name.startswith(VENDOR + "pwasm/")}

    assert names - vendored == _expected_files()
    assert VENDOR + "__init__.py" in vendored
    assert VENDOR + "pwasm-LICENSE" in vendored
    assert VENDOR + "pwasm/__init__.py" in pwasm_modules
    assert all(name.endswith(".py") and name.count("/") == 3 for name in pwasm_modules), pwasm_modules
    assert vendored - pwasm_modules == {
        VENDOR + "__init__.py",
        VENDOR + "pwasm-LICENSE",
        *(name for name in vendored if name.startswith(VENDOR + "pwasm-") and name.endswith(".METADATA")),
    }


def test_archive_entries_sorted_and_dated(built_plugin: BuiltPlugin) -> None:
    with zipfile.ZipFile(built_plugin.mbp) as archive:
        infos = archive.infolist()

    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.skipif(PREBUILT, reason="MAS_TOKEN_BOT_MBP names an archive built elsewhere")
def test_archive_wasm_matches_cargo_output(built_plugin: BuiltPlugin) -> None:
    cargo_output = ROOT / "target" / "wasm32-unknown-unknown" / "release" / WASM_NAME

    assert cargo_output.is_file()
    assert built_plugin.wasm[:4] == b"\0asm"
    # wasm-opt, when installed, rewrites the module, so only compare without it.
    if subprocess.run(["sh", "-c", "command -v wasm-opt"], capture_output=True).returncode != 0:
        assert built_plugin.wasm == cargo_output.read_bytes()


async def test_zipped_loader_loads_plugin(built_plugin: BuiltPlugin, isolated_imports: None) -> None:
    loader = ZippedPluginLoader(str(built_plugin.mbp))

    assert loader.meta.id == "io.github.mastokenbot"
    assert loader.main_module == "mas_token_bot"
    assert loader.main_class == "MasTokenBot"

    plugin_class = await loader.load()

    assert plugin_class.__name__ == "MasTokenBot"
    assert issubclass(plugin_class, Plugin)
    assert sys.modules["mas_token_bot"].__file__.startswith(str(built_plugin.mbp))
    assert await loader.read_file(WASM_NAME) == built_plugin.wasm
    assert await loader.read_file("base-config.yaml") == (ROOT / "base-config.yaml").read_bytes()


def test_zipped_loader_verify_meta(built_plugin: BuiltPlugin) -> None:
    plugin_id, version, database = ZippedPluginLoader.verify_meta(str(built_plugin.mbp))

    assert plugin_id == "io.github.mastokenbot"
    assert str(version) == "0.1.0"
    assert database is None


@pytest.mark.skipif(PREBUILT, reason="MAS_TOKEN_BOT_MBP names an archive built elsewhere")
def test_build_is_reproducible(built_plugin: BuiltPlugin) -> None:
    before = hashlib.sha256(built_plugin.mbp.read_bytes()).hexdigest()

    result = subprocess.run([str(ROOT / "worker"), "build"], cwd=ROOT, capture_output=True, text=True, timeout=900)

    assert result.returncode == 0, result.stderr
    assert str(built_plugin.mbp) in result.stdout
    assert hashlib.sha256(built_plugin.mbp.read_bytes()).hexdigest() == before
