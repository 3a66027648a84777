#!/usr/bin/env bash
# Build the wasm core and write dist/<id>-v<version>.mbp, the maubot plugin archive.
# The archive root contains maubot.yaml, base-config.yaml, mas_token_bot/ and
# mas_token_core.wasm. Entries are sorted and carry a fixed timestamp, so the
# same sources give a byte-identical archive.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=wasm32-unknown-unknown
# cargo honours CARGO_TARGET_DIR, so look for the module where cargo puts it.
wasm="${CARGO_TARGET_DIR:-$root/target}/$target/release/mas_token_core.wasm"

fail() {
  echo "build: $*" >&2
  exit 1
}

command -v cargo >/dev/null || fail "cargo not found on PATH. Install Rust from https://rustup.rs"
command -v python3 >/dev/null || fail "python3, which writes the .mbp archive, not found on PATH"

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
python3 - "$root" "$staged/mas_token_core.wasm" <<'PYTHON' || fail "writing the .mbp archive failed"
import re
import sys
import zipfile
from pathlib import Path

root = Path(sys.argv[1])
wasm = Path(sys.argv[2])
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

archive = root / "dist" / f"{plugin_id}-v{version}.mbp"
partial = archive.with_suffix(".mbp.partial")
with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as output:
    for name in sorted(files):
        # 1980-01-01 is the earliest time a zip entry can hold.
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        output.writestr(info, files[name].read_bytes())
partial.replace(archive)

print(f"build: wrote {archive} ({archive.stat().st_size} bytes, {len(files)} files)")
PYTHON
