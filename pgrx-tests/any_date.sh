#!/usr/bin/env bash
# The any-date suite: runs the SQL regression suite and the date-sensitive end-to-end scripts
# under libfaketime at the instants that matter for a time-partitioned store, and on the real
# clock, then prints one line per instant and suite. Every instant runs even after a failure.
#   pgrx-tests/any_date.sh                      every instant, every suite
#   pgrx-tests/any_date.sh "2028-02-29 12:00+00"  one instant (also: "real")
#   ANY_DATE_SUITES="regress worker"            a subset of the suites
#   ANY_DATE_REAL=0                             leave out the real clock
# Named instants run every suite; with none named, crash runs only at the instants of only_at.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export SKIP_INSTALL="${SKIP_INSTALL:-0}"
if [ "$SKIP_INSTALL" != 1 ]; then
    (source "$root/scripts/lib/cluster.sh" && install_extension debug) || exit 1
    export SKIP_INSTALL=1
fi

instants=(
    "2026-12-01 00:30:00+00"   # first of a month, 00:30 UTC: last month's rows wait in the default partition
    "2026-11-30 23:30:00+00"   # last day of a month, 23:30 UTC: the clock crosses into a new month soon
    "2026-12-31 23:59:00+00"   # New Year's Eve, a minute before a new year (and a new month)
    "2028-02-29 12:00:00+00"   # a leap day
    "2027-03-14 07:30:00+00"   # America/New_York moved to summer time 30 minutes ago (02:00 EST -> 03:00 EDT)
    "2026-12-15 13:59:45+00"   # 15 s before a whole hour: every test crosses an hour between its statements
    "real"                     # the machine's own clock
)
# scripts/test.sh has just run every suite on the real clock: ANY_DATE_REAL=0 leaves it out
[ "${ANY_DATE_REAL:-1}" = 1 ] || unset 'instants[-1]'
[ $# -gt 0 ] && instants=("$@")
# suites whose data is placed relative to now(): the whole SQL suite, the end-to-end scripts
# that load "the last N days" (export and upgrade use fixed dates; soak is covered by its own
# run) and the benchmark's smoke run (its retention row cuts at the start of the month)
suites=(${ANY_DATE_SUITES:-regress worker crash dump_restore reclaim bench})
# the crash script (about 2 minutes a run) only at the two month boundaries, where its retention
# crash point cuts partitions relative to the date; the other instants add nothing it checks
declare -A only_at=([crash]="2026-12-01 00:30:00+00|2026-12-31 23:59:00+00|real")

log_dir="$root/build/any_date"; rm -rf "$log_dir"; mkdir -p "$log_dir"
results=(); failed=0
for instant in "${instants[@]}"; do
    for suite in "${suites[@]}"; do
        if [ -n "${only_at[$suite]:-}" ] && [ $# -eq 0 ] && [[ "|${only_at[$suite]}|" != *"|$instant|"* ]]; then
            continue
        fi
        if [ "$instant" = real ]; then unset KT_FAKETIME; else export KT_FAKETIME="$instant"; fi
        unset KT_FAKETIME_OFFSET
        log="$log_dir/$(echo "$instant-$suite" | tr -c 'A-Za-z0-9_-' '_').log"
        case "$suite" in
            regress) cmd=("$root/pgrx-tests/regress.sh") ;;
            bench) cmd=("$root/pgrx-tests/bench/run.sh" smoke) ;;
            *) cmd=("$root/pgrx-tests/e2e/$suite.sh") ;;
        esac
        start=$(date +%s)
        if "${cmd[@]}" > "$log" 2>&1; then status=passed; else status=FAILED; failed=$((failed + 1)); fi
        line="$(printf '%-24s %-14s %-7s %4ss' "$instant" "$suite" "$status" $(( $(date +%s) - start )))"
        echo "$line"; results+=("$line")
        if [ "$status" = FAILED ]; then
            echo "---- $suite at $instant failed ($log):"
            grep -E '^(FAIL|  FAIL)|^[-+][^-+]|ERROR|failed' "$log" | head -60
        fi
    done
done
unset KT_FAKETIME
echo "== any-date results (instant, suite, result, seconds)"
printf '%s\n' "${results[@]}"
[ "$failed" -eq 0 ] || { echo "any-date: $failed suite run(s) failed"; exit 1; }
echo "any-date: every suite passed at every instant"
