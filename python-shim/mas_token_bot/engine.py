"""Run the wasm core: pick an engine, compile once, and call the boundary exports.

Two engines implement the same interface. wasmtime (engine_wasmtime.py)
compiles the module to native code. When wasmtime is missing, too old or
cannot run on this platform (its wheels are built for glibc, and maubot's
official Docker image is Alpine with musl), the pure-Python interpreter pwasm
(engine_fallback.py) runs the same .wasm, much more slowly. tools/build.sh
bundles pwasm inside the .mbp, because maubot does not install a plugin's
Python dependencies.

Threading: the plugin calls the core only from the asyncio event loop thread,
and every call (alloc, write, call, read, dealloc) runs synchronously with no
`await` in between, so two commands cannot interleave inside one call
sequence. Neither engine's instance may be used from two threads at once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

from .protocol import ABI_VERSION

# Fuel given to the guest before each export call under wasmtime. One unit is
# roughly one wasm instruction. Parsing a list page of 1000 tokens (296 KB)
# used about 60 million, or 200 per byte, so this covers a response of the
# transport's maximum size (8 MiB) with room to spare. A runaway loop still
# stops after this many instructions instead of blocking the event loop for good.
FUEL_PER_CALL = 4_000_000_000

# The pwasm fallback's fuel budget per export call is FUEL_PER_CALL divided
# by this. pwasm charges one unit per function call and per loop iteration,
# not per instruction, and this core used 33 to 35 wasmtime units per pwasm
# unit for the same call (generate, list and search pages, measured with
# tools/bench_engines.py). Deriving the budget keeps one knob for both engines.
FALLBACK_FUEL_DIVISOR = 30

# Wall-clock time one export call may take under the pwasm fallback. The
# interpreter runs on the event loop thread, so this bounds how long one call
# blocks the bot. Parsing a search page of 1000 tokens (296 KB) took 1.5 s,
# so a response of about 5 MB or more faults here, under the transport's
# 8 MiB maximum.
FALLBACK_SECONDS_PER_CALL = 30.0

# Maximum linear memory of one instance, for both engines. It must hold a
# response body of the transport's maximum size several times over, because
# JSON escaping and parsing copy it.
MEMORY_LIMIT_BYTES = 256 * 1024 * 1024

# The wasmtime release this plugin is tested with, and the oldest major
# version whose Python API (Store.set_fuel, Store.set_limits) it uses.
WASMTIME_PIN = "51.0.0"
WASMTIME_MIN_MAJOR = 20

ENGINE_WASMTIME = "wasmtime"
ENGINE_FALLBACK = "fallback"
# The library behind each engine name, for log messages.
ENGINE_LIBRARIES = {ENGINE_WASMTIME: "wasmtime", ENGINE_FALLBACK: "pwasm"}

_U32_MASK = 0xFFFF_FFFF
_U64_MASK = 0xFFFF_FFFF_FFFF_FFFF

# Smallest input buffer the shim allocates in guest memory, in bytes.
_MIN_INPUT_CAPACITY = 64 * 1024

_selection_lock = threading.Lock()
_selection: Optional[EngineSelection] = None
_forced_engine: Optional[str] = None
_fallback_warned = False
_modules: dict[tuple[str, str], CompiledModule] = {}


class EngineFault(Exception):
    """The wasm core trapped, ran out of fuel, time or memory, or broke the memory contract.

    The instance that raised it must not be used again.
    """


class AbiVersionError(Exception):
    """The wasm module reports an ABI version this shim does not implement."""


@dataclass(frozen=True)
class EngineSelection:
    """The engine this process uses, and why wasmtime is not used when it is not."""

    name: str
    version: str
    fallback_reason: Optional[str] = None


class CompiledModule(ABC):
    """A validated module, compiled once per process and shared by the plugin's instances."""

    engine: str
    engine_version: str

    @abstractmethod
    def instantiate(self) -> WasmInstance:
        """Create a new instance, check its ABI version and return it.

        Raise EngineFault when instantiation fails and AbiVersionError when the
        module implements another ABI version.
        """


class WasmInstance(ABC):
    """One instance of the core: its own linear memory and fuel budget."""

    # Fuel the last `call` export used, in the engine's own units, for tests
    # and tuning FUEL_PER_CALL and FALLBACK_FUEL_DIVISOR.
    last_call_fuel = 0

    # The input buffer in guest memory, from `alloc` and reused by every call
    # that fits; (0, 0) until the first call.
    _input_ptr = 0
    _input_capacity = 0

    def check_abi_version(self) -> None:
        """Raise AbiVersionError unless the module's `abi_version` export returns ABI_VERSION."""
        version = self._invoke("abi_version")
        if version != ABI_VERSION:
            raise AbiVersionError(
                f"the wasm core implements ABI version {version}, but this plugin needs "
                f"version {ABI_VERSION}. Rebuild the plugin so that the .wasm and the shim match"
            )

    def call(self, request: bytes) -> bytes:
        """Run one `call` export and return the response bytes.

        The request goes into the reused input buffer, so a call that fits
        costs one export call. The response lives in a buffer the core owns
        until its next call, so it is copied out and never freed here.
        Raise EngineFault when the guest traps (a panic, fuel, time or memory
        exhausted) or returns a buffer outside its memory.
        """
        in_ptr = self._input_buffer(len(request))
        self._write(in_ptr, request)

        # The result packs (out_ptr << 32) | out_len into an i64, which both
        # engines hand back as a signed integer.
        packed = self._invoke("call", _to_i32(in_ptr), _to_i32(len(request))) & _U64_MASK
        out_ptr, out_len = packed >> 32, packed & _U32_MASK
        return self._read(out_ptr, out_len)

    def _input_buffer(self, length: int) -> int:
        """Return the input buffer's address, growing it to hold `length` bytes."""
        if length <= self._input_capacity:
            return self._input_ptr

        # Grow to the next power of two, at least 64 KiB, so a run of growing
        # requests reallocates only a few times.
        capacity = max(_MIN_INPUT_CAPACITY, 1 << (length - 1).bit_length())
        if self._input_ptr:
            self._invoke("dealloc", _to_i32(self._input_ptr), _to_i32(self._input_capacity))
            self._input_ptr, self._input_capacity = 0, 0

        ptr = self._invoke("alloc", _to_i32(capacity)) & _U32_MASK
        if ptr == 0:
            raise EngineFault(f"alloc({capacity}) returned a null pointer")
        self._input_ptr, self._input_capacity = ptr, capacity
        return ptr

    def _write(self, ptr: int, data: bytes) -> None:
        size = self._memory_size()
        if ptr + len(data) > size:
            raise EngineFault(
                f"alloc returned {ptr}, but {len(data)} bytes from there do not fit in "
                f"{size} bytes of memory"
            )
        self._memory_write(ptr, data)

    def _read(self, ptr: int, length: int) -> bytes:
        # Check the range first: a silently shortened response would look
        # like truncated JSON.
        size = self._memory_size()
        if ptr + length > size:
            raise EngineFault(
                f"the core returned a buffer at {ptr} of {length} bytes, past the end of "
                f"{size} bytes of memory"
            )
        return self._memory_read(ptr, length)

    @abstractmethod
    def _invoke(self, name: str, *args: int) -> int:
        """Call the export `name` with a fresh fuel budget, turning a trap into EngineFault."""

    @abstractmethod
    def _memory_size(self) -> int:
        """Return the current size of linear memory in bytes."""

    @abstractmethod
    def _memory_read(self, ptr: int, length: int) -> bytes:
        """Return `length` bytes at `ptr`, a range already checked against the memory size."""

    @abstractmethod
    def _memory_write(self, ptr: int, data: bytes) -> None:
        """Copy `data` to `ptr`, a range already checked against the memory size."""


def compile_module(wasm: bytes, log: Optional[logging.Logger] = None) -> CompiledModule:
    """Compile `wasm` once per process with the selected engine and return the cached module.

    The first call picks the engine (see select_engine) and, when it falls
    back to pwasm, logs one warning to `log` with the reason and the command
    that installs wasmtime.
    """
    selection = select_engine(log)
    key = (selection.name, hashlib.sha256(wasm).hexdigest())

    with _selection_lock:
        module = _modules.get(key)
        if module is None:
            module = _compile_with(selection.name, wasm)
            _modules[key] = module
    return module


def select_engine(log: Optional[logging.Logger] = None) -> EngineSelection:
    """Return the engine for this process: wasmtime when it works here, otherwise pwasm."""
    global _selection, _fallback_warned

    with _selection_lock:
        if _selection is None:
            _selection = _select()
        selection = _selection
        warn = selection.fallback_reason is not None and not _fallback_warned
        if warn:
            _fallback_warned = True

    if warn:
        (log or logging.getLogger(__name__)).warning("%s", fallback_warning(selection))
    return selection


def force_engine(name: Optional[str]) -> None:
    """Use engine `name` (ENGINE_WASMTIME or ENGINE_FALLBACK) from now on, or None to detect again.

    For tests and benchmarks. Forcing the fallback logs no warning.
    """
    global _selection, _forced_engine

    if name not in (None, ENGINE_WASMTIME, ENGINE_FALLBACK):
        raise ValueError(f"unknown engine {name!r}, expected {ENGINE_WASMTIME!r} or {ENGINE_FALLBACK!r}")
    with _selection_lock:
        _forced_engine = name
        _selection = None


def reset_engine_selection() -> None:
    """Forget the selected engine and whether the fallback warning was logged, for tests."""
    global _selection, _fallback_warned

    with _selection_lock:
        _selection = None
        _fallback_warned = False


def fallback_warning(selection: EngineSelection) -> str:
    """Return the warning logged once when the core runs in pwasm instead of wasmtime."""
    return (
        f"wasmtime is not usable ({selection.fallback_reason}), so the wasm core runs in "
        f"the bundled pure-Python interpreter pwasm {selection.version}, which is 10 to 150 "
        f"times slower (about 10 ms instead of 1 ms for a command, and 1.4 s instead of 9 ms "
        f"to list 500 tokens). "
        f"To speed it up, install wasmtime in maubot's Python environment: "
        f"`pip install wasmtime=={WASMTIME_PIN}`. With the official Docker image, build a "
        f"derived image from a Dockerfile with the two lines "
        f"`FROM dock.mau.dev/maubot/maubot:latest` and "
        f"`RUN pip3 install --break-system-packages wasmtime=={WASMTIME_PIN}`, then restart maubot"
    )


def _select() -> EngineSelection:
    # Imported here so that a missing wasmtime or pwasm is found at selection
    # time, not at import time of this module.
    from . import engine_fallback, engine_wasmtime

    if _forced_engine == ENGINE_WASMTIME:
        version, reason = engine_wasmtime.probe()
        if reason is not None:
            raise EngineFault(f"the wasmtime engine was requested, but {reason}")
        return EngineSelection(ENGINE_WASMTIME, version)

    if _forced_engine == ENGINE_FALLBACK:
        return EngineSelection(ENGINE_FALLBACK, engine_fallback.version())

    version, reason = engine_wasmtime.probe()
    if reason is None:
        return EngineSelection(ENGINE_WASMTIME, version)

    try:
        fallback_version = engine_fallback.version()
    except EngineFault as error:
        raise EngineFault(f"no wasm engine is usable: {reason}, and {error}") from error
    return EngineSelection(ENGINE_FALLBACK, fallback_version, fallback_reason=reason)


def _compile_with(name: str, wasm: bytes) -> CompiledModule:
    if name == ENGINE_WASMTIME:
        from .engine_wasmtime import WasmtimeModule

        return WasmtimeModule(wasm)

    from .engine_fallback import FallbackModule

    return FallbackModule(wasm)


def check_no_imports(imports: list[str]) -> None:
    """Raise EngineFault when the module imports anything.

    The core is sans-I/O: an import would mean it expects the host to provide
    functions (WASI, a JS glue layer), which this shim does not.
    """
    if imports:
        raise EngineFault(f"the wasm module imports {', '.join(imports)}, expected no imports")


def _to_i32(value: int) -> int:
    """Reinterpret an unsigned 32-bit value as the signed i32 that both engines expect."""
    value &= _U32_MASK
    return value - (1 << 32) if value >= (1 << 31) else value

