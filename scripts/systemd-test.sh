#!/usr/bin/env bash
# The installed driftd unit under a real systemd (tests/systemd_service.rs
# runs this; docs/testing.md describes it):
#
#   scripts/systemd-test.sh DRIFTD_BINARY [REPO_DIR]
#
# Boots a throwaway /lib/systemd/systemd as PID 1 of new PID, mount, UTS,
# IPC, network and cgroup namespaces, on an overlay of the host's root whose
# writable layer is a tmpfs, then drives it from outside with
# `nsenter ... systemctl`: make install, start (READY=1, STATUS=), reload
# good and bad, SIGUSR1, the watchdog restarting a stopped daemon, stop,
# make uninstall keeping the registry, no dependency chatter in the journal.
#
# Exit status: 0 passed, 77 skipped (the reason on stdout, "skip: ..."),
# anything else failed (the failing step is named, the journal printed).
#
# SAFETY. systemd's boot-time cleanup empties /tmp and /var/tmp and it
# writes sysctls, cgroups and device state: it must never boot on the
# host's root. Before systemd is exec'd, inside the new mount namespace:
# mounts are private; / is an overlay (lowerdir=/, upper and work dirs on a
# private tmpfs) entered with pivot_root, the old root detached; /tmp,
# /var/tmp, /run, /dev (a few device nodes bound in) and /dev/shm are fresh
# tmpfs; /proc is a new instance with /proc/sys read-only; /sys is a new
# read-only sysfs with the namespace's own cgroup2 on /sys/fs/cgroup;
# systemd runs with `container=` set and without CAP_SYS_MODULE,
# CAP_SYS_TIME, CAP_SYS_BOOT, CAP_SYS_RAWIO, CAP_SYSLOG and CAP_MAC_*. The
# script asserts that / is the overlay (and /tmp, /var/tmp, /run tmpfs)
# right before the exec. If this script dies, the namespace's PID 1 is killed with it
# (PR_SET_PDEATHSIG through setpriv and unshare --kill-child); a trap tears
# everything down on any exit; a whole run is bounded by `timeout`
# (DRIFTD_SYSTEMD_TEST_TIMEOUT, default 300 s). Sentinel files in the host's
# /tmp and /var/tmp are checked after the teardown.
set -euo pipefail

SKIP=77
TIMEOUT=${DRIFTD_SYSTEMD_TEST_TIMEOUT:-300}

skip() {
    echo "skip: $*"
    exit "$SKIP"
}

# ---- inside the new namespaces: build the root, then exec systemd --------
# Runs as PID 1 of the new PID namespace. Arguments: the tmpfs mount point
# (an empty host directory), the host directory for reports, then the
# host paths to bind read-only into the new root.
inside() {
    local base=$1 report=$2
    shift 2
    # A command that fails before the pivot means the platform does not
    # permit the sandbox (overlay, a mount, pivot_root): a skip, reported
    # through the host directory, still visible here.
    trap 'echo "skip: cannot set up the sandbox: \`$BASH_COMMAND\` failed" >"$report/inside"; exit $SKIP' ERR
    mount --make-rprivate /
    mount -t tmpfs -o size=3g,mode=0700 driftd-systemd-test "$base"
    mkdir "$base/upper" "$base/work" "$base/root"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
    local r=$base/root
    mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
    mount --bind "$r/proc/sys" "$r/proc/sys"
    mount -o remount,bind,ro "$r/proc/sys"
    if [ -e "$r/proc/sysrq-trigger" ]; then
        mount --bind "$r/proc/sysrq-trigger" "$r/proc/sysrq-trigger"
        mount -o remount,bind,ro "$r/proc/sysrq-trigger"
    fi
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$r/sys/fs/cgroup"
    mount -t tmpfs -o mode=0755,nosuid,size=16m dev "$r/dev"
    local node
    for node in null zero full random urandom tty; do
        touch "$r/dev/$node"
        mount --bind "/dev/$node" "$r/dev/$node"
    done
    mkdir "$r/dev/pts" "$r/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
    ln -s pts/ptmx "$r/dev/ptmx"
    mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
    ln -s /proc/self/fd "$r/dev/fd"
    mount -t tmpfs -o mode=0755,nosuid,nodev run "$r/run"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmp "$r/tmp"
    mount -t tmpfs -o mode=1777,nosuid,nodev vartmp "$r/var/tmp"
    # The binary, its libraries and the checkout, read-only (they may live
    # on a mount the overlay of / does not show).
    local p
    for p in "$@"; do
        if [ -d "$p" ]; then mkdir -p "$r$p"; else mkdir -p "$r$(dirname "$p")"; touch "$r$p"; fi
        mount --bind -o ro "$p" "$r$p"
    done
    # The unit systemd boots into: nothing at all.
    printf '[Unit]\nDescription=driftd systemd test: nothing\nDefaultDependencies=no\n' \
        >"$r/etc/systemd/system/sandbox.target"
    mkdir "$r/.oldroot"
    cd "$r"
    pivot_root . .oldroot
    cd /
    umount -l /.oldroot
    rmdir /.oldroot
    trap - ERR
    # Never boot on the host's root.
    local fstype
    fstype=$(findmnt -n -o FSTYPE /)
    if [ "$fstype" != overlay ]; then
        echo "systemd-test: ABORT: / is $fstype, not the overlay; not starting systemd" >&2
        exit 1
    fi
    for p in /tmp /var/tmp /run; do
        if [ "$(findmnt -n -o FSTYPE "$p")" != tmpfs ]; then
            echo "systemd-test: ABORT: $p is not a private tmpfs; not starting systemd" >&2
            exit 1
        fi
    done
    if [ -n "${DRIFTD_SYSTEMD_TEST_DRY_RUN:-}" ]; then
        # Checks the sandbox without systemd: what / and /tmp are here, and
        # a file in /tmp that must not appear on the host.
        for p in / /tmp /var/tmp /run /proc /proc/sys /sys /sys/fs/cgroup /dev; do
            findmnt -n -o TARGET,FSTYPE,OPTIONS --mountpoint "$p"
        done
        touch /tmp/driftd-systemd-test-inside-marker /var/tmp/driftd-systemd-test-inside-marker
        ls -la /tmp /var/tmp
        exit 0
    fi
    exec setpriv --bounding-set -sys_module,-sys_time,-sys_boot,-sys_rawio,-syslog,-mac_admin,-mac_override \
        env -i container=driftd-systemd-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        /lib/systemd/systemd --system --unit=sandbox.target
}

if [ "${1:-}" = --inside ]; then
    shift
    inside "$@"
fi

# ---- on the host -----------------------------------------------------------
if [ -z "${DRIFTD_SYSTEMD_TEST_TIMED:-}" ]; then
    export DRIFTD_SYSTEMD_TEST_TIMED=1
    exec timeout -k 15 "$TIMEOUT" bash "$0" "$@"
fi

[ $# -ge 1 ] || { echo "usage: $0 DRIFTD_BINARY [REPO_DIR]" >&2; exit 2; }
BIN=$(readlink -f "$1")
REPO=$(readlink -f "${2:-$(dirname "$0")/..}")
SELF=$(readlink -f "$0")
[ -x "$BIN" ] || { echo "no driftd binary at $1" >&2; exit 2; }
[ -f "$REPO/Makefile" ] || { echo "no Makefile in $REPO" >&2; exit 2; }

[ "$(id -u)" = 0 ] || skip "not root (the namespaces, mounts and systemd need root)"
[ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd"
for tool in unshare nsenter setpriv findmnt make ldd timeout systemctl journalctl; do
    command -v "$tool" >/dev/null || skip "no $tool"
done
cgroot=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
[ -n "$cgroot" ] || skip "no cgroup2 hierarchy mounted on the host"
unshare --pid --fork --mount --uts --ipc --net --cgroup true 2>/dev/null \
    || skip "unshare --pid --mount --uts --ipc --net --cgroup is not permitted here"

START=$SECONDS
STEP="set-up"
report=$(mktemp -d -t driftd-systemd-test.XXXXXX)
base="$report/mnt"   # the tmpfs mount point: only ever an empty directory on the host
mkdir "$base"
sentinels=("/tmp/.driftd-systemd-test-sentinel.$$" "/var/tmp/.driftd-systemd-test-sentinel.$$")
for s in "${sentinels[@]}"; do echo "host file: must survive the systemd test" >"$s"; done
own_cg=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
cg="$cgroot${own_cg%/}/driftd-systemd-test.$$"
unshare_pid=""
pid1=""

teardown() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [ -n "$unshare_pid" ]; then
        # SIGKILL to the namespace's PID 1 ends every process in it; the
        # mount namespace, the overlay and its tmpfs go with the last one.
        # (unshare is this shell's unreaped child, so its children are.)
        if [ -n "$pid1" ] && grep -qw "$pid1" "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null; then
            kill -KILL "$pid1"
        fi
        kill -KILL "$unshare_pid" 2>/dev/null
        wait "$unshare_pid" 2>/dev/null
    fi
    if [ -d "$cg" ]; then
        [ -e "$cg/cgroup.kill" ] && echo 1 >"$cg/cgroup.kill" 2>/dev/null
        local end=$((SECONDS + 20))
        until [ ! -d "$cg" ] || [ "$SECONDS" -ge "$end" ]; do
            find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || sleep 0.2
        done
        [ -d "$cg" ] && echo "systemd-test: WARNING: could not remove the cgroup $cg" >&2
    fi
    # Only ever an empty directory here: the tmpfs was mounted in the
    # namespace, which is gone.
    rmdir "$base" 2>/dev/null || echo "systemd-test: WARNING: $base is not empty; left in place" >&2
    local s lost=0
    for s in "${sentinels[@]}"; do
        if [ -f "$s" ]; then rm -f "$s"; else echo "systemd-test: HOST FILE $s IS GONE" >&2; lost=1; fi
    done
    if [ "$lost" = 1 ]; then
        echo "systemd-test: FAILED: a host sentinel file vanished; the sandbox leaked" >&2
        rc=1
    fi
    if [ "$rc" = 0 ] || [ "$rc" = "$SKIP" ]; then
        rm -rf "$report"
    else
        echo "systemd-test: reports kept in $report" >&2
    fi
    exit "$rc"
}
trap teardown EXIT
trap 'echo "systemd-test: interrupted (SIGTERM: the whole run is bounded to ${TIMEOUT}s) in step: $STEP" >&2; exit 1' INT TERM

# Every command in the sandbox is bounded (IN_NS_TIMEOUT seconds, default 120).
in_ns() { timeout -k 5 "${IN_NS_TIMEOUT:-120}" nsenter -t "$pid1" -m -p -u -i -n -- "$@"; }
sctl() { in_ns systemctl --no-pager "$@"; }
prop() { sctl show -p "$2" --value "$1"; }

say() { printf '[%4ds] %s\n' "$((SECONDS - START))" "$*"; }
step() {
    STEP=$1
    say "== $STEP"
}

fail() {
    echo "systemd-test: FAILED in step '$STEP': $*" >&2
    if [ -n "$pid1" ] && kill -0 "$pid1" 2>/dev/null; then
        {
            echo "---- systemctl status driftd"
            sctl status driftd 2>&1 | head -n 30
            echo "---- journalctl -u driftd (last 80 lines)"
            in_ns journalctl --no-pager -u driftd -n 80 2>&1
            echo "---- failed units"
            sctl list-units --failed 2>&1
        } >&2 || true
    fi
    exit 1
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
    local what=$1 secs=$2
    shift 2
    local end=$((SECONDS + secs))
    until "$@"; do
        [ "$SECONDS" -lt "$end" ] || fail "timed out after ${secs}s waiting for: $what"
        sleep 0.2
    done
}

journal() { in_ns journalctl --no-pager -o cat -u driftd "$@" 2>/dev/null; }
# grep reads all (no -q): an early exit would fail journalctl with SIGPIPE.
journal_has() { journal | grep -E -- "$1" >/dev/null; }
# Lines of the driftd journal after the first one matching $1 that match $2.
journal_after_has() { journal | awk -v a="$1" -v b="$2" 'f && $0 ~ b { found = 1 } $0 ~ a { f = 1 } END { exit !found }'; }
prop_is() { [ "$(prop "$1" "$2" 2>/dev/null)" = "$3" ]; }
prop_matches() { prop "$1" "$2" 2>/dev/null | grep -E -- "$3" >/dev/null; }

# ---- boot ------------------------------------------------------------------
step "boot systemd in new namespaces on an overlay"
# Cgroups of earlier runs that were SIGKILLed (their script's pid is gone).
for stale in "${cg%.*}".*; do
    [ -d "$stale" ] && [ ! -e "/proc/${stale##*.}" ] && find "$stale" -depth -type d -exec rmdir {} + 2>/dev/null
done
mkdir -p "$cg" || skip "cannot create a cgroup under $cgroot$own_cg"
# Host paths the root must show: the binary, the libraries it resolves
# outside the system directories (make install copies them), the checkout.
binds=("$REPO" "$BIN")
while read -r lib; do
    d=$(dirname "$lib")
    case " ${binds[*]} " in *" $d "*) ;; *) binds+=("$d") ;; esac
done < <(ldd "$BIN" | awk '$3 ~ /^\// && $3 !~ /^\/(usr\/)?lib(64|x32)?\// { print $3 }')
(
    echo "$BASHPID" >"$cg/cgroup.procs"
    exec setpriv --pdeathsig KILL unshare --pid --fork --kill-child=SIGKILL --mount --uts --ipc --net \
        --cgroup --propagation private bash "$SELF" --inside "$base" "$report" "${binds[@]}"
) </dev/null >"$report/pid1.log" 2>&1 &
unshare_pid=$!

find_pid1() {
    pid1=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null | awk '{ print $1 }')
    [ -n "$pid1" ]
}
systemd_is_pid1() {
    if ! kill -0 "$unshare_pid" 2>/dev/null; then
        wait "$unshare_pid" && rc=0 || rc=$?
        unshare_pid=""
        if [ "$rc" = "$SKIP" ] && [ -f "$report/inside" ]; then
            pid1=""
            skip "$(sed 's/^skip: //' "$report/inside")"
        fi
        fail "the namespace's PID 1 exited with status $rc: $(cat "$report/inside" "$report/pid1.log" 2>/dev/null)"
    fi
    find_pid1 || return 1
    case "$(readlink "/proc/$pid1/exe" 2>/dev/null)" in
        */systemd/systemd) return 0 ;;
        *) return 1 ;;
    esac
}
if [ -n "${DRIFTD_SYSTEMD_TEST_DRY_RUN:-}" ]; then
    wait "$unshare_pid" && rc=0 || rc=$?
    unshare_pid=""
    cat "$report/pid1.log" "$report/inside" 2>/dev/null || true
    [ "$rc" = 0 ] || fail "the dry run's sandbox exited with status $rc"
    for m in /tmp/driftd-systemd-test-inside-marker /var/tmp/driftd-systemd-test-inside-marker; do
        [ ! -e "$m" ] || fail "LEAK: $m, written inside the sandbox, is on the host"
    done
    say "dry run: the sandbox's /tmp and /var/tmp are not the host's"
    exit 0
fi
wait_for "systemd exec'd as the namespace's PID 1" 30 systemd_is_pid1
root_fs=$(in_ns findmnt -n -o FSTYPE /)
[ "$root_fs" = overlay ] || fail "the namespace's / is $root_fs, not the overlay"
booted() { case "$(sctl is-system-running 2>/dev/null)" in running | degraded) return 0 ;; *) return 1 ;; esac; }
wait_for "systemd to finish booting sandbox.target" 60 booted
sctl start systemd-journald.socket systemd-journald.service || fail "cannot start journald"
say "systemd $(in_ns systemctl --version | awk 'NR == 1 { print $2 }') is PID 1 of the sandbox (host pid $pid1), / is $root_fs"

# ---- install -----------------------------------------------------------------
step "make install"
in_ns test -d /run/systemd/system || fail "no /run/systemd/system inside: make install would skip sysusers"
in_ns make -C "$REPO" --no-print-directory install DRIFTD_BIN="$BIN" >"$report/install.log" 2>&1 \
    || fail "make install failed: $(tail -n 20 "$report/install.log")"
in_ns getent passwd driftd >/dev/null || fail "no user driftd after make install (sysusers)"
in_ns getent group driftd-data >/dev/null || fail "no group driftd-data after make install (sysusers)"
perm=$(in_ns stat -c '%a %G' /var/lib/driftd/incoming)
[ "$perm" = "2770 driftd-data" ] || fail "/var/lib/driftd/incoming is '$perm', expected '2770 driftd-data' (tmpfiles)"
prop_is driftd LoadState loaded || fail "driftd.service is not loaded after make install (daemon-reload)"
[ "$(in_ns readlink -f /usr/local/lib/driftd/libtorch_cpu.so)" = /usr/local/lib/driftd/libtorch_cpu.so ] \
    || fail "libtorch_cpu.so is not installed in /usr/local/lib/driftd"

step "write data as a producer (driftd gen-data) into /var/lib/driftd/incoming"
# 1500 rows in 6 files: version 1 trains on the first 1000 (data.initial_rows);
# fewer than update.every_rows (2000), so no continual update starts by itself
# (the online challenger may promote versions after version 1).
in_ns /usr/local/bin/driftd gen-data stream --out /var/lib/driftd/incoming --rows 1500 --seed 20 \
    >"$report/gen-data.log" 2>&1 || fail "gen-data failed: $(cat "$report/gen-data.log")"

# ---- start -------------------------------------------------------------------
step "systemctl start driftd (Type=notify: returns at READY=1)"
sctl start driftd || fail "systemctl start driftd failed"
prop_is driftd ActiveState active || fail "ActiveState is $(prop driftd ActiveState), not active"
prop_is driftd SubState running || fail "SubState is $(prop driftd SubState), not running"
status=$(prop driftd StatusText)
say "StatusText at READY=1: $status"
[[ "$status" =~ ^(version\ [0-9]+\ live|no\ live\ version\ yet).*\;\ [0-9]+\ files,\ [0-9]+\ rows\ ingested,\ [0-9]+\ quarantined$ ]] \
    || fail "StatusText at READY=1 is '$status', expected 'version N live...; N files, N rows ingested, N quarantined'"
wait_for "StatusText to show a live version with the 6 files and 1500 rows" 120 \
    prop_matches driftd StatusText '^version [0-9]+ live.*; 6 files, 1500 rows ingested, 0 quarantined$'
say "StatusText: $(prop driftd StatusText)"
main=$(prop driftd MainPID)
user=$(in_ns ps -o user= -p "$main" | tr -d ' ')
[ "$user" = driftd ] || fail "the daemon runs as '$user', not driftd"
journal_has 'driftd is watching' || fail "no 'driftd is watching' line in the journal"
# The live unit's exposure, as tests/systemd_unit.rs checks the file's offline.
exposure=$(in_ns systemd-analyze security --no-pager driftd.service 2>&1 \
    | sed -n 's/.*Overall exposure level for driftd.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security printed no exposure for the running unit"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "the running unit's exposure is $exposure, above 2.0"
say "systemd-analyze security (live): exposure $exposure"

# ---- reload --------------------------------------------------------------------
step "systemctl reload with a valid change: applied"
in_ns grep -q '^min_new_rows = 500$' /etc/driftd/policy.toml || fail "the installed policy has no 'min_new_rows = 500' line to change"
in_ns sed -i 's/^min_new_rows = 500$/min_new_rows = 600/' /etc/driftd/policy.toml
sctl reload driftd || fail "systemctl reload driftd failed for a valid policy"
wait_for "'policy reloaded: changed update.min_new_rows' in the journal" 30 \
    journal_has 'policy reloaded: changed update\.min_new_rows'
prop_is driftd MainPID "$main" || fail "the main pid changed across a reload"

step "systemctl reload with an invalid policy: refused, the daemon keeps running"
in_ns cp /etc/driftd/policy.toml /etc/driftd/policy.toml.good
in_ns sh -c 'printf "\n[bogus]\nkey = 1\n" >>/etc/driftd/policy.toml'
if sctl reload driftd 2>"$report/bad-reload.log"; then fail "systemctl reload succeeded with an invalid policy"; fi
wait_for "the journal to name the error ('policy.toml:LINE:COL: bogus')" 30 \
    journal_has 'policy\.toml:[0-9]+:[0-9]+: bogus'
say "journal: $(journal | grep -E 'policy\.toml:[0-9]+:[0-9]+: bogus' | tail -n 1 | cut -c 1-120)"
prop_is driftd ActiveState active || fail "the daemon is $(prop driftd ActiveState) after a refused reload"
prop_is driftd MainPID "$main" || fail "the main pid changed across a refused reload"
in_ns mv /etc/driftd/policy.toml.good /etc/driftd/policy.toml

# ---- SIGUSR1 ---------------------------------------------------------------------
step "systemctl kill -s USR1 driftd: an update is requested and runs"
sctl kill -s USR1 driftd || fail "systemctl kill -s USR1 failed"
wait_for "'SIGUSR1: update requested' in the journal" 30 journal_has 'SIGUSR1: update requested'
wait_for "the manual update to start" 60 \
    journal_after_has 'SIGUSR1: update requested' 'update started [(]manual trigger[)]|not enough new rows'
journal_has 'update started [(]manual trigger[)]' \
    || fail "the manual update did not start: $(journal | grep 'not enough new rows' | tail -n 1)"
wait_for "the manual update to end (promoted, rejected or failed)" 240 \
    journal_after_has 'update started [(]manual trigger[)]' 'is live [(]|no candidate promoted|update failed'
journal | grep -E 'update started [(]manual|is live [(]|no candidate promoted|update failed' | tail -n 2 \
    | cut -c 1-120 | while read -r line; do say "journal: $line"; done
live=$(prop driftd StatusText | sed -n 's/^version \([0-9]*\) live.*/\1/p')
[ -n "$live" ] || fail "StatusText names no live version: $(prop driftd StatusText)"

# ---- watchdog ----------------------------------------------------------------------
step "the watchdog restarts a hung daemon (drop-in WatchdogSec=4s, SIGSTOP)"
in_ns mkdir -p /etc/systemd/system/driftd.service.d
in_ns sh -c 'printf "[Service]\nWatchdogSec=4s\n" >/etc/systemd/system/driftd.service.d/50-systemd-test.conf'
sctl daemon-reload
sctl restart driftd || fail "systemctl restart driftd failed"
prop_is driftd WatchdogUSec 4s || fail "WatchdogUSec is $(prop driftd WatchdogUSec), not 4s"
restarts=$(prop driftd NRestarts)
hung=$(prop driftd MainPID)
sctl kill -s SIGSTOP --kill-whom=main driftd
restarted() {
    [ "$(prop driftd NRestarts)" = "$((restarts + 1))" ] && prop_is driftd ActiveState active \
        && ! prop_is driftd MainPID "$hung" && ! prop_is driftd MainPID 0
}
wait_for "NRestarts=$((restarts + 1)) and active again with a new main pid" 60 restarted
timeouts=$(journal | grep -c 'Watchdog timeout' || true)
[ "$timeouts" = 1 ] || fail "$timeouts 'Watchdog timeout' lines in the journal, expected 1"
journal_has "Killing process $hung .* with signal SIGABRT" \
    || fail "the journal does not show the watchdog killing the stopped pid $hung"
wait_for "StatusText to show version $live live after the restart" 60 \
    prop_matches driftd StatusText "^version $live live"
say "restarted by the watchdog: NRestarts=$(prop driftd NRestarts), StatusText: $(prop driftd StatusText)"
in_ns rm -r /etc/systemd/system/driftd.service.d
sctl daemon-reload

# ---- stop ----------------------------------------------------------------------------
step "systemctl stop driftd: clean"
sctl stop driftd || fail "systemctl stop driftd failed"
prop_is driftd ActiveState inactive || fail "ActiveState is $(prop driftd ActiveState) after stop"
prop_is driftd Result success || fail "Result is $(prop driftd Result) after stop, not success"
prop_is driftd ExecMainStatus 0 || fail "the daemon exited with status $(prop driftd ExecMainStatus)"

step "the journal has no INFO line from a dependency"
chatter=$(in_ns journalctl --no-pager -o cat -u driftd -p info..info 2>/dev/null \
    | grep -Ei 'uninited|job creator|tokio_cron_scheduler|scheduler (init|start)' || true)
[ -z "$chatter" ] || fail "dependency chatter at INFO in the journal: $chatter"

# ---- uninstall ----------------------------------------------------------------------
step "make uninstall keeps the registry and the state"
in_ns make -C "$REPO" --no-print-directory uninstall >"$report/uninstall.log" 2>&1 \
    || fail "make uninstall failed: $(tail -n 20 "$report/uninstall.log")"
for gone in /usr/local/bin/driftd /usr/local/lib/driftd /etc/systemd/system/driftd.service \
    /etc/sysusers.d/driftd.conf /etc/tmpfiles.d/driftd.conf; do
    in_ns test ! -e "$gone" || fail "$gone is still there after make uninstall"
done
prop_is driftd LoadState not-found || fail "driftd.service is still known to systemd after uninstall"
in_ns test -d /var/lib/driftd/models || fail "make uninstall removed the registry /var/lib/driftd/models"
[ -n "$(in_ns ls -A /var/lib/driftd/models)" ] || fail "the registry /var/lib/driftd/models is empty after uninstall"
in_ns test -d /var/lib/driftd/state || fail "make uninstall removed /var/lib/driftd/state"
say "after uninstall: /var/lib/driftd/models holds $(in_ns ls -A /var/lib/driftd/models | tr '\n' ' ')"

STEP="teardown"
say "passed in $((SECONDS - START)) s"
