#!/usr/bin/env bash
# Runs driftd's fuzz targets (fuzz/, cargo-fuzz + libFuzzer) for a fixed
# time each and prints executions, time and crashes per target.
#
#   scripts/fuzz.sh SECONDS [TARGET ...]     (default: every target)
#
# `make fuzz FUZZ_SECONDS=600` and `make fuzz-TARGET` call this; .ci/run
# calls it with a few seconds per target. Installs cargo-fuzz when missing.
# Builds without a sanitizer (-s none; see docs/testing.md "Fuzzing")
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
    stamp=$(mktemp)
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
    # (awk, not grep: under pipefail a grep that matches nothing ends the
    # script.)
    execs=$(awk -F: '/stat::number_of_executed_units/ {n += $NF} END {print n + 0}' "$log")
    if [ "$t" = parquet ]; then
        # Fork mode: the parent's last "#N:" status line counts them all.
        execs=$(awk -F: '/^#[0-9]+:/ {n = substr($1, 2)} END {print n + 0}' "$log")
    fi
    # Each new crash file is replayed once to tell polars' allocation
    # aborts (a known class: the daemon dies on the file once and
    # quarantines it at the restart, see tests/security.rs) from anything
    # else, which fails the run. Fork mode keeps the children's output out
    # of $log, hence the replay.
    aborts=0
    other=0
    new_crashes=()
    while IFS= read -r f; do
        [ -n "$f" ] && new_crashes+=("$f")
    done < <(find "$work/artifacts/$t" -type f -newer "$stamp")
    rm -f "$stamp"
    for f in "${new_crashes[@]}"; do
        replay=$("$target_dir/x86_64-unknown-linux-gnu/release/$t" "$f" 2>&1 || true)
        if grep -q 'memory allocation of .* failed' <<<"$replay"; then
            aborts=$((aborts + 1))
            echo "fuzz: $t: allocation abort in polars: $f (add it to tests/data/fuzz-regressions/parquet-abort/)" >&2
        else
            other=$((other + 1))
            echo "fuzz: $t: CRASH: $f (make it a regression test in tests/data/fuzz-regressions/$t/)" >&2
        fi
    done
    corpus=$(find "$work/corpus/$t" -type f | wc -l)
    summary+=("$(printf '%-10s %6s s %12s execs %6s corpus %3s new crash files (%s allocation aborts)' \
        "$t" "$took" "${execs:-?}" "$corpus" "${#new_crashes[@]}" "$aborts")")
    # In fork mode libFuzzer exits 77 when a job crashed, though it went on:
    # for parquet a non-zero exit with only allocation aborts is not a
    # failure (without any crash file, it is).
    if [ "$t" = parquet ] && [ $rc -ne 0 ] && [ ${#new_crashes[@]} -gt 0 ] && [ "$other" -eq 0 ]; then
        rc=0
    fi
    if [ $rc -ne 0 ] || [ "$other" -gt 0 ]; then
        status=1
        echo "fuzz: $t found a crash (exit $rc); the end of $log:" >&2
        tail -n 40 "$log" >&2
    fi
done
printf '%s\n' "${summary[@]}"
exit $status
