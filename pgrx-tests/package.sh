#!/usr/bin/env bash
# The PostgreSQL 15 Debian package as a DBA uses it: scripts/package.sh builds it, the files a
# source install left behind are removed, `dpkg -i` installs it, and on a clean cluster of
# Debian's server CREATE EXTENSION and the documented queries run against what the package put
# there (the documented_queries and reports SQL tests, diffed with their expected output). Then
# `dpkg -r` removes it and takes the extension away, and the debug build is put back.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/cluster.sh"
source "$KT_ROOT/pgrx-tests/e2e/lib.sh"
major=15
# the .deb installs where Debian's server looks: this test needs that server, not a copy
[ "$PG_BIN" = "/usr/lib/postgresql/$major/bin" ] || { echo "the package test uses Debian's PostgreSQL $major (/usr/lib/postgresql/$major/bin), not $PG_BIN" >&2; exit 2; }
version="$(crate_version)"
name="postgresql-$major-kt-governance"
deb="$KT_ROOT/build/packages/${name}_${version}_amd64.deb"
tarball="$KT_ROOT/build/packages/kt_governance-$version-pg$major-linux-amd64.tar.gz"
libdir="$("$PG_BIN/pg_config" --pkglibdir)"; extdir="$("$PG_BIN/pg_config" --sharedir)/extension"

"$KT_ROOT/scripts/package.sh" "$major"

# the package declares what it needs and holds only the server's module and extension files
fields="$(dpkg-deb --field "$deb" Package Version Architecture Depends)"
check "package name, version and architecture" \
    "$(echo "$fields" | sed -n 's/^\(Package\|Version\|Architecture\): //p' | paste -sd' ')" "$name $version amd64"
check "Depends names the server major" "$(echo "$fields" | grep -c "^Depends: postgresql-$major\b")" 1
check "Depends names libc (from dpkg-shlibdeps)" "$(echo "$fields" | grep -c 'libc6 (>= ')" 1
check "the .deb holds the module, control file, install script and every upgrade script" \
    "$(dpkg-deb --contents "$deb" | grep -cE "usr/lib/postgresql/$major/lib/kt_governance.so$|usr/share/postgresql/$major/extension/kt_governance.control$|usr/share/postgresql/$major/extension/kt_governance--[0-9.]+(--[0-9.]+)?.sql$")" \
    "$((3 + $(ls "$KT_ROOT"/sql/kt_governance--*--*.sql 2>/dev/null | wc -l)))"
check "the tarball holds lib/ and share/extension/" \
    "$(tar -tzf "$tarball" | grep -cE "^lib/kt_governance.so$|^share/extension/kt_governance.control$|^share/extension/kt_governance--$version.sql$")" 3

# what CREATE EXTENSION finds next must come from the package, not from an earlier source install
# (the trap first: whatever happens from here, the package goes and the debug build comes back)
restore() { dpkg -r "$name" >/dev/null 2>&1 || true; install_extension debug; }
trap restore EXIT
dpkg -r "$name" >/dev/null 2>&1 || true
rm -f "$libdir/kt_governance.so" "$extdir"/kt_governance.control "$extdir"/kt_governance--*.sql
if dpkg -i "$deb" > "$KT_ROOT/build/packages/dpkg-i.log" 2>&1; then pass "dpkg -i installs $(basename "$deb")"
else fail "dpkg -i failed: $(tail -5 "$KT_ROOT/build/packages/dpkg-i.log")"; fi
check "dpkg lists the package as installed" "$(dpkg-query -W -f '${Status} ${Version}' "$name")" "install ok installed $version"
check "the module on disk is the package's" "$(dpkg -S "$libdir/kt_governance.so" 2>/dev/null | cut -d: -f1)" "$name"

# a clean cluster of Debian's server: the regression runner makes one per run
if SKIP_INSTALL=1 "$KT_ROOT/pgrx-tests/regress.sh" documented_queries reports; then
    pass "CREATE EXTENSION and the documented queries against the packaged build"
else
    fail "the documented queries against the packaged build differ (build/regress_results)"
fi

dpkg -r "$name" >/dev/null
check "dpkg -r takes the module and extension files away" \
    "$(ls "$libdir/kt_governance.so" "$extdir/kt_governance.control" 2>/dev/null | wc -l)" 0
e2e_finish package
