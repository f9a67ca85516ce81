#!/usr/bin/env bash
# The Grafana dashboard in dashboards/: every panel's SQL, with Grafana's time macros expanded
# for the last 7 days, runs as a login of the reader role against a database loaded with 10 days
# of sample events, and returns rows with the columns its panel reads (dashboard_check.py).
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
source "$(dirname "$0")/lib.sh"
dir="$KT_ROOT/build/e2e_dashboard"; port=55443
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
cluster_create "$dir" "$port" "timezone = 'UTC'"
trap 'cluster_destroy "$dir"' EXIT
kt_psql "$dir" "$port" -d postgres -c "CREATE DATABASE kt"
q "$dir" "$port" kt "CREATE EXTENSION kt_governance" >/dev/null
q "$dir" "$port" kt "SELECT kt_generate_sample_events(20000, 10, 7, now())" >/dev/null
# part of the range refreshed, the newest hours left to the views' live parts
q "$dir" "$port" kt "SELECT * FROM kt_refresh_metrics(up_to => now() - interval '6 hours')" >/dev/null
q "$dir" "$port" kt "CREATE ROLE kt_grafana LOGIN IN ROLE kt_governance_reader" >/dev/null
to="$(q "$dir" "$port" kt "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")"
from="$(q "$dir" "$port" kt "SELECT to_char((now() - interval '7 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")"
if "$KT_ROOT/build/venv/bin/python" "$KT_ROOT/pgrx-tests/e2e/dashboard_check.py" \
        "$KT_ROOT/dashboards/kt_governance.json" "$dir" "$port" kt kt_grafana "$from" "$to"; then
    pass "every panel of dashboards/kt_governance.json returns rows with its columns, as the reader role ($from to $to)"
else
    fail "a dashboard panel failed (above)"
fi
e2e_finish dashboard
