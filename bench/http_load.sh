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
# (default 8765). The load generator shares the machine with the server: on 2 cores the
# numbers compare runs of this script, not machines.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/orm_bench}
SQLITE_PATH=${SQLITE_PATH:-$ROOT/target/http_load.db}
PORT=${PORT:-8765}
SECONDS_EACH=${SECONDS_EACH:-5}

cargo build --release -p demo
DEMO=$ROOT/target/release/demo

psql "${PG_URL%/*}/postgres" -qc "CREATE DATABASE ${PG_URL##*/}" 2>/dev/null || true

for url in "$SQLITE_PATH" "$PG_URL"; do
    "$DEMO" --database-url "$url" seed > /dev/null
    for mode in profiled --no-profile; do
        flag=()
        [ "$mode" = --no-profile ] && flag=(--no-profile)
        "$DEMO" --database-url "$url" serve --port "$PORT" "${flag[@]}" > /dev/null &
        server=$!
        for _ in $(seq 50); do
            (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
            sleep 0.1
        done
        backend=sqlite
        case "$url" in postgres*) backend=postgres ;; esac
        "$DEMO" load --addr "127.0.0.1:$PORT" --seconds "$SECONDS_EACH" \
            --label "orm $backend, ${mode#--}" | if [ -n "${HEADER_DONE:-}" ]; then tail -n +3; else cat; fi
        HEADER_DONE=1
        kill -INT "$server"
        wait "$server" 2>/dev/null || true
    done
done

if [ -z "${SKIP_SEAORM:-}" ]; then
    (cd bench/seaorm_server && cargo build --release)
    SEAORM=$ROOT/bench/seaorm_server/target/release/seaorm-server
    "$SEAORM" --database-url "$PG_URL" --port "$PORT" &
    server=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
    "$DEMO" load --addr "127.0.0.1:$PORT" --seconds "$SECONDS_EACH" --label "SeaORM postgres" | tail -n +3
    kill -INT "$server"
    wait "$server" 2>/dev/null || true
fi
