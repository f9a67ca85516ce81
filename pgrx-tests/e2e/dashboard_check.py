"""Runs every panel of dashboards/kt_governance.json the way Grafana's PostgreSQL data source
would: expands the time macros for a range, runs the panel's SQL as the given role and checks
that it returns rows with the columns the panel needs. Prints one line per panel; exits 1 on the
first unexpected result.

    dashboard_check.py DASHBOARD.json SOCKET_DIR PORT DB ROLE FROM_ISO TO_ISO
"""
import json
import re
import sys

import psycopg

# the columns each panel must return, in order (what its visualisation reads)
EXPECTED = {
    "Decisions per hour": ["time", "allowed", "blocked", "escalated", "redacted"],
    "Daily governance summary": ["day", "decision", "event_count", "total_cost", "avg_latency_ms", "total_tokens"],
    "Spend per day (allowed requests)": ["time", "cost_usd"],
    "Spend by team and model": ["team", "model", "request_count", "total_input_tokens", "total_output_tokens", "total_cost_usd"],
    "Policy effectiveness": ["policy_name", "evaluation_count", "pass_count", "block_count", "redact_count", "flag_count",
                             "escalate_count", "block_rate_pct"],
    "Block-rate anomalies": ["time", "block_rate", "threshold", "anomaly"],
    "p95 latency by gateway and model": ["time", "metric", "p95_latency"],
    "Latency percentiles": ["hour", "gateway_id", "model", "total_requests", "p50_latency", "p90_latency", "p95_latency",
                            "p99_latency"],
}


def expand(sql, start, end):
    """Grafana's PostgreSQL macros, as its data source expands them (RFC 3339 UTC literals)."""
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m.group(1).strip()} BETWEEN '{start}' AND '{end}'", sql)
    sql = sql.replace("$__timeFrom()", f"'{start}'").replace("$__timeTo()", f"'{end}'")
    left = re.findall(r"\$__\w+", sql)
    if left:
        raise SystemExit(f"macro this check does not expand: {left}")
    return sql


def main():
    path, socket_dir, port, db, role, start, end = sys.argv[1:8]
    dashboard = json.load(open(path))
    panels = [p for p in dashboard["panels"] if p.get("targets")]
    if sorted(p["title"] for p in panels) != sorted(EXPECTED):
        raise SystemExit(f"panels {sorted(p['title'] for p in panels)} are not the checked ones {sorted(EXPECTED)}")
    failed = 0
    with psycopg.connect(host=socket_dir, port=port, user=role, dbname=db, autocommit=True) as conn:
        for panel in panels:
            for target in panel["targets"]:
                sql = expand(target["rawSql"], start, end)
                try:
                    with conn.cursor() as cur:
                        cur.execute(sql)
                        columns = [d.name for d in cur.description]
                        rows = cur.fetchall()
                except psycopg.Error as e:
                    print(f"  FAIL {panel['title']}: {e.sqlstate}: {e}")
                    failed += 1
                    continue
                problems = []
                if columns != EXPECTED[panel["title"]]:
                    problems.append(f"columns {columns}, expected {EXPECTED[panel['title']]}")
                if not rows:
                    problems.append("no rows")
                if target["format"] == "time_series" and rows and columns[0] == "time":
                    if any(r[0] is None or not hasattr(r[0], "tzinfo") for r in rows):
                        problems.append("a time_series panel whose time column is not a timestamp")
                if problems:
                    print(f"  FAIL {panel['title']}: {'; '.join(problems)}")
                    failed += 1
                else:
                    print(f"  ok   {panel['title']}: {len(rows)} rows, columns {', '.join(columns)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
