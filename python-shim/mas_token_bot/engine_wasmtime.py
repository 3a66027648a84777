"""The wasmtime engine: native code, fuel metering and a memory cap per Store.

Importing this module does not import wasmtime. probe() does, and reports why
wasmtime cannot be used, so that engine.py can fall back to pwasm.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

from . import engine
from .engine import CompiledModule, EngineFault, WasmInstance, check_no_imports

# A module with one export, `f`, that returns the i32 1:
# (module (func (export "f") (result i32) i32.const 1))
_PROBE_MODULE = bytes.fromhex(
    "0061736d01000000"  # magic and version 1
    "010501600001" "7f"  # type section: () -> i32
    "03020100"  # function section: one function of type 0
    "070501016600" "00"  # export section: "f" is function 0
    "0a060104004101" "0b"  # code section: i32.const 1, end
)

_engine_lock = threading.Lock()
_shared_engine: Any = None

_log = logging.getLogger(__name__)

# Overrides where compiled modules are cached; an empty value turns the cache off.
CACHE_DIR_ENV = "MAS_TOKEN_BOT_CACHE_DIR"


def probe() -> tuple[str, Optional[str]]:
    """Import wasmtime and run a tiny module with fuel and a memory cap.

    Return (version, None) when wasmtime works here, or (version, reason) with
    the reason it does not: not installed, older than WASMTIME_MIN_MAJOR, or
    failing on this platform (for example the glibc wheel on musl).
    """
    try:
        import wasmtime
    except Exception as error:  # noqa: BLE001 - a broken native library raises OSError or others
        return "none", f"importing wasmtime failed: {type(error).__name__}: {error}"

    version = _installed_version()
    major = _major(version)
    if major is not None and major < engine.WASMTIME_MIN_MAJOR:
        return version, (
            f"wasmtime {version} is installed, but this plugin needs version "
            f"{engine.WASMTIME_MIN_MAJOR} or later"
        )

    try:
        store = wasmtime.Store(_engine(wasmtime))
        store.set_limits(memory_size=engine.MEMORY_LIMIT_BYTES)
        store.set_fuel(1_000)
        instance = wasmtime.Instance(store, wasmtime.Module(store.engine, _PROBE_MODULE), [])
        result = instance.exports(store)["f"](store)
    except Exception as error:  # noqa: BLE001 - any failure here means wasmtime is unusable
        return version, f"wasmtime {version} failed to run a test module: {type(error).__name__}: {error}"
    if result != 1:
        return version, f"wasmtime {version} returned {result!r} from a test module that returns 1"
    return version, None


def _installed_version() -> str:
    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _major(version: str) -> Optional[int]:
    match = re.match(r"(\d+)\.", version)
    return int(match.group(1)) if match else None


def _engine(wasmtime: Any) -> Any:
    """Return the process-wide wasmtime Engine with fuel metering on."""
    global _shared_engine

    with _engine_lock:
        if _shared_engine is None:
            config = wasmtime.Config()
            config.consume_fuel = True
            _shared_engine = wasmtime.Engine(config)
        return _shared_engine


class WasmtimeModule(CompiledModule):
    """The core compiled to native code by wasmtime."""

    engine = engine.ENGINE_WASMTIME

    def __init__(self, wasm: bytes) -> None:
        import wasmtime

        self.engine_version = _installed_version()
        self.from_cache = False
        cache = _cache_path(wasm, self.engine_version)

        if cache is not None:
            self.module = _load_cached(wasmtime, cache)
            self.from_cache = self.module is not None
        if not self.from_cache:
            try:
                self.module = wasmtime.Module(_engine(wasmtime), wasm)
            except wasmtime.WasmtimeError as error:
                raise EngineFault(f"the wasm module does not compile: {error}") from error
            if cache is not None:
                _store_cached(self.module, cache)

        check_no_imports([f"{item.module}.{item.name}" for item in self.module.imports])

    def instantiate(self) -> WasmtimeInstance:
        instance = WasmtimeInstance(self.module)
        instance.check_abi_version()
        return instance


def _cache_dir() -> Optional[Path]:
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured is not None:
        return Path(configured) if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mas-token-bot"


def _cache_path(wasm: bytes, version: str) -> Optional[Path]:
    """Return where the compiled module is cached, or None when no private cache folder is usable.

    Loading a cached module runs the native code in it, so the folder must
    belong to this user, and no other user may write to it.
    """
    folder = _cache_dir()
    if folder is None:
        return None

    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError as error:
        _log.debug("Not caching the compiled core: %s is not usable (%s)", folder, error)
        return None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        _log.warning(
            "Not caching the compiled core in %s: the folder must belong to this user and be "
            "writable only by it (chmod 700)", folder,
        )
        return None

    digest = hashlib.sha256(wasm).hexdigest()[:32]
    return folder / f"core-{digest}-wasmtime-{version}.cwasm"


def _load_cached(wasmtime: Any, path: Path) -> Any:
    """Return the module cached at `path`, or None when there is no usable one."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as error:
        _log.debug("Cannot read the cached core %s: %s", path, error)
        return None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        _log.warning("Ignoring the cached core %s: it must belong to this user and not be writable by others", path)
        return None

    try:
        return wasmtime.Module.deserialize_file(_engine(wasmtime), str(path))
    except Exception as error:  # noqa: BLE001 - a stale or foreign file is recompiled
        _log.info("Recompiling the core: the cached copy %s cannot be loaded (%s)", path, error)
        return None


def _store_cached(module: Any, path: Path) -> None:
    """Write `module` to `path` atomically, readable and writable by this user only."""
    try:
        data = module.serialize()
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".core-", suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except Exception as error:  # noqa: BLE001 - the cache only saves time; compiling works without it
        _log.debug("Not caching the compiled core at %s: %s", path, error)


class WasmtimeInstance(WasmInstance):
    """One wasmtime Store and Instance of the core."""

    def __init__(self, module: Any) -> None:
        import wasmtime

        self._wasmtime = wasmtime
        self._store = wasmtime.Store(_engine(wasmtime))
        self._store.set_limits(memory_size=engine.MEMORY_LIMIT_BYTES)
        self._store.set_fuel(engine.FUEL_PER_CALL)

        try:
            instance = wasmtime.Instance(self._store, module, [])
        except (wasmtime.Trap, wasmtime.WasmtimeError) as error:
            raise EngineFault(f"instantiating the wasm module failed: {error}") from error

        exports = instance.exports(self._store)
        self._memory = self._export(exports, "memory", wasmtime.Memory)
        self._funcs = {
            name: self._export(exports, name, wasmtime.Func)
            for name in ("abi_version", "alloc", "dealloc", "call")
        }

    @staticmethod
    def _export(exports: Any, name: str, kind: type) -> Any:
        try:
            item = exports[name]
        except KeyError:
            raise EngineFault(f"the wasm module has no export named {name!r}") from None
        if not isinstance(item, kind):
            raise EngineFault(f"the wasm export {name!r} is not a {kind.__name__}")
        return item

    def _invoke(self, name: str, *args: int) -> int:
        budget = engine.FUEL_PER_CALL
        self._store.set_fuel(budget)
        try:
            return self._funcs[name](self._store, *args)
        except (self._wasmtime.Trap, self._wasmtime.WasmtimeError) as error:
            raise EngineFault(f"the wasm core trapped: {error}") from error
        finally:
            if name == "call":
                self.last_call_fuel = budget - self._store.get_fuel()

    def _memory_size(self) -> int:
        return self._memory.data_len(self._store)

    def _memory_read(self, ptr: int, length: int) -> bytes:
        return bytes(self._memory.read(self._store, ptr, ptr + length))

    def _memory_write(self, ptr: int, data: bytes) -> None:
        self._memory.write(self._store, data, ptr)
