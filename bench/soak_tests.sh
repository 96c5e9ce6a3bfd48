#!/usr/bin/env bash
# Runs the whole suite N times in a row (default 5) in a fresh clone of HEAD while
# two CPU-bound processes run beside it, and reports how many runs were green.
# A suite that depends on timing or on state another test changes fails here.
#
#   bench/soak_tests.sh [N]
#
# SOAK_TARGET_DIR reuses a build directory (the dependencies then build once);
# the PostgreSQL tests use ORM_TEST_POSTGRES_URL as the suite does, and are required
# (ORM_REQUIRE_POSTGRES=1, with the scale-out servers) so that a skipped backend
# cannot pass.
set -euo pipefail
runs="${1:-5}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
clone="$(mktemp -d)"
burners=()
cleanup() {
  for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$clone"
}
trap cleanup EXIT

git clone -q "$repo" "$clone"
export CARGO_TARGET_DIR="${SOAK_TARGET_DIR:-$clone/target}"
export ORM_TEST_POSTGRES_URL="${ORM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export ORM_REQUIRE_POSTGRES=1
# The replicas and PgBouncer of the scale-out tests (started if they are not running;
# left running: `bash .ci/scale_out.sh stop` removes them).
eval "$(bash "$repo/.ci/scale_out.sh" start)"
cd "$clone"
echo "soak: building in $CARGO_TARGET_DIR"
cargo test --workspace --no-run -q

for _ in 1 2; do
  ( while :; do :; done ) &
  burners+=("$!")
done

green=0
for i in $(seq 1 "$runs"); do
  log="$(mktemp)"
  started=$SECONDS
  if cargo test --workspace -q >"$log" 2>&1; then
    green=$((green + 1))
    echo "soak: run $i green ($((SECONDS - started)) s)"
  else
    echo "soak: run $i FAILED ($((SECONDS - started)) s); its failures:"
    grep -E "panicked at|^---- |FAILED" "$log" | head -40 || true
  fi
  rm -f "$log"
done
echo "soak: $green of $runs green under two CPU-bound processes"
[ "$green" = "$runs" ]
