#!/usr/bin/env bash
# Runs driftd's fuzz targets (fuzz/, cargo-fuzz + libFuzzer) for a fixed
# time each and prints executions, time and crashes per target.
#
#   scripts/fuzz.sh SECONDS [TARGET ...]     (default: every target)
#
# `make fuzz FUZZ_SECONDS=600` and `make fuzz-TARGET` call this; .ci/run
# calls it with a few seconds per target. Installs cargo-fuzz when missing.
# Builds without a sanitizer (-s none; see README "Testing and fuzzing")
# into $DRIFTD_FUZZ_TARGET_DIR (default ~/.cache/driftd-ci/fuzz-target, so
# CI and people share one build). The seed corpus fuzz/corpus/TARGET is
# read only; what the fuzzer adds goes to $DRIFTD_FUZZ_WORK/corpus/TARGET,
# crashes to $DRIFTD_FUZZ_WORK/artifacts/TARGET/ (default work dir:
# ~/.cache/driftd-ci/fuzz-work). A crash makes the script fail: turn the
# file into a regression test (tests/data/fuzz-regressions/TARGET/).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(policy parquet registry checkpoint)
seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET ...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

cache=${DRIFTD_CI_CACHE:-${HOME:-/tmp}/.cache/driftd-ci}
target_dir=${DRIFTD_FUZZ_TARGET_DIR:-$cache/fuzz-target}
work=${DRIFTD_FUZZ_WORK:-$cache/fuzz-work}
export LIBTORCH="${LIBTORCH:-$(readlink -f .libtorch)}"
# Each input gets fresh temp dirs: keep them in memory when we can.
[ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# Without a sanitizer cargo-fuzz passes only stable flags (-Cpasses=sancov-module,
# -Cllvm-args=...), so the project's stable toolchain builds the targets: no
# nightly to install. 16 codegen units instead of cargo-fuzz's 1 for release:
# with 1, polars alone compiles for far longer than a CI run lasts.
fuzz() { cargo fuzz "$@"; }
build_start=$(date +%s)
# cargo fuzz build takes one target or none (= all of them).
one=()
[ ${#targets[@]} -eq 1 ] && one=("${targets[0]}")
if ! fuzz build -s none --codegen-units 16 --target-dir "$target_dir" "${one[@]}"; then
    echo "fuzz: build failed" >&2
    exit 1
fi
echo "fuzz: build took $(( $(date +%s) - build_start )) s"

status=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t" "$work/logs"
    log="$work/logs/$t.log"
    before=$(find "$work/artifacts/$t" -type f | wc -l)
    extra=()
    if [ "$t" = parquet ]; then
        # polars aborts on some corrupt files (an allocation of exabytes;
        # see tests/data/fuzz-regressions/parquet-abort/): the daemon
        # survives those by quarantining the file at the restart, so the
        # fuzzer runs in a child (fork mode) and goes on after them.
        extra=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
    fi
    start=$(date +%s)
    set +e
    fuzz run -s none --codegen-units 16 --target-dir "$target_dir" "$t" "$work/corpus/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/$t/" "${extra[@]}" >"$log" 2>&1
    rc=$?
    set -e
    took=$(( $(date +%s) - start ))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | awk '{n+=$1} END {print n+0}')
    if [ "$t" = parquet ]; then
        # Fork mode: the parent's last "#N:" status line counts them all.
        execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    fi
    crashes=$(( $(find "$work/artifacts/$t" -type f | wc -l) - before ))
    aborts=$(grep -c 'memory allocation of .* failed' "$log" || true)
    other=$(( $(grep -c 'ERROR: libFuzzer' "$log" || true) - aborts ))
    corpus=$(find "$work/corpus/$t" -type f | wc -l)
    summary+=("$(printf '%-10s %6s s %12s execs %6s corpus %3s new crash files (%s allocation aborts)' \
        "$t" "$took" "${execs:-?}" "$corpus" "$crashes" "$aborts")")
    if [ $rc -ne 0 ] || [ "$other" -gt 0 ]; then
        status=1
        echo "fuzz: $t found a crash (exit $rc); the end of $log:" >&2
        tail -n 40 "$log" >&2
    fi
done
printf '%s\n' "${summary[@]}"
exit $status
