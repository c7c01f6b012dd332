#!/usr/bin/env bash
# Install the courtguard collector from this offline bundle: no network is used.
#
#   sudo ./install.sh [--prefix /opt/courtguard] [--config-dir /etc/courtguard]
#                     [--data-dir /var/lib/courtguard-collector] [--san NAME]...
#                     [--no-systemd] [--no-link]
#
# Makes PREFIX/venv with the system's python3 (`python3 -m venv`), installs the wheels
# beside this script with `pip install --no-index`, puts collector.toml into the config dir
# (an existing one is kept), the systemd unit into /etc/systemd/system, and runs
# `courtguard-collector init` when the data dir has no CA yet (else `migrate`: an upgrade).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX=/opt/courtguard
CONFIG_DIR=/etc/courtguard
DATA_DIR=/var/lib/courtguard-collector
SYSTEMD=yes
LINK=yes
SANS=()
PY="${PYTHON:-python3}"

die() { printf '错误：%s\n提示：%s\n' "$1" "$2" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --config-dir) CONFIG_DIR="$2"; shift 2 ;;
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --san) SANS+=(--san "$2"); shift 2 ;;
    --no-systemd) SYSTEMD=no; shift ;;
    --no-link) LINK=no; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "未知选项 $1" "运行 ./install.sh --help 查看可用选项" ;;
  esac
done

VERSION="$(cat "$HERE/VERSION")"
WANT="$(cat "$HERE/PYTHON_VERSION")"
command -v "$PY" >/dev/null 2>&1 || die "找不到 $PY" "安装 Python $WANT（Debian/UOS/麒麟：apt install python3 python3-venv），或用 PYTHON=路径 指定"
HAVE="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$HAVE" = "$WANT" ] || die "本安装包为 Python $WANT 构建，而 $PY 是 Python $HAVE" \
  "用 PYTHON=/usr/bin/python$WANT ./install.sh 指定解释器，或在与服务器相同的 Python 版本上重新构建安装包"
"$PY" -c 'import ensurepip, venv' 2>/dev/null || die "$PY 缺少 venv 模块" "安装 python3-venv 软件包（apt install python3-venv）"
(cd "$HERE" && sha256sum --quiet -c SHA256SUMS) || die "安装包内文件校验失败（SHA256SUMS）" "安装包不完整或被改动，请重新拷贝"

echo "安装 courtguard 采集服务器 $VERSION 到 $PREFIX（离线安装，不访问网络）"
mkdir -p "$PREFIX"
"$PY" -m venv "$PREFIX/venv"
# Only the wheels in this bundle: no index, and no pip settings of this machine.
env $(env | sed -n 's/^\(PIP_[A-Z_]*\)=.*/-u \1/p') PIP_CONFIG_FILE=/dev/null \
  "$PREFIX/venv/bin/python" -m pip install -q --no-index --no-cache-dir \
  --disable-pip-version-check --find-links "$HERE/wheels" "courtguard[collector]==$VERSION" \
  || die "从安装包安装 Python 软件包失败" "检查上面 pip 的输出；安装包须与本机架构和 Python 版本一致"

mkdir -p "$CONFIG_DIR"
CONFIG="$CONFIG_DIR/collector.toml"
if [ -e "$CONFIG" ]; then
  echo "配置文件 $CONFIG 已存在，保留不变"
else
  sed "s|^data_dir = .*|data_dir = \"$DATA_DIR\"|" "$HERE/collector.toml" > "$CONFIG"
  chmod 0644 "$CONFIG"
  echo "已写入配置文件 $CONFIG"
fi

if [ "$SYSTEMD" = yes ]; then
  sed -e "s|/opt/courtguard/venv|$PREFIX/venv|" -e "s|/etc/courtguard/collector.toml|$CONFIG|" \
    "$HERE/courtguard-collector.service" > /etc/systemd/system/courtguard-collector.service
  chmod 0644 /etc/systemd/system/courtguard-collector.service
  [ -d /run/systemd/system ] && systemctl daemon-reload
  echo "已安装 systemd 服务 courtguard-collector.service"
fi
if [ "$LINK" = yes ]; then
  ln -sf "$PREFIX/venv/bin/courtguard-collector" /usr/local/bin/courtguard-collector
fi

if [ -e "$DATA_DIR/tls/ca.pem" ]; then
  echo "数据目录 $DATA_DIR 已初始化，保留不变；升级数据库结构："
  "$PREFIX/venv/bin/courtguard-collector" migrate --config "$CONFIG" --data-dir "$DATA_DIR" \
    || die "数据库结构升级失败" "先停止服务（systemctl stop courtguard-collector），确认 $CONFIG 中的 database_url 可连接，再重新运行 ./install.sh"
else
  echo "初始化数据目录 $DATA_DIR（TLS 证书、数据库、策略签名密钥、管理员 API 密钥）："
  "$PREFIX/venv/bin/courtguard-collector" init --config "$CONFIG" --data-dir "$DATA_DIR" "${SANS[@]}" \
    || die "初始化失败" "按上面的提示处理后重新运行 ./install.sh（已安装的部分会保留）"
  echo "上面的管理员 API 密钥只显示这一次，请妥善保存。"
fi

cat <<NEXT

安装完成。下一步：
  1. 如需 PostgreSQL，编辑 $CONFIG 中的 database_url，然后运行
     $PREFIX/venv/bin/courtguard-collector migrate --config $CONFIG
  2. 启动服务：systemctl enable --now courtguard-collector
  3. 检查：curl --cacert $DATA_DIR/tls/ca.pem https://<服务器地址>:8443/healthz
  4. 把 $DATA_DIR/tls/ca.pem 分发给终端，用于代理注册（courtguard-agent enroll --ca）。
  5. 定期备份：courtguard-collector backup /安全位置/courtguard-backup.tar.gz
详见 docs/operations.md。
NEXT
