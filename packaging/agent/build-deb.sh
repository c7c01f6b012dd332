#!/usr/bin/env bash
# Build the agent .deb from this checkout: courtguard-agent_<version>_<arch>.deb carrying its
# own Python runtime (PyInstaller one-folder build). See docs/packaging.md.
#
#   packaging/agent/build-deb.sh [--version V] [--out DIR] [--build-dir DIR]
#                                [--reuse-build DIR] [--preseed enroll.toml]
#                                [--compress xz|gzip|none]
#
# The last line on stdout is the path of the package.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/bootstrap.sh"

# dpkg-deb packs; binutils gives PyInstaller objdump/ldd-style inspection of the libraries.
install_debian_packages dpkg-dev binutils
python="$(pick_python)"
exec "$python" "$COURTGUARD_ROOT/packaging/build_agent_deb.py" "$@"
