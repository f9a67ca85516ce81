# Helpers for end-to-end scripts. Source after scripts/lib/cluster.sh.
E2E_FAILS=0
# e2e_tmp NAME: a scratch directory under /tmp (the server, user postgres, writes exports
# there) whose name is unique to this clone, so two clones' suites never share one
e2e_tmp() { echo "/tmp/kt_e2e_$1_$(echo "$KT_ROOT" | md5sum | cut -c1-8)"; }
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
# rollup_mismatch_sql [SINCE]: SQL counting the rows where the hourly rollups (metrics with
# requests, blocked, cost, p50/p99; spend; decisions) and the raw events disagree, for hours
# from SINCE (an SQL timestamptz expression, default all)
rollup_mismatch_sql() {
    local since="${1:-'-infinity'}"
    local rollup="SELECT bucket, gateway_id, model, total_requests, blocked, total_cost, p50_latency, p99_latency FROM kt_governance_internal.kt_rollup_metrics_hourly WHERE bucket >= $since"
    local raw="SELECT date_trunc('hour', \"timestamp\"), gateway_id, model, count(*), count(*) FILTER (WHERE decision = 'blocked'), sum(cost_usd),
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)
               FROM ai_decision_events WHERE \"timestamp\" >= $since GROUP BY 1, 2, 3"
    local spend="SELECT bucket, team_id, model, decision, request_count, total_input_tokens, total_output_tokens, total_cost FROM kt_governance_internal.kt_rollup_spend_hourly WHERE bucket >= $since"
    local raw_spend="SELECT date_trunc('hour', \"timestamp\"), team_id, model, decision, count(*), sum(input_tokens), sum(output_tokens), sum(cost_usd)
                     FROM ai_decision_events WHERE \"timestamp\" >= $since GROUP BY 1, 2, 3, 4"
    local decisions="SELECT bucket, decision, event_count, total_cost, total_tokens, latency_sum, latency_count FROM kt_governance_internal.kt_rollup_decisions_hourly WHERE bucket >= $since"
    local raw_decisions="SELECT date_trunc('hour', \"timestamp\"), decision, count(*), sum(cost_usd), sum(input_tokens + output_tokens), sum(latency_ms), count(latency_ms)
                         FROM ai_decision_events WHERE \"timestamp\" >= $since GROUP BY 1, 2"
    echo "SELECT (SELECT count(*) FROM (($rollup EXCEPT $raw) UNION ALL ($raw EXCEPT $rollup)) d)" \
         "+ (SELECT count(*) FROM (($spend EXCEPT $raw_spend) UNION ALL ($raw_spend EXCEPT $spend)) d)" \
         "+ (SELECT count(*) FROM (($decisions EXCEPT $raw_decisions) UNION ALL ($raw_decisions EXCEPT $decisions)) d)"
}
