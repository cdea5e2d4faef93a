#!/usr/bin/env bash
# Installs and runs AWS's DynamoDB Local 1.25.1, as shipped in the npm package
# amplify-dynamodb-simulator@2.9.30 (folder package/emulator/).
#
#   scripts/dynamodb-local.sh install   # download into the cache folder (idempotent)
#   scripts/dynamodb-local.sh start     # install if needed, start on a free port, print the endpoint
#   scripts/dynamodb-local.sh endpoint  # print the endpoint of the running instance (exit 1 if none)
#   scripts/dynamodb-local.sh stop
#
# The cache folder is $DDB_LOCAL_HOME, default <repo>/.cache/dynamodb-local. The running instance's
# endpoint is kept in $DDB_LOCAL_HOME/endpoint so that tests, the demo and the Makefile share it.
# It runs -inMemory without -sharedDb: every access key id + region gets its own database, which is how
# the tests and the demo stand for two AWS accounts on one process.
set -euo pipefail

PACKAGE="amplify-dynamodb-simulator@2.9.30"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
home="${DDB_LOCAL_HOME:-$repo/.cache/dynamodb-local}"
emulator="$home/package/emulator"
mkdir -p "$home"

log() { echo "dynamodb-local: $*" >&2; }

ensure_java() {
  if command -v java >/dev/null 2>&1; then return; fi
  log "java not found; installing openjdk-17-jre-headless"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >&2
  else
    log "run: sudo apt-get install openjdk-17-jre-headless"; exit 1
  fi
}

install() {
  if [ -f "$emulator/DynamoDBLocal.jar" ]; then return; fi
  command -v npm >/dev/null 2>&1 || { log "npm is needed to fetch $PACKAGE"; exit 1; }
  log "installing $PACKAGE into $home"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null)
  tar -xzf "$tmp"/amplify-dynamodb-simulator-*.tgz -C "$home" package/emulator
  rm -rf "$tmp"
  [ -f "$emulator/DynamoDBLocal.jar" ] || { log "package did not contain package/emulator/DynamoDBLocal.jar"; exit 1; }
}

reachable() {
  # Any HTTP answer (DynamoDB Local answers 400 to a bare GET) means it is up.
  curl -s -o /dev/null --max-time 2 "$1" 2>/dev/null
}

endpoint() {
  [ -f "$home/endpoint" ] || return 1
  local ep; ep=$(cat "$home/endpoint")
  reachable "$ep" || return 1
  echo "$ep"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  if endpoint; then return; fi
  # One starter at a time (parallel test binaries); the server itself must not inherit the lock.
  exec 9>"$home/.lock"
  flock -w 180 9 || { log "timed out waiting for $home/.lock"; exit 1; }
  if endpoint; then return; fi
  ensure_java
  install
  local port="${DDB_LOCAL_PORT:-$(free_port)}"
  log "starting on port $port"
  nohup java -Djava.library.path="$emulator/DynamoDBLocal_lib" -jar "$emulator/DynamoDBLocal.jar" \
    -inMemory -port "$port" -disableTelemetry >"$home/server.log" 2>&1 9>&- &
  echo $! >"$home/pid"
  local ep="http://127.0.0.1:$port"
  for _ in $(seq 1 120); do
    if reachable "$ep"; then echo "$ep" >"$home/endpoint"; echo "$ep"; return; fi
    if ! kill -0 "$(cat "$home/pid")" 2>/dev/null; then break; fi
    sleep 0.5
  done
  log "did not start; its log ($home/server.log):"; cat "$home/server.log" >&2; exit 1
}

stop() {
  if [ -f "$home/pid" ]; then kill "$(cat "$home/pid")" 2>/dev/null || true; fi
  rm -f "$home/pid" "$home/endpoint"
}

case "${1:-start}" in
  install) ensure_java; install ;;
  start) start ;;
  endpoint) endpoint ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|endpoint|stop" >&2; exit 2 ;;
esac
