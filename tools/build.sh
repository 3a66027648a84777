#!/usr/bin/env bash
# Build the wasm core and write dist/<id>-v<version>.mbp, the maubot plugin archive.
# The archive root contains maubot.yaml, base-config.yaml, mas_token_bot/ and
# mas_token_core.wasm. Entries are sorted and carry a fixed timestamp, so the
# same sources give a byte-identical archive.
#
# mas_token_bot/_vendor/ holds the pure-Python WebAssembly interpreter pwasm,
# which the plugin uses when wasmtime is not installed (maubot never installs
# a plugin's dependencies). The pinned wheel is downloaded once with pip into
# target/vendor/ and checked against its SHA-256 digest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=wasm32-unknown-unknown
# cargo honours CARGO_TARGET_DIR, so look for the module where cargo puts it.
wasm="${CARGO_TARGET_DIR:-$root/target}/$target/release/mas_token_core.wasm"

fail() {
  echo "build: $*" >&2
  exit 1
}

# The interpreter bundled as the fallback engine, its wheel's SHA-256 digest,
# and the license text it is distributed under. The pwasm wheel and sdist
# carry no license file, only "License-Expression: Apache-2.0" in their
# metadata, so the build copies the standard text from Debian's base-files.
pwasm_version=0.2a0
pwasm_wheel=pwasm-$pwasm_version-py3-none-any.whl
pwasm_sha256=6bba3f1bea0bfb8d5b76ab5c3bba2f3cd6389c69cab44b2e6a20abf435bc17c0
pwasm_license=/usr/share/common-licenses/Apache-2.0
vendor_cache="${CARGO_TARGET_DIR:-$root/target}/vendor"

command -v cargo >/dev/null || fail "cargo not found on PATH. Install Rust from https://rustup.rs"
command -v python3 >/dev/null || fail "python3, which writes the .mbp archive, not found on PATH"
[ -f "$pwasm_license" ] || fail "$pwasm_license, the license text bundled with pwasm, does not exist. Install Debian's base-files package"

if [ ! -f "$vendor_cache/$pwasm_wheel" ]; then
  echo "build: downloading pwasm $pwasm_version into $vendor_cache"
  mkdir -p "$vendor_cache"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$vendor_cache" "pwasm==$pwasm_version" \
    || fail "pip download pwasm==$pwasm_version failed. Check that pip can reach PyPI"
fi

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  command -v rustup >/dev/null || fail "the $target target is missing and rustup is not on PATH to install it"
  echo "build: installing the $target target"
  rustup target add "$target" || fail "rustup target add $target failed"
fi

echo "build: cargo build --release --target $target -p mas-token-core"
(cd "$root" && cargo build --release --target "$target" -p mas-token-core) \
  || fail "cargo build failed (see the errors above)"
[ -f "$wasm" ] || fail "cargo finished but $wasm does not exist"

staged=$(mktemp -d)
trap 'rm -rf "$staged"' EXIT
cp "$wasm" "$staged/mas_token_core.wasm"

if command -v wasm-opt >/dev/null; then
  echo "build: wasm-opt -Oz"
  # rustc enables these wasm features by default for this target (Rust 1.82
  # and later), and older wasm-opt releases reject a module that uses them
  # unless each is enabled. wasmtime supports all of them.
  wasm-opt -Oz \
    --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types \
    "$wasm" -o "$staged/mas_token_core.wasm" || fail "wasm-opt failed"
else
  echo "build: wasm-opt not on PATH, so the module is packaged without it"
fi

mkdir -p "$root/dist"
python3 - "$root" "$staged/mas_token_core.wasm" "$vendor_cache/$pwasm_wheel" "$pwasm_sha256" "$pwasm_version" \
  "$pwasm_license" <<'PYTHON' || fail "writing the .mbp archive failed"
import hashlib
import re
import sys
import zipfile
from pathlib import Path

root = Path(sys.argv[1])
wasm = Path(sys.argv[2])
pwasm_wheel = Path(sys.argv[3])
pwasm_sha256 = sys.argv[4]
pwasm_version = sys.argv[5]
pwasm_license = Path(sys.argv[6])
meta = (root / "maubot.yaml").read_text(encoding="utf-8")


def top_level(key: str) -> str:
    match = re.search(rf"^{key}:\s*['\"]?([^'\"\s#]+)", meta, re.MULTILINE)
    if match is None:
        sys.exit(f"build: maubot.yaml has no top-level '{key}:' line")
    return match.group(1)


plugin_id = top_level("id")
version = top_level("version")

files = {
    "maubot.yaml": root / "maubot.yaml",
    "base-config.yaml": root / "base-config.yaml",
    "mas_token_core.wasm": wasm,
}
package = root / "python-shim" / "mas_token_bot"
for path in package.rglob("*.py"):
    if "__pycache__" not in path.parts:
        files[f"mas_token_bot/{path.relative_to(package).as_posix()}"] = path

if "mas_token_bot/__init__.py" not in files:
    sys.exit(f"build: {package}/__init__.py is missing")

# Bundle pwasm as the subpackage mas_token_bot._vendor.pwasm. Its modules
# import each other relatively, so they work under that name from the zip.
# The guests/ subpackage (MicroPython and QuickJS builds, 1.6 MB) is left out
# because the plugin never runs them.
wheel_bytes = pwasm_wheel.read_bytes()
digest = hashlib.sha256(wheel_bytes).hexdigest()
if digest != pwasm_sha256:
    sys.exit(
        f"build: {pwasm_wheel} has SHA-256 {digest}, expected {pwasm_sha256}. "
        f"Delete it and build again to download it anew"
    )
contents = {}
with zipfile.ZipFile(pwasm_wheel) as wheel:
    for name in wheel.namelist():
        parts = name.split("/")
        if parts[0] == "pwasm" and len(parts) == 2 and name.endswith(".py"):
            contents[f"mas_token_bot/_vendor/{name}"] = wheel.read(name)
        elif parts[0] == f"pwasm-{pwasm_version}.dist-info" and parts[-1] == "METADATA":
            contents[f"mas_token_bot/_vendor/pwasm-{pwasm_version}.METADATA"] = wheel.read(name)
if "mas_token_bot/_vendor/pwasm/__init__.py" not in contents:
    sys.exit(f"build: {pwasm_wheel} contains no pwasm/__init__.py")
contents["mas_token_bot/_vendor/pwasm-LICENSE"] = pwasm_license.read_bytes()
contents["mas_token_bot/_vendor/__init__.py"] = (
    '"""Third-party packages that tools/build.sh bundled: pwasm (Apache-2.0, see pwasm-LICENSE)."""\n\n'
    f"PWASM_VERSION = {pwasm_version!r}\n"
).encode("utf-8")

archive = root / "dist" / f"{plugin_id}-v{version}.mbp"
partial = archive.with_suffix(".mbp.partial")
with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as output:
    for name in sorted([*files, *contents]):
        # 1980-01-01 is the earliest time a zip entry can hold.
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        output.writestr(info, files[name].read_bytes() if name in files else contents[name])
partial.replace(archive)

print(f"build: wrote {archive} ({archive.stat().st_size} bytes, {len(files) + len(contents)} files)")
PYTHON
