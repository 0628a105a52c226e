#!/usr/bin/env bash
# Makes sure the RabbitMQ and PostgreSQL the tests use are running: starts
# them where they are installed but stopped. Servers given by TEST_AMQP_URI /
# TEST_POSTGRES_URL are the caller's business and are left alone.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() {  # name host port seconds
  local i
  for ((i = 0; i < $4 * 2; i++)); do
    port_open "$2" "$3" && { echo "$1 is up on $2:$3"; return 0; }
    sleep 0.5
  done
  echo "$1 did not come up on $2:$3 within $4 s" >&2
  return 1
}

if [[ -z "${TEST_AMQP_URI:-}" ]] && ! port_open 127.0.0.1 5672; then
  if command -v rabbitmq-server >/dev/null; then
    echo "starting RabbitMQ"
    rabbitmq-server -detached
    # the port opens before the broker has booted: wait for the broker itself
    timeout 120 rabbitmqctl await_startup >/dev/null 2>&1 || true
    wait_for RabbitMQ 127.0.0.1 5672 90
  else
    echo "RabbitMQ is not running and not installed (Debian: apt-get install rabbitmq-server)" >&2
    exit 1
  fi
fi

if [[ -z "${TEST_POSTGRES_URL:-}" ]] && ! port_open 127.0.0.1 5432; then
  if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
    wait_for PostgreSQL 127.0.0.1 5432 60
  else
    echo "PostgreSQL is not running and not installed (Debian: apt-get install postgresql)" >&2
    exit 1
  fi
fi
