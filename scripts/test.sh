#!/usr/bin/env bash
# Run the whole test suite: installs what a fresh Debian machine lacks, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/agent -k spool).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

# Debian packages the tests drive for real.
DEBIAN_PACKAGES=(iproute2 nftables systemd procps sudo rsyslog rsyslog-gnutls curl chromium chromium-driver fonts-wqy-microhei slapd ldap-utils openssl libpcap0.8
  # the agent .deb is built (PyInstaller wants objdump) and installed into a debootstrapped root
  debootstrap dpkg-dev binutils)
bootstrap "collector,test" "${DEBIAN_PACKAGES[@]}"

# PostgreSQL: CI machines run it at 127.0.0.1:5432; start the local cluster if it is down.
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  version="$(ls /etc/postgresql 2>/dev/null | head -n1)"
  if [ -n "$version" ]; then
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
fi

cd "$COURTGUARD_ROOT"
mkdir -p artifacts
"$VENV/bin/python" -m ruff check agent collector tests bench packaging
"$VENV/bin/python" -m mypy agent collector
# Most tests wait on subprocesses, sockets and namespaces rather than the CPU:
# several workers keep both cores busy (COURTGUARD_TEST_WORKERS=0 runs in-process).
# Each worker is handed whole files, in the order tests/conftest.py sorts them (the
# package and end-to-end files first): the minutes-long package tests start at once
# on different workers, and a file's module fixtures are set up once.
exec "$VENV/bin/python" -m pytest -n "${COURTGUARD_TEST_WORKERS:-3}" \
  --dist loadfile --no-loadscope-reorder "$@"
