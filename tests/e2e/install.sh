#!/usr/bin/env bash
# Install the pinned Synapse and maubot into virtual environments under .e2e/
# for the end-to-end test. Each server gets its own venv, so each runs on the
# dependency versions it resolves alone: in one venv, maubot 0.6.0's bcrypt<5
# would hold Synapse back to bcrypt 4. maubot gets two venvs: venv-maubot has
# wasmtime, and venv-maubot-nowasm is a stock maubot without it, where the
# plugin falls back to its bundled interpreter. A stamp file in each venv
# records the Python version and the requirements it was built from: a
# matching stamp skips the install, anything else rebuilds that venv from
# scratch.
#
# Usage: tests/e2e/install.sh      (E2E_DIR overrides .e2e/, E2E_PYTHON the interpreter)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
e2e_dir=${E2E_DIR:-$root/.e2e}
python=${E2E_PYTHON:-python3}

# tests/e2e/stack.py runs this script before every end-to-end run.
synapse_requirements=("matrix-synapse==1.163.2")
maubot_requirements=("maubot==0.6.0" "wasmtime==51.0.0")
maubot_nowasm_requirements=("maubot==0.6.0")
# The no-wasmtime venv is only useful if wasmtime really fails to import there.
maubot_nowasm_check='import maubot, importlib.util, sys
if importlib.util.find_spec("wasmtime") is not None:
    sys.exit("wasmtime is importable, but this venv must not have it")'

if ! command -v "$python" >/dev/null; then
  echo "install.sh: Python interpreter '$python' not found; set E2E_PYTHON to a Python 3.10 or newer executable (maubot 0.6.0 and Synapse 1.163 require it)" >&2
  exit 1
fi
python_version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')

# install_venv NAME IMPORT_CHECK REQUIREMENT...
# Build $e2e_dir/venv-NAME unless its stamp already matches, then run
# IMPORT_CHECK with the venv's Python to prove the packages load.
install_venv() {
  local name=$1 import_check=$2
  shift 2
  local venv="$e2e_dir/venv-$name"
  local stamp="$venv/.e2e-stamp"
  local wanted="python $python_version; $*"

  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    echo "install.sh: venv-$name is up to date ($*)"
    return 0
  fi

  echo "install.sh: building venv-$name with $* (Python $python_version)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "$@" >"$e2e_dir/pip-$name.log" 2>&1; then
    echo "install.sh: pip failed to install $* into $venv." >&2
    echo "install.sh: the end-to-end test needs these packages from PyPI; check that PyPI is reachable. Last lines of $e2e_dir/pip-$name.log:" >&2
    tail -n 20 "$e2e_dir/pip-$name.log" >&2
    exit 1
  fi
  if ! "$venv/bin/python" -c "$import_check"; then
    echo "install.sh: venv-$name installed but '$import_check' failed" >&2
    exit 1
  fi
  echo "$wanted" >"$stamp"
  echo "install.sh: venv-$name ready"
}

mkdir -p "$e2e_dir"
# Developers sharing a checkout may run the test at the same time: one install
# at a time, so none removes a venv that another is building or using.
exec 9>"$e2e_dir/install.lock"
flock 9

# The three installs are independent and mostly wait on the network, so run
# them in parallel and fail if any fails. All three use pip's default cache,
# so the two maubot venvs download shared packages only once when it is warm.
install_venv synapse "import synapse.app.homeserver" "${synapse_requirements[@]}" &
synapse_pid=$!
install_venv maubot "import maubot, wasmtime" "${maubot_requirements[@]}" &
maubot_pid=$!
install_venv maubot-nowasm "$maubot_nowasm_check" "${maubot_nowasm_requirements[@]}" &
maubot_nowasm_pid=$!

status=0
wait "$synapse_pid" || status=1
wait "$maubot_pid" || status=1
wait "$maubot_nowasm_pid" || status=1
exit "$status"
