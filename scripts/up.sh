#!/usr/bin/env bash
# Install and start courtguard locally on its embedded default:
# the collector on SQLite (HTTPS on 127.0.0.1:8443) and one agent enrolled
# against it. Running it again reuses what exists and restarts nothing that runs.
#
#   scripts/up.sh          install, start, print the URLs and admin credentials
#   scripts/up.sh stop     stop both daemons
#   scripts/up.sh status   show what runs
#
# State lives in $COURTGUARD_HOME (default: .courtguard/ in this checkout).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

HOME_DIR="${COURTGUARD_HOME:-$COURTGUARD_ROOT/.courtguard}"
PORT="${COURTGUARD_PORT:-8443}"
COLLECTOR_CONFIG="$HOME_DIR/collector.toml"
AGENT_CONFIG="$HOME_DIR/agent.toml"
BIN="$VENV/bin"

is_running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_one() {
  local pidfile="$HOME_DIR/$1.pid"
  if is_running "$pidfile"; then
    kill -TERM "$(cat "$pidfile")"
    for _ in $(seq 50); do is_running "$pidfile" || break; sleep 0.2; done
    log "$1 stopped"
  fi
  rm -f "$pidfile"
}

case "${1:-up}" in
  stop) stop_one agent; stop_one collector; exit 0 ;;
  status)
    for name in collector agent; do
      if is_running "$HOME_DIR/$name.pid"; then echo "$name: running (pid $(cat "$HOME_DIR/$name.pid"))"
      else echo "$name: stopped"; fi
    done
    exit 0 ;;
  up) ;;
  *) echo "usage: scripts/up.sh [up|stop|status]" >&2; exit 2 ;;
esac

bootstrap "collector" iproute2 nftables curl
mkdir -p "$HOME_DIR/logs" && chmod 700 "$HOME_DIR"

if [ ! -f "$COLLECTOR_CONFIG" ]; then
  cat > "$COLLECTOR_CONFIG" <<TOML
# Local quick-start collector (scripts/up.sh). See README.md, "Configuration".
data_dir = "$HOME_DIR/collector"
listen_host = "127.0.0.1"
listen_port = $PORT
policy_dir = "$COURTGUARD_ROOT/policies"
TOML
fi
if [ ! -f "$AGENT_CONFIG" ]; then
  cat > "$AGENT_CONFIG" <<TOML
# Local quick-start agent (scripts/up.sh). See README.md, "Configuration".
data_dir = "$HOME_DIR/agent"
policy_dir = "$COURTGUARD_ROOT/policies"
TOML
fi
export COURTGUARD_COLLECTOR_CONFIG="$COLLECTOR_CONFIG" COURTGUARD_AGENT_CONFIG="$AGENT_CONFIG"

# 1. Collector: data dir, TLS, database, first admin API key (kept 0600 for this local set-up).
if [ ! -s "$HOME_DIR/admin-api-key" ]; then
  ( umask 077; "$BIN/courtguard-collector" init --print-key-only > "$HOME_DIR/admin-api-key" )
else
  "$BIN/courtguard-collector" init >/dev/null
fi

# 2. Start it unless it runs.
if ! is_running "$HOME_DIR/collector.pid"; then
  nohup "$BIN/courtguard-collector" serve >> "$HOME_DIR/logs/collector.log" 2>&1 &
  echo $! > "$HOME_DIR/collector.pid"
fi
URL="https://127.0.0.1:$PORT"
CA="$HOME_DIR/collector/tls/ca.pem"
for _ in $(seq 100); do
  curl -fsS --cacert "$CA" "$URL/healthz" >/dev/null 2>&1 && break
  is_running "$HOME_DIR/collector.pid" || { log "collector failed to start; see $HOME_DIR/logs/collector.log"; tail -n 20 "$HOME_DIR/logs/collector.log" >&2; exit 1; }
  sleep 0.2
done

# 3. A console administrator, made once; the generated password is kept 0600 for this set-up.
if [ ! -s "$HOME_DIR/console-admin-password" ]; then
  PASSWORD="$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(15))')"
  if printf '%s\n' "$PASSWORD" | "$BIN/courtguard-collector" user create admin --role admin --display-name "管理员" --password-stdin >/dev/null; then
    ( umask 077; printf '%s\n' "$PASSWORD" > "$HOME_DIR/console-admin-password" )
  else
    log "console user admin already exists; set a new password with: courtguard-collector user passwd admin"
  fi
fi

# 4. Enroll the local agent once, with a single-use token.
if [ ! -f "$HOME_DIR/agent/credentials.json" ]; then
  TOKEN="$("$BIN/courtguard-collector" token create --uses 1 --expires 10m --note "local agent (scripts/up.sh)" --quiet)"
  "$BIN/courtguard-agent" enroll --collector "$URL" --token "$TOKEN" --ca "$CA"
fi

# 5. Start the agent unless it runs.
if ! is_running "$HOME_DIR/agent.pid"; then
  nohup "$BIN/courtguard-agent" run >> "$HOME_DIR/logs/agent.log" 2>&1 &
  echo $! > "$HOME_DIR/agent.pid"
fi
sleep 1
is_running "$HOME_DIR/agent.pid" || { log "agent failed to start; see $HOME_DIR/logs/agent.log"; tail -n 20 "$HOME_DIR/logs/agent.log" >&2; exit 1; }

cat <<MSG

courtguard is running.
  Console:        $URL/console/   user admin, password $(cat "$HOME_DIR/console-admin-password" 2>/dev/null || echo "(set with: courtguard-collector user passwd admin)")
                  (the certificate is signed by the local CA $CA; trust it in the browser or accept it once)
  API:            $URL/api/v1/   (CA: $CA)
  Health:         $URL/healthz
  Admin API key:  $(cat "$HOME_DIR/admin-api-key")   (also in $HOME_DIR/admin-api-key)
  Try:            curl --cacert $CA -H "Authorization: Bearer \$(cat $HOME_DIR/admin-api-key)" $URL/api/v1/agents
  Logs:           $HOME_DIR/logs/
  Stop:           scripts/up.sh stop
MSG
