"""The wasmtime engine: native code, fuel metering and a memory cap per Store.

Importing this module does not import wasmtime. probe() does, and reports why
wasmtime cannot be used, so that engine.py can fall back to pwasm.
"""

from __future__ import annotations

import importlib.metadata
import re
import threading
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
        try:
            self.module = wasmtime.Module(_engine(wasmtime), wasm)
        except wasmtime.WasmtimeError as error:
            raise EngineFault(f"the wasm module does not compile: {error}") from error
        check_no_imports([f"{item.module}.{item.name}" for item in self.module.imports])

    def instantiate(self) -> WasmtimeInstance:
        instance = WasmtimeInstance(self.module)
        instance.check_abi_version()
        return instance


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
