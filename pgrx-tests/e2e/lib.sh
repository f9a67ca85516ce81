# Helpers for end-to-end scripts. Source after scripts/lib/cluster.sh.
E2E_FAILS=0
pass() { echo "  ok   $*"; }
fail() { echo "  FAIL $*"; E2E_FAILS=$((E2E_FAILS + 1)); }
# check "description" actual expected
check() { if [ "$2" = "$3" ]; then pass "$1 ($2)"; else fail "$1: got '$2', expected '$3'"; fi; }
# q DIR PORT DB SQL: one value, unaligned
q() { kt_psql "$1" "$2" -d "$3" -At -c "$4"; }
e2e_finish() {
    if [ "$E2E_FAILS" -gt 0 ]; then echo "$1: $E2E_FAILS check(s) failed"; exit 1; fi
    echo "$1: all checks passed"
}
# rollup_mismatch_sql [SINCE]: SQL counting (hour, gateway, model) rows where
# kt_rollup_metrics_hourly and the raw events disagree (requests, blocked, cost), for hours from
# SINCE (an SQL timestamptz expression, default all)
rollup_mismatch_sql() {
    local since="${1:-'-infinity'}"
    local rollup="SELECT bucket, gateway_id, model, total_requests, blocked, total_cost FROM kt_rollup_metrics_hourly WHERE bucket >= $since"
    local raw="SELECT date_trunc('hour', \"timestamp\"), gateway_id, model, count(*), count(*) FILTER (WHERE decision = 'blocked'), sum(cost_usd)
               FROM ai_decision_events WHERE \"timestamp\" >= $since GROUP BY 1, 2, 3"
    echo "SELECT count(*) FROM (($rollup EXCEPT $raw) UNION ALL ($raw EXCEPT $rollup)) d"
}
