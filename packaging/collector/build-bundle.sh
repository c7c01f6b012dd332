#!/usr/bin/env bash
# Build the collector's offline bundle: courtguard-collector-<version>-<platform>.tar.gz holds
# the collector wheel, a wheel of every dependency for the target platform (pinned by
# constraints.txt), the systemd unit, a starting collector.toml and install.sh, which installs
# with `pip install --no-index` and so needs no network on the court's server.
#
#   packaging/collector/build-bundle.sh [--out DIR] [--python PY]
#       [--platform TAG --python-version X.Y]
#
# Without --platform the bundle is for this machine (architecture and Python minor version).
# --platform builds for another architecture from this one, where PyPI has binary wheels for
# every compiled dependency: e.g. --platform manylinux_2_28_aarch64 --python-version 3.11 on an
# x86_64 builder (the tag names the servers' oldest glibc; older manylinux tags are added).
# Pure-Python dependencies published only as source are built into wheels here first. A
# dependency with no wheel for the target (LoongArch: PyPI has next to none) fails the build:
# run this script on a builder of that architecture instead. See docs/operations.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$ROOT/artifacts"
PY="${PYTHON:-python3}"
PLATFORM=""
PYVER=""

die() { echo "build-bundle: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    --platform) PLATFORM="$2"; shift 2 ;;
    --python-version) PYVER="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
command -v "$PY" >/dev/null || die "$PY not found: name a Python 3.11+ with --python"
[ -n "$PLATFORM" ] || [ -z "$PYVER" ] || die "--python-version goes with --platform"
[ -z "$PLATFORM" ] || [ -n "$PYVER" ] || PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ -n "$PYVER" ] || PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$PYVER" in 3.1[1-9]) ;; *) die "--python-version $PYVER: the collector needs Python 3.11 or newer" ;; esac
CPTAG="cp${PYVER/./}"

VERSION="$("$PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$ROOT/pyproject.toml")"
if [ -n "$PLATFORM" ]; then
  ARCH=""
  for candidate in x86_64 aarch64 loongarch64 ppc64le s390x i686 armv7l riscv64; do
    case "$PLATFORM" in *"$candidate") ARCH="$candidate" ;; esac
  done
  [ -n "$ARCH" ] || die "--platform $PLATFORM: no architecture this script knows at its end"
else
  ARCH="$("$PY" -c 'import platform; print(platform.machine())')"
fi
NAME="courtguard-collector-$VERSION-linux-$ARCH-$CPTAG"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
STAGE="$WORK/$NAME"
mkdir -p "$STAGE/wheels" "$OUT"

# The project from what git tracks, as a release would be, not from a dirty tree's build/.
SRC="$WORK/src"
mkdir -p "$SRC"
(cd "$ROOT" && git ls-files -z -- . ':!tests' ':!bench' ':!artifacts' | xargs -0 cp --parents -t "$SRC")
"$PY" -m pip wheel -q --no-deps -w "$STAGE/wheels" "$SRC"
WHEEL="$(ls "$STAGE"/wheels/courtguard-*.whl)"

if [ -z "$PLATFORM" ]; then
  "$PY" -m pip wheel -q -w "$STAGE/wheels" -c "$ROOT/constraints.txt" "$WHEEL[collector]"
else
  # Source-only pure-Python dependencies become py3-none-any wheels here; the rest must
  # be binary wheels for the target.
  "$PY" -m pip wheel -q -w "$WORK/native" -c "$ROOT/constraints.txt" "$WHEEL[collector]"
  cp "$WORK"/native/*-none-any.whl "$STAGE/wheels/"
  # pip takes a platform tag literally: a server with glibc 2.28 also loads wheels built for
  # older glibc (manylinux_2_17, manylinux2014, ...), so every such tag is named.
  PLATFORM_ARGS=()
  for tag in $("$PY" - "$PLATFORM" <<'TAGS'
import re
import sys

tag = sys.argv[1]
legacy = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}
match = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014|manylinux_2_(\d+))_(\w+)", tag)
if not match:
    print(tag)
    sys.exit()
glibc = int(match.group(2)) if match.group(2) else legacy[match.group(1)]
arch = match.group(3)
tags = [f"manylinux_2_{n}_{arch}" for n in range(glibc, 4, -1)]
tags += [f"{name}_{arch}" for name, n in legacy.items() if n <= glibc]
print(" ".join(tags))
TAGS
  ); do PLATFORM_ARGS+=(--platform "$tag"); done
  "$PY" -m pip download -q --only-binary=:all: "${PLATFORM_ARGS[@]}" \
    --python-version "$PYVER" --implementation cp --abi "$CPTAG" --abi abi3 --abi none \
    --find-links "$STAGE/wheels" -d "$STAGE/wheels" -c "$ROOT/constraints.txt" "$WHEEL[collector]"
fi

install -m 0755 "$HERE/install.sh" "$STAGE/install.sh"
install -m 0644 "$HERE/collector.toml" "$STAGE/collector.toml"
install -m 0644 "$ROOT/systemd/courtguard-collector.service" "$STAGE/courtguard-collector.service"
printf '%s\n' "$VERSION" > "$STAGE/VERSION"
printf '%s\n' "$PYVER" > "$STAGE/PYTHON_VERSION"
(cd "$STAGE" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)

tar -C "$WORK" --owner=0 --group=0 --numeric-owner -czf "$OUT/$NAME.tar.gz.partial" "$NAME"
mv "$OUT/$NAME.tar.gz.partial" "$OUT/$NAME.tar.gz"
echo "$OUT/$NAME.tar.gz"
