#!/usr/bin/env bash
# The demo's HTTP API on PostgreSQL under the async benchmark's load (`demo load`:
# list_some and the threads page at 1, 8, 32 and 100 kept-alive clients, loopback),
# with its reads on a streaming replica (`demo --replica URL serve`) and with every
# statement on the primary, alternating, in one window. The per-request profiling is
# off in both (its cost is measured by bench/http_load.sh).
#
#   bash .ci/scale_out.sh start          a replica on 5433 (once)
#   bench/replica_load.sh                3 s per path and client count
#   SECONDS_EACH=10 ROUNDS=2 bench/replica_load.sh
#
# Settings (environment): PG_URL (default postgres://postgres@127.0.0.1:5432/orm_bench,
# created and seeded when empty), REPLICA_URL (default the same database on
# 127.0.0.1:5433), PORT (default 8766), ROUNDS (default 1: each setup once, in
# turn). One machine holds the primary, the replica, the server and the load
# generator: the table compares the two setups, not what a replica on its own
# machine adds.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/orm_bench}
REPLICA_URL=${REPLICA_URL:-postgres://postgres@127.0.0.1:5433/${PG_URL##*/}}
PORT=${PORT:-8766}
SECONDS_EACH=${SECONDS_EACH:-3}
ROUNDS=${ROUNDS:-1}

cargo build --release -p demo
DEMO=$ROOT/target/release/demo

psql "${PG_URL%/*}/postgres" -qc "CREATE DATABASE ${PG_URL##*/}" 2>/dev/null || true
"$DEMO" --database-url "$PG_URL" seed > /dev/null

HEADER_DONE=
for round in $(seq "$ROUNDS"); do
    for setup in replica primary; do
        flag=()
        [ "$setup" = replica ] && flag=(--replica "$REPLICA_URL")
        "$DEMO" --database-url "$PG_URL" "${flag[@]}" serve --port "$PORT" --no-profile > /dev/null &
        server=$!
        for _ in $(seq 100); do
            (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
            sleep 0.1
        done
        label="reads on the $setup"
        [ "$ROUNDS" -gt 1 ] && label="$label (round $round)"
        "$DEMO" load --addr "127.0.0.1:$PORT" --seconds "$SECONDS_EACH" --label "$label" |
            if [ -n "$HEADER_DONE" ]; then tail -n +3; else cat; fi
        HEADER_DONE=1
        kill -INT "$server"
        wait "$server" 2>/dev/null || true
    done
done
