#!/usr/bin/env bash
# The demo's HTTP API under load, on both backends: list_some and the threads page at
# 1, 8, 32 and 100 concurrent clients (`demo load`: one kept-alive connection per
# client, loopback), with the per-request profiling on and off; then, in the same
# window and on the same PostgreSQL rows, bench/seaorm_server (axum + SeaORM, async
# sqlx, pool of 10 as the demo's) on the same two routes. The body hashes in the table
# show both servers answer the same bytes. SKIP_SEAORM=1 leaves it out (its first
# build fetches and compiles sea-orm and sqlx: several minutes).
#
#   bench/http_load.sh                 5 s per path and client count
#   SECONDS_EACH=10 bench/http_load.sh
#
# Settings (environment): PG_URL (default postgres://postgres@127.0.0.1:5432/orm_bench,
# created and seeded when empty), SQLITE_PATH (default target/http_load.db), PORT
# (default 8765), ROUNDS (default 2: PostgreSQL without profiling and SeaORM, in turn,
# that many times). The load generator shares the machine with the server: on 2 cores the
# numbers compare runs of this script, not machines.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/orm_bench}
SQLITE_PATH=${SQLITE_PATH:-$ROOT/target/http_load.db}
PORT=${PORT:-8765}
SECONDS_EACH=${SECONDS_EACH:-5}
ROUNDS=${ROUNDS:-2}

cargo build --release -p demo
DEMO=$ROOT/target/release/demo

psql "${PG_URL%/*}/postgres" -qc "CREATE DATABASE ${PG_URL##*/}" 2>/dev/null || true

# One server on $PORT for one load: `serve LABEL COMMAND...`.
serve() {
    local label=$1
    shift
    "$@" > /dev/null &
    local server=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
    "$DEMO" load --addr "127.0.0.1:$PORT" --seconds "$SECONDS_EACH" --label "$label" |
        if [ -n "${HEADER_DONE:-}" ]; then tail -n +3; else cat; fi
    HEADER_DONE=1
    kill -INT "$server"
    wait "$server" 2>/dev/null || true
}

"$DEMO" --database-url "$SQLITE_PATH" seed > /dev/null
"$DEMO" --database-url "$PG_URL" seed > /dev/null
serve "orm sqlite, profiled" "$DEMO" --database-url "$SQLITE_PATH" serve --port "$PORT"
serve "orm sqlite, no-profile" "$DEMO" --database-url "$SQLITE_PATH" serve --port "$PORT" --no-profile
serve "orm postgres, profiled" "$DEMO" --database-url "$PG_URL" serve --port "$PORT"

# PostgreSQL without profiling and SeaORM, alternating ROUNDS times, so that both see
# the same moments of a shared machine.
if [ -z "${SKIP_SEAORM:-}" ]; then
    (cd bench/seaorm_server && cargo build --release)
fi
SEAORM=$ROOT/bench/seaorm_server/target/release/seaorm-server
for round in $(seq "$ROUNDS"); do
    suffix=""
    [ "$ROUNDS" -gt 1 ] && suffix=" (round $round)"
    serve "orm postgres, no-profile$suffix" "$DEMO" --database-url "$PG_URL" serve --port "$PORT" --no-profile
    if [ -z "${SKIP_SEAORM:-}" ]; then
        serve "SeaORM postgres$suffix" "$SEAORM" --database-url "$PG_URL" --port "$PORT"
    fi
done
