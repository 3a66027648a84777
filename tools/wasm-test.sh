#!/usr/bin/env bash
# Run the core's unit and command tests compiled to wasm32 under Node, so
# that differences only wasm shows (32-bit usize, no clock, no file system)
# fail a test. wasm-bindgen-test-runner is the cargo runner; it must match
# the wasm-bindgen version in Cargo.lock, and is installed with cargo when
# missing (a few minutes, once per machine).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

fail() {
  echo "wasm-test: $*" >&2
  exit 1
}

command -v node >/dev/null || fail "node not found on PATH; wasm-bindgen-test runs the tests under Node.js"

version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, "", $0); print; exit }' Cargo.lock)
[ -n "$version" ] || fail "no wasm-bindgen version in Cargo.lock"

runner=$(command -v wasm-bindgen-test-runner || true)
installed=""
if [ -n "$runner" ]; then
  installed=$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}')
fi
if [ "$installed" != "$version" ]; then
  echo "wasm-test: installing wasm-bindgen-cli $version (once per machine)"
  cargo install wasm-bindgen-cli --version "$version" || fail "cargo install wasm-bindgen-cli $version failed"
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown || fail "rustup target add wasm32-unknown-unknown failed"
fi

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
cargo test -p mas-token-core --target wasm32-unknown-unknown --lib --test commands --test extended
