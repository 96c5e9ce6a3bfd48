#!/usr/bin/env bash
# orm side by side with the peers: SeaORM 2.0 and Django + DRF read the same PostgreSQL
# dataset, in one time window, and the ratios are printed as a markdown table.
#
#   bench/side_by_side.sh              normal run, about 40 minutes on 2 cores (15 without
#                                      the second window: SECOND=0)
#   QUICK=1 bench/side_by_side.sh      smoke run (a few minutes): 3 runs for orm, the peers' --quick
#   RUNS=51 bench/side_by_side.sh      timed runs per case and side for orm (default 31)
#   PEER_RUNS=11 bench/side_by_side.sh at least this many timed runs per peer case (default 7,
#                                      the peers' own default; short cases get more)
#
# Other settings (environment):
#   PEER_DIR      where the peers live (default: ../shared/peer next to the repository)
#   PGHOST PGPORT PGUSER   the server (default 127.0.0.1, 5432, postgres); the role must
#                 be allowed to create databases; trust or .pgpass authentication
#   SKIP_LOAD=1   reuse an existing peer_django instead of reloading it
#   SEAORM_PING   on (SeaORM's default, test_before_acquire) or off; default on
#   SSLMODE       the libpq sslmode of all three connections; default disable: orm's
#                 default build has no TLS (docs/guide.md, "TLS to PostgreSQL"), while SeaORM's
#                 and Django's defaults negotiate TLS 1.3 with a server that offers it, so
#                 the default keeps the transport the same for all three (plain TCP)
#   PG_LOG        the server's log file, for the database's floor (see below); default:
#                 /var/log/postgresql/postgresql-<major>-main.log
#
# What it does:
#   1. copies the peers (without .venv, target, results) to target/peers/{django,seaorm}
#      and runs them there; the Django side gets a venv from its requirements.txt;
#   2. loads the dataset once with the Django peer's own loader into peer_django
#      (1,000 persons, 1,000 threads, 100,000 messages) and makes peer_seaorm and
#      peer_orm as `createdb -T peer_django` copies, recreated each run; the row md5s
#      of every copy are checked against the loader's;
#   3. builds our demo and the SeaORM peer (release);
#   4. in one time window: `demo bench` on peer_orm (orm and hand-written diesel,
#      alternating); the database's floor: one more short `demo bench` pass with
#      auto_explain and statement logging loaded into its sessions only (PGOPTIONS), then
#      each logged statement with its logged parameters under EXPLAIN (ANALYZE) via psql;
#      the SeaORM peer (sections list,threads) on peer_seaorm; the Django peer (sections
#      list,threads) on peer_django; `demo bench` on peer_orm again;
#   5. a second window (SECOND=0 skips it): counts, streaming (100,000 messages, a fresh
#      process per run) and writes (bulk_create 100,000 messages, bulk_update 10,000
#      texts; committed, undone outside the timing) for all three, on the same copies;
#   6. prints the tables (also written to results.md) with the issue's targets.
# Indexes: the three read the same schema, the one Django's migrations make
# (primary keys, the foreign-key and `deleted` indexes, `soft_deletes_ignore`); orm
# runs with --no-migrate, so the demo's own indexes (the ordering indexes of
# migrations/*/2026-11-24-000002, the live messages' partial ordering index of
# 000003/000005 and the live thread index of 000004) are given to none of them. Each
# ORM is measured on the same indexes, not on the demo's.
# Output: target/peers/results/<UTC timestamp>/
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER_DIR=${PEER_DIR:-$(cd "$ROOT/.." && pwd)/shared/peer}
SCRATCH=$ROOT/target/peers
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
BASE_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}"
SEAORM_PING=${SEAORM_PING:-on}
SSLMODE=${SSLMODE:-disable}
# libpq (psql, Django's psycopg, orm's diesel) reads PGSSLMODE; sqlx takes it in the URL.
export PGSSLMODE=$SSLMODE

if [ -n "${QUICK:-}" ]; then
    RUNS=${RUNS:-3}
    PEER_FLAGS=(--quick)
else
    RUNS=${RUNS:-31}
    # The peers' own rule: at least this many runs, more for short cases (about 3 s
    # each, at most 51).
    PEER_FLAGS=(--repeat "${PEER_RUNS:-7}")
fi

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$SCRATCH/results/$STAMP
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
echo "== side by side, results in $OUT (RUNS=$RUNS${QUICK:+, QUICK})"

# ---- 1. the peers, copied into the scratch directory --------------------------------
for peer in django seaorm; do
    if [ ! -d "$PEER_DIR/$peer" ]; then
        echo "peer $peer not found under $PEER_DIR (set PEER_DIR)" >&2
        exit 1
    fi
    mkdir -p "$SCRATCH/$peer"
    rsync -a --delete --exclude .venv --exclude target --exclude results \
        "$PEER_DIR/$peer/" "$SCRATCH/$peer/"
done
# The SeaORM peer is a standalone package; under target/ cargo would take it for a
# member of this workspace, so its copy gets an empty [workspace] table of its own.
printf '\n[workspace]\n' >> "$SCRATCH/seaorm/Cargo.toml"

DJANGO=$SCRATCH/django
if [ ! -x "$DJANGO/.venv/bin/python" ]; then
    python3 -m venv "$DJANGO/.venv"
fi
"$DJANGO/.venv/bin/pip" install -q --disable-pip-version-check -r "$DJANGO/requirements.txt"
PY=$DJANGO/.venv/bin/python

# ---- 2. the dataset, loaded once, and its copies ------------------------------------
MD5_SQL="SELECT t, md5(string_agg(r, E'\\n' ORDER BY id)) FROM (
  SELECT 'weave_person' t, id, concat_ws('|', id, (extract(epoch FROM created) * 1000000)::bigint,
         (extract(epoch FROM updated) * 1000000)::bigint, deleted, first_name, last_name, email_address) r
    FROM weave_person
  UNION ALL
  SELECT 'weave_thread', id, concat_ws('|', id, (extract(epoch FROM created) * 1000000)::bigint,
         (extract(epoch FROM updated) * 1000000)::bigint, deleted, title)
    FROM weave_thread
  UNION ALL
  SELECT 'weave_message', id, concat_ws('|', id, (extract(epoch FROM created) * 1000000)::bigint,
         (extract(epoch FROM updated) * 1000000)::bigint, deleted, text, sent_by_id, thread_id)
    FROM weave_message) rows GROUP BY t ORDER BY t"

if [ -z "${SKIP_LOAD:-}" ]; then
    echo "== loading the dataset with the Django peer's loader (peer_django, 100,000 messages)"
    (cd "$DJANGO" && "$PY" bench.py setup --db peer_django --messages 100000 --recreate) \
        | tee "$OUT/setup.log"
    grep -E '^  md5 ' "$OUT/setup.log" | sed -E 's/^  md5 ([a-z_]+): ([0-9a-f]+)$/\1|\2/' \
        | sort > "$OUT/md5-loader.txt"
else
    echo "== SKIP_LOAD: using peer_django as it is"
    psql -d peer_django -Atc "$MD5_SQL" > "$OUT/md5-loader.txt"
fi
if [ "$(wc -l < "$OUT/md5-loader.txt")" -ne 3 ]; then
    echo "could not read the loader's md5s" >&2
    exit 1
fi

for db in peer_seaorm peer_orm; do
    psql -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    for attempt in $(seq 1 30); do
        # CREATE DATABASE ... TEMPLATE fails while another session is connected to it.
        if createdb -T peer_django "$db"; then break; fi
        if [ "$attempt" -eq 30 ]; then exit 1; fi
        echo "createdb $db failed (peer_django busy?), retrying in 10 s"
        sleep 10
    done
    psql -d "$db" -qc "VACUUM ANALYZE"
    psql -d "$db" -Atc "$MD5_SQL" > "$OUT/md5-$db.txt"
    if ! cmp -s "$OUT/md5-loader.txt" "$OUT/md5-$db.txt"; then
        echo "md5 of $db differs from the loader's:" >&2
        diff "$OUT/md5-loader.txt" "$OUT/md5-$db.txt" >&2 || true
        exit 1
    fi
    echo "$db: a copy of peer_django, md5s identical"
done

# ---- 3. builds ------------------------------------------------------------------------
echo "== building (release): demo, SeaORM peer"
(cd "$ROOT" && cargo build --release -p demo)
(cd "$SCRATCH/seaorm" && cargo build --release --locked)
DEMO=$ROOT/target/release/demo
SEAORM=$SCRATCH/seaorm/target/release/seaorm-bench

machine_info() {
    echo "date_utc=$(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "nproc=$(nproc)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    echo "postgres=$(psql -d postgres -Atc 'SHOW server_version')"
    echo "rustc=$(rustc --version)"
    echo "python=$("$PY" --version 2>&1)"
    echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "sslmode=$SSLMODE"
    echo "seaorm_ping=$SEAORM_PING"
}
machine_info > "$OUT/machine.txt"

# ---- 4. one time window ---------------------------------------------------------------
orm_bench() {
    "$DEMO" --database-url "$BASE_URL/peer_orm?sslmode=$SSLMODE" --no-migrate bench --runs "$1" --json
}

echo "== [$(date -u +%T)] orm: demo bench on peer_orm"
orm_bench "$RUNS" | tee "$OUT/orm.jsonl"

# The database's floor, right after orm's first pass: the same bench once more (a few
# runs), with auto_explain and statement logging loaded into its own sessions only.
# auto_explain logs each statement's executor time (ANALYZE with TIMING OFF; this
# includes converting the rows and writing them to the client), statement logging its
# parameters; then each statement is run again with those parameters under
# EXPLAIN (ANALYZE, TIMING OFF) through psql. Only entries of peer_orm written after
# the offset below are read.
echo "== [$(date -u +%T)] the database's floor (auto_explain in orm's sessions, EXPLAIN ANALYZE)"
MAJOR=$(psql -d postgres -Atc "SELECT current_setting('server_version_num')::int / 10000")
PG_LOG=${PG_LOG:-/var/log/postgresql/postgresql-$MAJOR-main.log}
if [ -r "$PG_LOG" ]; then
    OFFSET=$(stat -c %s "$PG_LOG")
    PGOPTIONS="-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 \
-c auto_explain.log_analyze=on -c auto_explain.log_timing=off -c auto_explain.log_format=json \
-c log_min_duration_statement=0" \
        orm_bench 5 > "$OUT/orm-floor-pass.jsonl"
    sleep 1 # let the server flush its log
    tail -c +$((OFFSET + 1)) "$PG_LOG" > "$OUT/server-log.txt"
    python3 "$ROOT/bench/side_by_side_report.py" --explain "$OUT"
else
    echo "cannot read the server log $PG_LOG (set PG_LOG): no floor column"
    : > "$OUT/server-log.txt"
fi

echo "== [$(date -u +%T)] SeaORM peer on peer_seaorm (ping $SEAORM_PING, sslmode=$SSLMODE)"
"$SEAORM" run --url "$BASE_URL/peer_seaorm?sslmode=$SSLMODE" --ping "$SEAORM_PING" --sections list,threads \
    "${PEER_FLAGS[@]}" --label "ping-$SEAORM_PING" --out "$OUT/seaorm.json" > "$OUT/seaorm.log"
grep -E '^\s+\[' "$OUT/seaorm.log" || true

echo "== [$(date -u +%T)] Django peer on peer_django"
(cd "$DJANGO" && "$PY" bench.py run --db peer_django --sections list,threads \
    "${PEER_FLAGS[@]}" --out "$OUT/django.json") > "$OUT/django.log"
grep -E '^\s+\[' "$OUT/django.log" || true

echo "== [$(date -u +%T)] orm again, after the peers"
orm_bench "$RUNS" | tee "$OUT/orm-again.jsonl"
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"

# ---- 4b. a second window: counts, streaming, writes (SECOND=0 skips it) -----------------
if [ "${SECOND:-1}" != 0 ]; then
    echo "== [$(date -u +%T)] second window: orm counts, streaming, writes on peer_orm"
    "$DEMO" --database-url "$BASE_URL/peer_orm?sslmode=$SSLMODE" --no-migrate bench --runs "$RUNS" --json \
        --sections counts,stream,writes | tee "$OUT/orm-more.jsonl"
    echo "== [$(date -u +%T)] SeaORM peer: counts, stream, writes"
    "$SEAORM" run --url "$BASE_URL/peer_seaorm?sslmode=$SSLMODE" --ping "$SEAORM_PING" \
        --sections counts,stream,writes "${PEER_FLAGS[@]}" --label "ping-$SEAORM_PING" \
        --out "$OUT/seaorm-more.json" > "$OUT/seaorm-more.log"
    grep -E '^\s+\[' "$OUT/seaorm-more.log" || true
    echo "== [$(date -u +%T)] Django peer: counts, stream, writes"
    (cd "$DJANGO" && "$PY" bench.py run --db peer_django --sections counts,stream,writes \
        "${PEER_FLAGS[@]}" --out "$OUT/django-more.json") > "$OUT/django-more.log"
    grep -E '^\s+\[' "$OUT/django-more.log" || true
    echo "loadavg_end_second=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
fi

# ---- 5. the table -----------------------------------------------------------------------
python3 "$ROOT/bench/side_by_side_report.py" "$OUT" | tee "$OUT/results.md"
echo
echo "results in $OUT"
