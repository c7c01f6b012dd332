#!/usr/bin/env bash
# Shared by scripts/up.sh and scripts/test.sh: make this checkout runnable.
#
# 1. Debian packages the agent, the collector or the tests need (only the
#    missing ones, only when we are root or can sudo).
# 2. A virtualenv in .venv with the project installed from the pinned
#    constraints, so a fresh machine gets exactly what CI tested.
# 3. The tree's own modules byte-compiled (the agent's start time is
#    measured, and promised, with bytecode cached).
#
# Usage: source scripts/bootstrap.sh; bootstrap <extras> <debian packages...>
set -euo pipefail

COURTGUARD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${COURTGUARD_VENV:-$COURTGUARD_ROOT/.venv}"

log() { printf '[courtguard] %s\n' "$*" >&2; }

install_debian_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      log "missing Debian packages ${missing[*]} and not root: install them and run again"; return 1
    fi
  fi
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  log "Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)"; return 1
}

bootstrap() {
  local extras="$1"; shift
  install_debian_packages "$@"
  local python
  python="$(pick_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    "$python" -m venv "$VENV" 2>/dev/null || {
      install_debian_packages python3-venv && "$python" -m venv "$VENV"; }
  fi
  local stamp="$VENV/.courtguard-installed"
  local want
  want="$extras $(sha256sum "$COURTGUARD_ROOT/constraints.txt" "$COURTGUARD_ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing courtguard[$extras] into $VENV"
    local pip_log="$VENV/pip-install.log"
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -c "$COURTGUARD_ROOT/constraints.txt" -e "$COURTGUARD_ROOT[$extras]" > "$pip_log" 2>&1; then
      tail -n 30 "$pip_log" >&2; log "pip install failed; full output in $pip_log"; return 1
    fi
    "$VENV/bin/python" -c 'import agent, collector' || { log "install failed"; return 1; }
    echo "$want" > "$stamp"
  fi
  # An editable install leaves the tree's own modules uncompiled; under
  # PYTHONDONTWRITEBYTECODE=1 or from a read-only checkout every start would
  # compile them all again. Cheap when nothing changed.
  "$VENV/bin/python" -m compileall -q "$COURTGUARD_ROOT/agent" "$COURTGUARD_ROOT/collector" >/dev/null \
    || { log "byte-compiling the tree failed"; return 1; }
}
