#!/usr/bin/env bash
# The deployment's topology on one machine, without Docker: HAProxy (sticky cookie, WebSocket
# upgrade) in front of N Streamlit replicas, heavy work on a local Ray head.
#
#   bash deploy/local.sh up --replicas N --port P   # returns when every part answers
#   bash deploy/local.sh status                      # what runs, and whether it answers
#   bash deploy/local.sh down                        # stops exactly what `up` started
#
# Every process `up` starts gets its own session (and no inherited descriptor); its id goes into a pid file under the
# state folder ($INCEPTION_EXPLORER_LOCAL_STATE, default ./.local-deploy). `down` stops each
# recorded process with its whole tree (children found through /proc before anything is
# signalled), SIGTERM then SIGKILL, and nothing else: other users' Ray or HAProxy on this machine
# are never touched (no `ray stop`, no pkill).
#
# Environment: INCEPTION_EXPLORER_RAY_CPUS (the head's CPUs, default: this machine's),
# INCEPTION_EXPLORER_RAY_OBJECT_STORE (bytes, default 200000000), INCEPTION_EXPLORER_NO_RAY=1
# (replicas run heavy work in their own worker processes instead), PYTHON (default ./.venv/bin/python).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${INCEPTION_EXPLORER_LOCAL_STATE:-$ROOT/.local-deploy}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
RAY_BIN="$(dirname "$PYTHON")/ray"
UP_TIMEOUT_S="${INCEPTION_EXPLORER_UP_TIMEOUT:-240}"

die() { echo "local.sh: $*" >&2; exit 1; }

usage() {
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

answers() {  # url -> 0 when it answers "ok" (Streamlit's health check)
  "$PYTHON" - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.read().strip() == b"ok" else 1)
except OSError:
    sys.exit(1)
PY
}

listening() {  # port -> 0 when something accepts on 127.0.0.1:port
  "$PYTHON" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2).close()' "$1" 2>/dev/null
}

tree() {  # pid -> that pid and all its descendants, found through /proc
  local pid=$1 child
  echo "$pid"
  for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do tree "$child"; done
}

start() {  # log-file command... -> runs it in a session of its own, every other descriptor
  # closed (so that no caller's pipe stays open behind it), prints its pid
  local log=$1; shift
  "$PYTHON" - "$log" "$@" <<'PY'
import subprocess, sys
log = open(sys.argv[1], "ab")
p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                     start_new_session=True, close_fds=True)
print(p.pid)
PY
}

alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

stop_pidfile() {  # a pid file -> its process, its session's processes and their trees stopped
  local file=$1 pid pids sid p
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  pids=""
  if alive "$pid"; then
    pids=$(tree "$pid")
    # `start` made the recorded process a session leader: its session holds what it started,
    # including daemons that left its tree (Ray's raylet and workers reparent to init)
    sid=$pid
    for p in $(ps -eo pid=,sid= | awk -v s="$sid" '$2 == s {print $1}'); do pids="$pids $p"; done
  fi
  pids=$(echo "$pids" | tr ' ' '\n' | sort -u | grep -v '^$' || true)
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 50); do
      local left=""
      for p in $pids; do alive "$p" && left="$left $p"; done
      [ -z "$left" ] && break
      sleep 0.2
    done
    for p in $pids; do alive "$p" && kill -KILL "$p" 2>/dev/null || true; done
  fi
  rm -f "$file"
}

ensure_haproxy() {
  command -v haproxy >/dev/null 2>&1 && return 0
  echo "installing haproxy from apt..."
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy
  else
    die "haproxy is missing and this user cannot install it: apt-get install haproxy"
  fi
  command -v haproxy >/dev/null 2>&1 || die "haproxy did not install"
}

write_haproxy_cfg() {  # port replica-ports... -> $STATE/haproxy.cfg
  local port=$1; shift
  {
    cat <<CFG
# Written by deploy/local.sh; the same proxy as deploy/haproxy.cfg (compose), on local ports.
global
    maxconn 4096
    pidfile $STATE/haproxy.pid

defaults
    mode http
    option redispatch          # a dead replica's browsers go to a live one
    retries 2
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 2h          # Streamlit's WebSocket lives as long as the tab
    timeout http-request 10s

frontend web
    bind 127.0.0.1:$port
    default_backend replicas

backend replicas
    balance roundrobin
    cookie SRV insert indirect nocache    # sticky: a browser stays on its replica
    option httpchk GET /_stcore/health
    http-check expect string ok
    http-response set-header X-Explorer-Replica %[srv_name]   # servers are named by their port
CFG
    for p in "$@"; do
      echo "    server $p 127.0.0.1:$p check inter 1s fall 2 rise 1 cookie r$p"
    done
  } > "$STATE/haproxy.cfg"
}

up() {
  local replicas=2 port=8500
  while [ $# -gt 0 ]; do
    case "$1" in
      --replicas) replicas=${2:?}; shift 2 ;;
      --port) port=${2:?}; shift 2 ;;
      *) usage ;;
    esac
  done
  [[ "$replicas" =~ ^[1-9][0-9]*$ ]] || die "--replicas must be a whole number >= 1, got $replicas"
  [[ "$port" =~ ^[0-9]+$ ]] || die "--port must be a port number, got $port"
  if ls "$STATE"/*.pid >/dev/null 2>&1; then
    die "already up (pid files in $STATE): run 'bash deploy/local.sh down' first"
  fi
  listening "$port" && die "port $port is taken: choose another with --port"
  [ -x "$PYTHON" ] || die "no Python at $PYTHON: run 'bash scripts/install.sh' (or set PYTHON)"
  ensure_haproxy
  mkdir -p "$STATE"
  local ray_address=""
  if [ "${INCEPTION_EXPLORER_NO_RAY:-0}" != 1 ]; then
    [ -x "$RAY_BIN" ] || die "Ray is not installed: pip install 'inception-explorer[ray]' (or INCEPTION_EXPLORER_NO_RAY=1)"
    local ray_port; ray_port=$(free_port)
    # a temp dir of its own (short: Ray's sockets live there), so this head never meets another
    local ray_tmp; ray_tmp=$(mktemp -d /tmp/ie-ray-XXXXXX)
    echo "$ray_tmp" > "$STATE/ray.tmpdir"
    # Ray's token authentication: a token of this deployment's own, for the head and the replicas
    (umask 077 && "$PYTHON" -c 'import secrets; print(secrets.token_hex(32))' > "$STATE/ray.token")
    export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$STATE/ray.token"
    RAY_USAGE_STATS_ENABLED=0 start "$STATE/ray.log" "$RAY_BIN" start --head --block \
      --port "$ray_port" --node-ip-address 127.0.0.1 \
      --num-cpus "${INCEPTION_EXPLORER_RAY_CPUS:-$(nproc)}" \
      --object-store-memory "${INCEPTION_EXPLORER_RAY_OBJECT_STORE:-200000000}" \
      --include-dashboard false --temp-dir "$ray_tmp" --disable-usage-stats > "$STATE/ray.pid"
    ray_address="127.0.0.1:$ray_port"
    echo "$ray_address" > "$STATE/ray.address"
  fi
  local ports=() p i
  for i in $(seq 1 "$replicas"); do
    p=$(free_port)
    while [ "$p" = "$port" ] || [[ " ${ports[*]} " == *" $p "* ]]; do p=$(free_port); done
    ports+=("$p")
    (cd "$ROOT" && INCEPTION_EXPLORER_RAY="$ray_address" start "$STATE/replica-$p.log" \
      "$PYTHON" -m streamlit run explorer/app.py --server.headless true --server.port "$p" \
      --server.address 127.0.0.1 --browser.gatherUsageStats false > "$STATE/replica-$p.pid")
  done
  echo "${ports[*]}" > "$STATE/replicas"
  echo "$port" > "$STATE/port"
  write_haproxy_cfg "$port" "${ports[@]}"
  haproxy -c -q -f "$STATE/haproxy.cfg" || die "the generated $STATE/haproxy.cfg is invalid"
  start "$STATE/haproxy.log" haproxy -db -f "$STATE/haproxy.cfg" > "$STATE/haproxy.pid.run"

  # ready: the Ray head, every replica directly, then the proxy
  local deadline=$((SECONDS + UP_TIMEOUT_S))
  if [ -n "$ray_address" ]; then
    until listening "${ray_address##*:}"; do
      alive "$(cat "$STATE/ray.pid")" || { cat "$STATE/ray.log" >&2; down; die "the Ray head did not start"; }
      [ $SECONDS -lt $deadline ] || { down; die "the Ray head did not answer in ${UP_TIMEOUT_S}s"; }
      sleep 0.5
    done
  fi
  for p in "${ports[@]}"; do
    until answers "http://127.0.0.1:$p/_stcore/health"; do
      alive "$(cat "$STATE/replica-$p.pid")" || { tail -20 "$STATE/replica-$p.log" >&2; down; die "replica $p did not start"; }
      [ $SECONDS -lt $deadline ] || { down; die "replica $p did not answer in ${UP_TIMEOUT_S}s"; }
      sleep 0.5
    done
  done
  until answers "http://127.0.0.1:$port/_stcore/health"; do
    alive "$(cat "$STATE/haproxy.pid.run")" || { cat "$STATE/haproxy.log" >&2; down; die "haproxy did not start"; }
    [ $SECONDS -lt $deadline ] || { down; die "the proxy did not answer in ${UP_TIMEOUT_S}s"; }
    sleep 0.5
  done
  echo "up: http://127.0.0.1:$port -> replicas on ${ports[*]}${ray_address:+, Ray head at $ray_address}"
}

status() {
  [ -f "$STATE/port" ] || { echo "down"; return 0; }
  local port; port=$(cat "$STATE/port")
  echo "proxy 127.0.0.1:$port: $(answers "http://127.0.0.1:$port/_stcore/health" && echo answers || echo silent)"
  for p in $(cat "$STATE/replicas"); do
    echo "replica $p: $(answers "http://127.0.0.1:$p/_stcore/health" && echo answers || echo silent)"
  done
  [ -f "$STATE/ray.address" ] && echo "ray $(cat "$STATE/ray.address"): $(listening "$(cut -d: -f2 "$STATE/ray.address")" && echo answers || echo silent)"
  return 0
}

down() {
  [ -d "$STATE" ] || { echo "down: nothing was started"; return 0; }
  stop_pidfile "$STATE/haproxy.pid.run"
  for f in "$STATE"/replica-*.pid; do [ -e "$f" ] && stop_pidfile "$f"; done
  stop_pidfile "$STATE/ray.pid"
  if [ -f "$STATE/ray.tmpdir" ]; then rm -rf "$(cat "$STATE/ray.tmpdir")"; fi
  rm -f "$STATE/ray.tmpdir" "$STATE/ray.address" "$STATE/ray.token" "$STATE/replicas" "$STATE/port" "$STATE/haproxy.pid"
  echo "down: stopped what was started (logs kept in $STATE)"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  *) usage ;;
esac
