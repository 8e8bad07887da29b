#!/usr/bin/env bash
# The whole suite N times in a row (default 5) while every core is kept busy
# by another process (`yes`), as a loaded CI machine would be: a test that
# waits for time instead of for the event it needs fails here. Stops at the
# first failing run and keeps its output; prints one line per run.
#
#   scripts/test-under-load.sh [N]      (make test-under-load RUNS=N)
#
# Runs what `make test` runs (its environment comes from the Makefile).
set -euo pipefail
runs=${1:-5}
cores=$(nproc)
logs=${DRIFTD_UNDER_LOAD_LOGS:-$(mktemp -d -t driftd-under-load.XXXXXX)}
mkdir -p "$logs"
burners=()
stop_burners() {
    for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_burners EXIT
for _ in $(seq "$cores"); do
    yes >/dev/null &
    burners+=($!)
done
echo "under load: $cores busy processes beside the suite; logs in $logs"
for run in $(seq "$runs"); do
    log="$logs/run-$run.log"
    start=$SECONDS
    if "${CARGO:-cargo}" test --release --locked --no-fail-fast >"$log" 2>&1; then
        echo "run $run of $runs: ok ($((SECONDS - start)) s)"
    else
        echo "run $run of $runs: FAILED ($((SECONDS - start)) s); failing tests:"
        grep -E "^test .* FAILED$|^    [a-z_:]+$" "$log" | sed 's/^/  /' || true
        echo "full output: $log"
        exit 1
    fi
done
