#!/usr/bin/env bash
# Makes sure Postgres, Redis and NATS (with JetStream) answer on their default
# ports: uses running ones, starts installed-but-stopped ones, and otherwise
# stops with what to install. Never stops or restarts a running server.
set -euo pipefail

answers() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_for() { # name port
  for _ in $(seq 1 50); do
    if answers 127.0.0.1 "$2"; then return 0; fi
    sleep 0.2
  done
  echo "services: $1 did not start on port $2" >&2
  exit 1
}

missing() { # what package
  echo "services: $1 is not running on 127.0.0.1 and is not installed; install it (Debian: apt-get install $2) or start it on its default port" >&2
  exit 1
}

if ! answers 127.0.0.1 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    wait_for PostgreSQL 5432
  else
    missing PostgreSQL postgresql
  fi
fi

if ! answers 127.0.0.1 6379; then
  if command -v redis-server >/dev/null; then
    echo "services: starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    wait_for Redis 6379
  else
    missing Redis redis-server
  fi
fi

if ! answers 127.0.0.1 4222; then
  if [ -x /usr/sbin/nats-server ]; then
    echo "services: starting NATS with JetStream"
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server
    wait_for NATS 4222
  else
    missing "NATS server" nats-server
  fi
fi
