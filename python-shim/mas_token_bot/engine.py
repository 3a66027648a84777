"""Run the wasm core with wasmtime: compile once, bounded memory access, fuel and memory caps.

Threading: a wasmtime Store must not be used from two threads at once. The
plugin calls the core only from the asyncio event loop thread, and every call
(alloc, write, call, read, dealloc) runs synchronously with no `await` in
between, so two commands cannot interleave inside one call sequence.
"""

from __future__ import annotations

import hashlib
import threading

import wasmtime

from .protocol import ABI_VERSION

# Fuel given to the guest before each export call. One unit is roughly one
# wasm instruction. Parsing a list page of 1000 tokens (296 KB) used about
# 60 million, or 200 per byte, so this covers a response of the transport's
# maximum size (8 MiB) with room to spare. A runaway loop still stops after
# this many instructions instead of blocking the event loop for good.
FUEL_PER_CALL = 4_000_000_000

# Maximum linear memory of one instance. It must hold a response body of the
# transport's maximum size several times over, because JSON escaping and
# parsing copy it.
MEMORY_LIMIT_BYTES = 256 * 1024 * 1024

_U32_MASK = 0xFFFF_FFFF
_U64_MASK = 0xFFFF_FFFF_FFFF_FFFF

_engine_lock = threading.Lock()
_engine: wasmtime.Engine | None = None
_modules: dict[str, wasmtime.Module] = {}


class EngineFault(Exception):
    """The wasm core trapped, ran out of fuel or memory, or broke the memory contract.

    The instance that raised it must not be used again.
    """


class AbiVersionError(Exception):
    """The wasm module reports an ABI version this shim does not implement."""


def compile_module(wasm: bytes) -> wasmtime.Module:
    """Compile `wasm` once per process and return the cached Module for the same bytes."""
    digest = hashlib.sha256(wasm).hexdigest()

    with _engine_lock:
        module = _modules.get(digest)
        if module is None:
            try:
                module = wasmtime.Module(_shared_engine(), wasm)
            except wasmtime.WasmtimeError as error:
                raise EngineFault(f"the wasm module does not compile: {error}") from error
            _check_no_imports(module)
            _modules[digest] = module
    return module


def _shared_engine() -> wasmtime.Engine:
    global _engine

    if _engine is None:
        config = wasmtime.Config()
        config.consume_fuel = True
        _engine = wasmtime.Engine(config)
    return _engine


def _check_no_imports(module: wasmtime.Module) -> None:
    # The core is sans-I/O: an import would mean it expects the host to provide
    # functions (WASI, a JS glue layer), which this shim does not.
    imports = [f"{item.module}.{item.name}" for item in module.imports]
    if imports:
        raise EngineFault(f"the wasm module imports {', '.join(imports)}, expected no imports")


class WasmInstance:
    """One Store and Instance of the core."""

    def __init__(self, module: wasmtime.Module) -> None:
        self._store = wasmtime.Store(_shared_engine())
        self._store.set_limits(memory_size=MEMORY_LIMIT_BYTES)
        self._store.set_fuel(FUEL_PER_CALL)
        # Fuel the last `call` export used, for tests and tuning FUEL_PER_CALL.
        self.last_call_fuel = 0

        try:
            instance = wasmtime.Instance(self._store, module, [])
        except (wasmtime.Trap, wasmtime.WasmtimeError) as error:
            raise EngineFault(f"instantiating the wasm module failed: {error}") from error

        exports = instance.exports(self._store)
        self._memory = self._export(exports, "memory", wasmtime.Memory)
        self._abi_version = self._export(exports, "abi_version", wasmtime.Func)
        self._alloc = self._export(exports, "alloc", wasmtime.Func)
        self._dealloc = self._export(exports, "dealloc", wasmtime.Func)
        self._call = self._export(exports, "call", wasmtime.Func)

        version = self._invoke(self._abi_version)
        if version != ABI_VERSION:
            raise AbiVersionError(
                f"the wasm core implements ABI version {version}, but this plugin needs "
                f"version {ABI_VERSION}. Rebuild the plugin so that the .wasm and the shim match"
            )

    @staticmethod
    def _export(exports: wasmtime.InstanceExports, name: str, kind: type) -> object:
        try:
            item = exports[name]
        except KeyError:
            raise EngineFault(f"the wasm module has no export named {name!r}") from None
        if not isinstance(item, kind):
            raise EngineFault(f"the wasm export {name!r} is not a {kind.__name__}")
        return item


    def call(self, request: bytes) -> bytes:
        """Run one `call` export round trip and return the response bytes.

        Raise EngineFault when the guest traps (a panic, fuel or memory
        exhausted) or returns a buffer outside its memory.
        """
        out_ptr, out_len = self._call_packed(request)
        response = self._read(out_ptr, out_len)
        self._invoke(self._dealloc, _to_i32(out_ptr), _to_i32(out_len))
        return response

    def _call_packed(self, request: bytes) -> tuple[int, int]:
        in_ptr = self._invoke(self._alloc, _to_i32(len(request))) & _U32_MASK
        if in_ptr == 0:
            raise EngineFault(f"alloc({len(request)}) returned a null pointer")

        self._write(in_ptr, request)

        # The result packs (out_ptr << 32) | out_len into an i64, which
        # wasmtime hands back as a signed integer.
        packed = self._invoke(self._call, _to_i32(in_ptr), _to_i32(len(request))) & _U64_MASK
        self.last_call_fuel = FUEL_PER_CALL - self._store.get_fuel()
        return packed >> 32, packed & _U32_MASK

    def _invoke(self, func: wasmtime.Func, *args: int) -> int:
        self._store.set_fuel(FUEL_PER_CALL)
        try:
            return func(self._store, *args)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as error:
            raise EngineFault(f"the wasm core trapped: {error}") from error

    def _write(self, ptr: int, data: bytes) -> None:
        # Memory.write raises IndexError for a range past the end of memory.
        try:
            self._memory.write(self._store, data, ptr)
        except IndexError:
            raise EngineFault(
                f"alloc returned {ptr}, but {len(data)} bytes from there do not fit in "
                f"{self._memory.data_len(self._store)} bytes of memory"
            ) from None

    def _read(self, ptr: int, length: int) -> bytes:
        # Memory.read clamps the range like a slice, so check it first: a
        # silently shortened response would look like truncated JSON.
        size = self._memory.data_len(self._store)
        if ptr + length > size:
            raise EngineFault(
                f"the core returned a buffer at {ptr} of {length} bytes, past the end of "
                f"{size} bytes of memory"
            )
        return bytes(self._memory.read(self._store, ptr, ptr + length))


def _to_i32(value: int) -> int:
    """Reinterpret an unsigned 32-bit value as the signed i32 that wasmtime expects."""
    value &= _U32_MASK
    return value - (1 << 32) if value >= (1 << 31) else value
