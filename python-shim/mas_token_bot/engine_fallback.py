"""The fallback engine: the pure-Python WebAssembly interpreter pwasm.

tools/build.sh bundles a pinned pwasm release as mas_token_bot/_vendor/pwasm
inside the .mbp. In a development checkout, where _vendor does not exist, the
pwasm that tools/requirements-dev.txt installs is used instead.

pwasm translates each function to Python source after its second call and
caches the generated code on the decoded module, so every instance of one
CompiledModule shares it. It also caches that code on disk, in PWASM_CACHE_DIR
or ~/.cache/pwasm (an empty PWASM_CACHE_DIR turns that off), which makes the
first commands after a restart faster. A cache directory that cannot be
written is skipped.
"""

from __future__ import annotations

import importlib.metadata
import time
from importlib import import_module
from types import ModuleType
from typing import Any

from . import engine
from .engine import CompiledModule, EngineFault, WasmInstance, check_no_imports

_EXPORTED_FUNCS = ("abi_version", "alloc", "dealloc", "call")


def load_pwasm() -> tuple[ModuleType, str]:
    """Import pwasm, the bundled copy first, and return it with its release version.

    Raise EngineFault when neither the bundled copy nor an installed pwasm exists.
    """
    try:
        from ._vendor import PWASM_VERSION
        from ._vendor import pwasm
    except ImportError:
        pass
    else:
        return pwasm, PWASM_VERSION

    try:
        import pwasm
    except ImportError as error:
        raise EngineFault(
            f"the bundled pwasm interpreter is missing ({error}). Install the .mbp that "
            f"./worker build writes, which contains it under mas_token_bot/_vendor/"
        ) from error
    # pwasm.__version__ is not updated with each release, so ask the package metadata.
    try:
        return pwasm, importlib.metadata.version("pwasm")
    except importlib.metadata.PackageNotFoundError:
        return pwasm, "unknown"


def version() -> str:
    """Return the release of pwasm that the fallback uses, raising EngineFault when it is missing."""
    return load_pwasm()[1]


def fallback_fuel_per_call() -> int:
    """Return the pwasm fuel budget of one export call, read at call time so tests can lower it."""
    return engine.FUEL_PER_CALL // engine.FALLBACK_FUEL_DIVISOR


class FallbackModule(CompiledModule):
    """The core decoded by pwasm."""

    engine = engine.ENGINE_FALLBACK

    def __init__(self, wasm: bytes) -> None:
        self._pwasm, self.engine_version = load_pwasm()
        try:
            self.module = self._pwasm.decode_module(wasm)
        except self._pwasm.WasmError as error:
            raise EngineFault(f"the wasm module does not decode: {error}") from error
        check_no_imports([f"{item.module}.{item.name}" for item in self.module.imports])

    def instantiate(self) -> FallbackInstance:
        instance = FallbackInstance(self._pwasm, self.module)
        instance.check_abi_version()
        return instance


class FallbackInstance(WasmInstance):
    """One pwasm instance of the core with a fuel budget, a deadline and a memory cap per export call."""

    def __init__(self, pwasm: ModuleType, module: Any) -> None:
        runtime = import_module(".runtime", pwasm.__name__)
        self._pwasm = pwasm
        self._limits = runtime.Limits(
            fuel=fallback_fuel_per_call(),
            max_memory=engine.MEMORY_LIMIT_BYTES,
        )

        try:
            instance = pwasm.instantiate(module, {}, limits=self._limits)
        except Exception as error:  # noqa: BLE001 - see _invoke
            raise EngineFault(f"instantiating the wasm module failed: {error}") from error

        exports = instance.exports
        self._memory = self._export(exports, "memory", runtime.MemoryInstance)
        self._funcs = {name: self._export(exports, name, None) for name in _EXPORTED_FUNCS}

    @staticmethod
    def _export(exports: Any, name: str, kind: type | None) -> Any:
        if name not in exports:
            raise EngineFault(f"the wasm module has no export named {name!r}")
        item = exports[name]
        if kind is not None and not isinstance(item, kind):
            raise EngineFault(f"the wasm export {name!r} is not a {kind.__name__}")
        if kind is None and not callable(item):
            raise EngineFault(f"the wasm export {name!r} is not a function")
        return item

    def _invoke(self, name: str, *args: int) -> int:
        limits = self._limits
        limits.set_fuel(fallback_fuel_per_call())
        limits.set_deadline(time.monotonic() + engine.FALLBACK_SECONDS_PER_CALL)
        before = limits.fuel_consumed

        try:
            return self._funcs[name](*args)
        except self._pwasm.TrapError as error:
            raise EngineFault(f"the wasm core trapped: {type(error).__name__}: {error}") from error
        except Exception as error:  # noqa: BLE001
            # Any other exception (RecursionError for a call stack deeper than
            # Python's, MemoryError, a bug in the interpreter) leaves the
            # instance in an unknown state, so it is a fault like a trap.
            raise EngineFault(f"the wasm interpreter failed: {type(error).__name__}: {error}") from error
        finally:
            limits.set_deadline(None)
            if name == "call":
                self.last_call_fuel = limits.fuel_consumed - before

    def _memory_size(self) -> int:
        return len(self._memory.data)

    def _memory_read(self, ptr: int, length: int) -> bytes:
        return self._memory.read(ptr, length)

    def _memory_write(self, ptr: int, data: bytes) -> None:
        self._memory.write(ptr, data)
