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
