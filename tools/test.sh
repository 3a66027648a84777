#!/usr/bin/env bash
# Run every test: the core's Rust tests natively and as wasm under Node,
# then the Python tests (wasm engine, .mbp package, plugin against the MAS
# emulator, and the end-to-end test with Synapse and maubot). Installs what
# it needs first: the wasm32 target, wasm-bindgen-test-runner and the Python
# packages in .venv.
# Extra arguments go to pytest, e.g. ./worker test -k plugin
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() {
  echo
  echo "== $* =="
}

step "Python environment (.venv)"
"$root/tools/venv.sh"

step "Rust tests (cargo test)"
cargo test --workspace

step "Clock and randomness ban in the core (cargo clippy)"
cargo clippy --workspace --all-targets -- -D clippy::disallowed-methods

step "Rust tests as wasm under Node (wasm-bindgen-test)"
"$root/tools/wasm-test.sh"

step "Build the .mbp (./worker build)"
"$root/tools/build.sh"

step "Python tests (pytest)"
"$root/.venv/bin/python" -m pytest "$@"
