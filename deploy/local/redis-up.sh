#!/usr/bin/env bash
# Ensures a Redis answers at HEEDFUL_REDIS_URL's host:port (default 127.0.0.1:6379); starts a local one if not.
set -euo pipefail
url="${HEEDFUL_REDIS_URL:-redis://127.0.0.1:6379/0}"
hostport="${url#redis://}"; hostport="${hostport%%/*}"; hostport="${hostport##*@}"
host="${hostport%%:*}"; port="${hostport##*:}"
ping() { (exec 3<>"/dev/tcp/$host/$port" && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
if ping; then exit 0; fi
if ! command -v redis-server >/dev/null; then
  echo "no Redis answers at $host:$port and redis-server is not installed (apt-get install redis-server)" >&2
  exit 1
fi
mkdir -p var/redis
redis-server --daemonize yes --bind "$host" --port "$port" --save "" --appendonly no \
  --dir "$PWD/var/redis" --logfile "$PWD/var/redis/redis.log"
for _ in $(seq 50); do ping && exit 0; sleep 0.1; done
echo "started redis-server on $host:$port but it does not answer; see var/redis/redis.log" >&2
exit 1
