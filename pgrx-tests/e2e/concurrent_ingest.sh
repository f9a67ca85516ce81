#!/usr/bin/env bash
# Concurrent kt_ingest: calls wait on each other only for the same id. While one writer's
# transaction holds a batch open (parked on an advisory lock the test holds, so nothing depends
# on timing): a batch of other ids and a plain INSERT pass at once under a short lock_timeout; a
# batch sharing one id times out (it waits for that id) and stores nothing; a batch sharing it
# without a timeout waits, then counts it as a duplicate when the first commits. A claimer that
# rolls back leaves its id to the waiter, which stores it. Overlapping batches sent in opposite
# orders never deadlock. The maintenance job prunes the claims, and a pruned id is still found.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
source "$(dirname "$0")/lib.sh"
dir="$KT_ROOT/build/e2e_concurrent_ingest"; port=55444
tmp="$(e2e_tmp concurrent_ingest)"
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
cluster_create "$dir" "$port" "timezone = 'UTC'" "lc_messages = 'C'"
trap 'cluster_destroy "$dir"; rm -rf "$tmp"' EXIT
rm -rf "$tmp"; mkdir -p "$tmp"; chown postgres "$tmp"
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE kt"
sql() { q "$dir" "$port" kt "$1"; }
sql "CREATE EXTENSION kt_governance" >/dev/null
sql "CREATE ROLE gw LOGIN IN ROLE kt_governance_writer" >/dev/null
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# batch PREFIX FROM TO [EXTRA_ID]: kt_ingest of events PREFIX-FROM..PREFIX-TO in that order
# (counting down when FROM > TO) and EXTRA_ID; prints "inserted duplicates"
batch() {
    local ids extra="" step=1
    [ "$2" -le "$3" ] || step=-1
    ids="$(seq -f "'$1-%g'" "$2" "$step" "$3" | paste -sd,)"
    [ -n "${4:-}" ] && extra=",'$4'"
    echo "SELECT inserted || ' ' || duplicates FROM kt_ingest((SELECT jsonb_agg(jsonb_build_object('id', i, 'timestamp', '$now',
        'decision', 'allow', 'model', 'm', 'provider', 'p', 'gateway_id', 'g')) FROM unnest(ARRAY[$ids$extra]) i))"
}
# as_gw NAME SQL...: runs the statements in one session of the writer role, named NAME
as_gw() { local name="$1"; shift; PGAPPNAME="$name" kt_psql "$dir" "$port" -d kt -U gw -At "$@"; }
# wait_until_waiting NAME: until session NAME waits on a lock
wait_until_waiting() {
    local i
    for i in $(seq 300); do
        [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1' AND wait_event_type = 'Lock'")" = 1 ] && return 0
        sleep 0.1
    done
    fail "session $1 never waited on a lock"; return 1
}
# the holder: keeps advisory lock 42 until it is terminated
hold_gate() {
    PGAPPNAME=gate kt_psql "$dir" "$port" -d kt -At -c "SELECT pg_advisory_lock(42)" -c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
    local i
    for i in $(seq 100); do
        [ "$(sql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42 AND granted")" = 1 ] && return 0
        sleep 0.1
    done
    fail "the gate session did not take its lock"
}
open_gate() { sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gate'" >/dev/null; }

# A stores a-1..a-1000 and shared-1, then parks before COMMIT
hold_gate
as_gw A -c "BEGIN" -c "$(batch a 1 1000 shared-1)" -c "SELECT pg_advisory_lock(42)" -c "COMMIT" > "$tmp/a.out" 2>&1 &
a_pid=$!
wait_until_waiting A
check "other ids pass while A is open" \
    "$(as_gw B -c "SET lock_timeout = '2s'" -c "$(batch b 1 1000)" 2>&1)" "1000 0"
check "a plain INSERT passes while A is open" \
    "$(as_gw B2 -c "SET lock_timeout = '2s'" -c "INSERT INTO ai_decision_events (id, \"timestamp\", decision, model, provider, gateway_id) VALUES ('plain-1', now(), 'allowed', 'm', 'p', 'g')" 2>&1)" ""
c_out="$(as_gw C -c "SET lock_timeout = '1s'" -c "$(batch c 1 10 shared-1)" 2>&1 || true)"
check "a batch sharing A's id waits for it (lock timeout)" "$(grep -c 'canceling statement due to lock timeout' <<<"$c_out")" 1
check "and stores nothing" "$(sql "SELECT count(*) FROM ai_decision_events WHERE id LIKE 'c-%'")" 0
as_gw D -c "$(batch d 1 10 shared-1)" > "$tmp/d.out" 2>&1 &
d_pid=$!
wait_until_waiting D
check "A's events are not visible yet" "$(sql "SELECT count(*) FROM ai_decision_events WHERE id = 'shared-1'")" 0
open_gate
wait "$a_pid" || fail "session A failed: $(cat "$tmp/a.out")"
wait "$d_pid" || fail "session D failed: $(cat "$tmp/d.out")"
check "A stored its batch" "$(head -1 "$tmp/a.out")" "1001 0"
check "D waited, then counted the shared id as a duplicate" "$(cat "$tmp/d.out")" "10 1"
check "the shared id is stored once" "$(sql "SELECT count(*) FROM ai_decision_events WHERE id = 'shared-1'")" 1

# a claimer that rolls back: the waiter stores the id
hold_gate
as_gw E -c "BEGIN" -c "$(batch e 1 5 rb-1)" -c "SELECT pg_advisory_lock(42)" -c "ROLLBACK" > "$tmp/e.out" 2>&1 &
e_pid=$!
wait_until_waiting E
as_gw F -c "$(batch f 1 5 rb-1)" > "$tmp/f.out" 2>&1 &
f_pid=$!
wait_until_waiting F
open_gate
wait "$e_pid" || fail "session E failed: $(cat "$tmp/e.out")"
wait "$f_pid" || fail "session F failed: $(cat "$tmp/f.out")"
check "after the claimer rolled back, the waiter stored the id" "$(cat "$tmp/f.out")" "6 0"
check "rolled-back batch left nothing" "$(sql "SELECT count(*) FROM ai_decision_events WHERE id LIKE 'e-%'")" 0

# overlapping batches in opposite orders, at once: every id once, no deadlock
for round in 1 2 3 4 5; do
    as_gw G -c "$(batch "o$round" 1 3000)" > "$tmp/g$round.out" 2>&1 &
    g=$!
    as_gw H -c "$(batch "o$round" 3000 1)" > "$tmp/h$round.out" 2>&1 &
    h=$!
    wait "$g" || fail "round $round: forward batch failed: $(cat "$tmp/g$round.out")"
    wait "$h" || fail "round $round: backward batch failed: $(cat "$tmp/h$round.out")"
    check "round $round: inserted by the two calls add up to 3000" \
        "$(( $(cut -d' ' -f1 "$tmp/g$round.out") + $(cut -d' ' -f1 "$tmp/h$round.out") ))" 3000
done
check "no id stored twice" "$(sql "SELECT count(*) FROM (SELECT id FROM ai_decision_events GROUP BY id HAVING count(*) > 1) d")" 0

# the maintenance job prunes the claims; a pruned id is still a duplicate
check "claims are kept until maintenance" "$(sql "SELECT count(*) > 0 FROM kt_governance_internal.kt_ingest_claims")" t
claims="$(sql "SELECT count(*) FROM kt_governance_internal.kt_ingest_claims")"
check "maintenance prunes every claim" \
    "$(sql "SELECT status || ' ' || (message LIKE '%, $claims ingest claims pruned') FROM kt_run_job('maintenance')")" "ok true"
check "no claim left" "$(sql "SELECT count(*) FROM kt_governance_internal.kt_ingest_claims")" 0
check "a pruned id is still found among the events" "$(as_gw I -c "$(batch a 1 3 shared-1)")" "0 4"
e2e_finish concurrent_ingest
