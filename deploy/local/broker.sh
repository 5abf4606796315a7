#!/usr/bin/env bash
# A local Kafka-protocol broker for tests: tansu 0.6.0 with SQLite storage in a temporary
# directory, listening on 127.0.0.1:9092 (EAIBUS_BROKER_PORT overrides the port).
# EAIBUS_BROKER_STORAGE=memory keeps the records in memory instead: tansu's SQLite storage costs
# the broker far more per fetched record, so load figures taken on it measure the broker.
#   deploy/local/broker.sh start    install tansu when missing, start it, wait until it answers
#   deploy/local/broker.sh stop     stop it and remove its directory
#   deploy/local/broker.sh status   say whether it runs (exit 0) or not (exit 1)
set -euo pipefail

TANSU_VERSION=0.6.0
HOST=127.0.0.1
PORT="${EAIBUS_BROKER_PORT:-9092}"
# One directory per port holds the data file, the log and the pid file.
DIR="${TMPDIR:-/tmp}/eaibus-broker-$PORT"
PID_FILE="$DIR/tansu.pid"
case "${EAIBUS_BROKER_STORAGE:-sqlite}" in
  sqlite) STORAGE="sqlite://tansu.db" ;;
  memory) STORAGE="memory://tansu/" ;;
  *) echo "broker: EAIBUS_BROKER_STORAGE is sqlite or memory, not ${EAIBUS_BROKER_STORAGE}" >&2; exit 2 ;;
esac

log() { echo "broker: $*" >&2; }

port_answers() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

tansu_bin() {
  if command -v tansu >/dev/null 2>&1; then command -v tansu
  elif [ -x "$HOME/.cargo/bin/tansu" ]; then echo "$HOME/.cargo/bin/tansu"
  else return 1
  fi
}

# Installs tansu, or waits for an install already running (two would fight over the same
# target directory and double the build time on a shared machine).
ensure_tansu() {
  tansu_bin >/dev/null && return 0
  if pgrep -f "cargo install.* tansu" >/dev/null 2>&1; then
    log "waiting for the tansu install already running (this takes a while)"
    local waited=0
    while pgrep -f "cargo install.* tansu" >/dev/null 2>&1; do
      sleep 10
      waited=$((waited + 10))
      [ "$waited" -ge 7200 ] && { log "gave up waiting for the tansu install"; return 1; }
    done
    tansu_bin >/dev/null && return 0
    log "the running install did not produce tansu; installing it"
  fi
  log "installing tansu $TANSU_VERSION (cargo install, several minutes)"
  cargo install --locked tansu --version "$TANSU_VERSION" --features dynostore,libsql >&2
  tansu_bin >/dev/null
}

start() {
  if pid="$(running_pid)"; then
    log "already running (pid $pid) on $HOST:$PORT"
    return 0
  fi
  if port_answers; then
    log "something else listens on $HOST:$PORT; not starting"
    return 1
  fi
  ensure_tansu
  local tansu
  tansu="$(tansu_bin)"
  rm -rf "$DIR"
  mkdir -p "$DIR"
  # tansu 0.6 reads the sqlite:// path as relative to its working directory (a leading / is
  # dropped), so it runs from the directory with a relative file name.
  (
    cd "$DIR"
    exec nohup "$tansu" broker \
      --listener-url "tcp://$HOST:$PORT" \
      --advertised-listener-url "tcp://$HOST:$PORT" \
      --storage-engine "$STORAGE" \
      >"$DIR/tansu.log" 2>&1 </dev/null
  ) &
  echo $! >"$PID_FILE"
  local waited=0
  until port_answers; do
    if ! running_pid >/dev/null; then
      log "tansu exited while starting; its log:"
      tail -n 40 "$DIR/tansu.log" >&2 || true
      return 1
    fi
    sleep 0.2
    waited=$((waited + 1))
    if [ "$waited" -ge 150 ]; then
      log "tansu did not answer on $HOST:$PORT within 30 s"
      stop
      return 1
    fi
  done
  log "tansu $TANSU_VERSION runs on $HOST:$PORT (pid $(cat "$PID_FILE"), data in $DIR)"
}

stop() {
  if pid="$(running_pid)"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped tansu (pid $pid)"
  fi
  rm -rf "$DIR"
}

status() {
  if pid="$(running_pid)"; then
    echo "running: pid $pid on $HOST:$PORT, data in $DIR"
  else
    echo "stopped"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
