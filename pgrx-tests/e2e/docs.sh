#!/usr/bin/env bash
# The reference pages cover the whole public surface: every function, view and table in the
# user's schema and every kt_governance.* setting is named somewhere under docs/, and the
# README stays short.
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/cluster.sh"
source "$(dirname "$0")/lib.sh"
dir="$KT_ROOT/build/e2e_docs"; port=55442
[ "${SKIP_INSTALL:-0}" = 1 ] || install_extension debug
cluster_create "$dir" "$port" "shared_preload_libraries = 'kt_governance'"
trap 'cluster_destroy "$dir"' EXIT
q "$dir" "$port" postgres "CREATE EXTENSION kt_governance" >/dev/null
surface="$(q "$dir" "$port" postgres "
    SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
      AND EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    UNION SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v')
    UNION SELECT name FROM pg_settings WHERE name LIKE 'kt_governance.%'
    ORDER BY 1")"
missing=()
for name in $surface; do
    grep -rqF -- "$name" "$KT_ROOT/docs" || missing+=("$name")
done
check "every public function, view, table and setting is documented under docs/ ($(echo "$surface" | wc -l) names)" "${missing[*]:-}" ""
lines="$(wc -l < "$KT_ROOT/README.md")"
check "README.md is short (at most 200 lines)" "$([ "$lines" -le 200 ] && echo yes || echo "no: $lines lines")" yes
# docs/install.md says kt_governance reads no composite datums through pgrx, whose 0.18.1
# accessors lack the CVE-2026-6460 version check: keep it true
composite="$(grep -rnE 'composite_type!|from_composite|get_by_name|get_by_index|PgHeapTuple::from_|GetAttributeByNum|GetAttributeByName' "$KT_ROOT/src" || true)"
check "src/ reads no composite datum through pgrx (docs/install.md, CVE-2026-6460)" "$composite" ""
e2e_finish docs
