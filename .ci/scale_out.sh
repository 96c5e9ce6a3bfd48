#!/usr/bin/env bash
# The servers of the scale-out tests, from Debian's packages, beside the main cluster:
#
#   replica      a hot standby of the main cluster on 127.0.0.1:5433 (pg_basebackup -R,
#                streaming through a replication slot), shared by the replica tests
#   stoppable    a second hot standby on 127.0.0.1:5434, for the one test that stops and
#                restarts its replica (so the others are not disturbed)
#   PgBouncer    on 127.0.0.1:6432 in transaction pooling mode, in front of the main
#                cluster, every database name passed through (`* =`)
#
#   eval "$(bash .ci/scale_out.sh start)"   idempotent; prints the exports of the
#                                           variables the tests read
#   bash .ci/scale_out.sh stop      stops and removes all three, drops the slots
#
# Run as root (pg_createcluster, and PgBouncer started as the postgres user).
set -euo pipefail

PRIMARY_PORT=${PRIMARY_PORT:-5432}
REPLICA_PORT=${REPLICA_PORT:-5433}
STOPPABLE_PORT=${STOPPABLE_PORT:-5434}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-6432}
BOUNCER_DIR=${BOUNCER_DIR:-/var/tmp/orm_pgbouncer}
VERSION="$(ls /etc/postgresql | sort -V | tail -n 1)"

as_postgres() { runuser -u postgres -- "$@"; }
ready() { pg_isready -h 127.0.0.1 -p "$1" -q 2>/dev/null; }
primary_sql() { psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -tAqc "$1"; }

start_replica() {
  local name=$1 port=$2 slot="orm_${1}"
  local data="/var/lib/postgresql/$VERSION/$name"
  # A cluster left half made (a base backup that failed) is made again.
  if pg_lsclusters -h | awk '{print $2}' | grep -qx "$name" && [ ! -f "$data/standby.signal" ]; then
    echo >&2 "scale-out: $VERSION/$name is not a standby; making it again"
    pg_dropcluster --stop "$VERSION" "$name" >&2 || true
  fi
  # The slot keeps the WAL the standby has not replayed.
  if ! primary_sql "SELECT 1 FROM pg_replication_slots WHERE slot_name = '$slot'" | grep -q 1; then
    primary_sql "SELECT pg_create_physical_replication_slot('$slot')" >/dev/null
  fi
  if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$name"; then
    echo >&2 "scale-out: creating standby $VERSION/$name on port $port"
    pg_createcluster -q "$VERSION" "$name" -p "$port" >&2
    rm -rf "${data:?}"/*
    as_postgres pg_basebackup -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$data" -R -X stream -c fast -S "$slot"
    local hba="/etc/postgresql/$VERSION/$name/pg_hba.conf"
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' > "$hba"
    echo "hot_standby = on" >> "/etc/postgresql/$VERSION/$name/postgresql.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$name" start >&2 || true
  for _ in $(seq 1 60); do ready "$port" && break; sleep 1; done
  if ! ready "$port"; then
    echo >&2 "scale-out: standby $name did not start"
    tail -n 30 "/var/log/postgresql/postgresql-$VERSION-$name.log" >&2 || true
    exit 1
  fi
}

ours_running() {
  [ -f "$BOUNCER_DIR/pgbouncer.pid" ] && kill -0 "$(cat "$BOUNCER_DIR/pgbouncer.pid")" 2>/dev/null
}

start_pgbouncer() {
  if ! command -v pgbouncer >/dev/null; then
    echo >&2 "scale-out: installing pgbouncer from Debian's packages"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null 2>&2
  fi
  if ours_running; then
    return
  fi
  # The package's own service (session mode, no `* =`) would hold the port: stopped
  # through its own script.
  if [ -x /etc/init.d/pgbouncer ]; then
    /etc/init.d/pgbouncer stop >/dev/null 2>&1 || true
  fi
  for _ in $(seq 1 30); do ready "$PGBOUNCER_PORT" || break; sleep 0.2; done
  if ready "$PGBOUNCER_PORT"; then
    echo >&2 "scale-out: port $PGBOUNCER_PORT is taken by another server"
    exit 1
  fi
  mkdir -p "$BOUNCER_DIR"
  # PgBouncer 1.18 wants an auth file even where every user is trusted.
  echo '"postgres" ""' > "$BOUNCER_DIR/userlist.txt"
  cat > "$BOUNCER_DIR/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PRIMARY_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $BOUNCER_DIR/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 400
server_reset_query =
logfile = $BOUNCER_DIR/pgbouncer.log
pidfile = $BOUNCER_DIR/pgbouncer.pid
EOF
  chown -R postgres "$BOUNCER_DIR"
  as_postgres pgbouncer -q -d "$BOUNCER_DIR/pgbouncer.ini"
  for _ in $(seq 1 50); do ready "$PGBOUNCER_PORT" && break; sleep 0.2; done
  ready "$PGBOUNCER_PORT" || { echo >&2 "scale-out: pgbouncer did not start"; cat "$BOUNCER_DIR/pgbouncer.log"; exit 1; }
}

start() {
  local hba="/etc/postgresql/$VERSION/main/pg_hba.conf"
  if ! grep -q '^host replication all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host replication all 127.0.0.1/32 trust' "$hba"
    primary_sql "SELECT pg_reload_conf()" >/dev/null
  fi
  start_replica replica "$REPLICA_PORT"
  start_replica stoppable "$STOPPABLE_PORT"
  start_pgbouncer
  echo >&2 "scale-out: standbys on $REPLICA_PORT and $STOPPABLE_PORT, pgbouncer on $PGBOUNCER_PORT"
}

# What the tests read, for `eval "$(bash .ci/scale_out.sh start)"`: the only output.
exports() {
  echo "export ORM_TEST_REPLICA_URL=postgres://postgres@127.0.0.1:$REPLICA_PORT/test"
  echo "export ORM_TEST_STOPPABLE_REPLICA_URL=postgres://postgres@127.0.0.1:$STOPPABLE_PORT/test"
  echo "export ORM_TEST_STOPPABLE_REPLICA_CLUSTER='$VERSION stoppable'"
  echo "export ORM_TEST_PGBOUNCER_URL=postgres://postgres@127.0.0.1:$PGBOUNCER_PORT"
}

stop() {
  if [ -f "$BOUNCER_DIR/pgbouncer.pid" ]; then
    kill "$(cat "$BOUNCER_DIR/pgbouncer.pid")" 2>/dev/null || true
    rm -rf "$BOUNCER_DIR"
  fi
  for name in replica stoppable; do
    if pg_lsclusters -h | awk '{print $2}' | grep -qx "$name"; then
      pg_dropcluster --stop "$VERSION" "$name" || true
    fi
    # A walsender still attached keeps the slot active: ended first, then dropped.
    primary_sql "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'orm_$name' AND active_pid IS NOT NULL" >/dev/null || true
    for _ in 1 2 3 4 5; do
      primary_sql "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'orm_$name' AND NOT active" >/dev/null 2>&1 || true
      primary_sql "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'orm_$name'" | grep -q 1 || break
      sleep 0.5
    done
  done
}

if [ "$(id -u)" != 0 ]; then
  echo >&2 "scale-out: run as root (pg_createcluster, and PgBouncer as the postgres user)"
  exit 1
fi

case "${1:-}" in
  start) start >&2; exports ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
