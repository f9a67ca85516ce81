#!/usr/bin/env bash
# Builds the packages a DBA installs, per PostgreSQL major:
#   build/packages/kt_governance-<version>-pg<major>-linux-amd64.tar.gz   `cargo pgrx package`
#       output, laid out as the server's own directories (lib/, share/extension/)
#   build/packages/postgresql-<major>-kt-governance_<version>_amd64.deb  the same files at
#       Debian's and apt.postgresql.org's paths, depending on postgresql-<major> and on the
#       libraries the module links (dpkg-shlibdeps)
# Usage: scripts/package.sh [MAJOR...]     (default: 15 16 17 18; run scripts/setup.sh first)
# Builds for 16-18 use the pinned trees in build/pg/ (their headers); the .deb installs into
# /usr/lib/postgresql/<major>/lib, where a Debian or PGDG server of that major loads it.
set -euo pipefail
shopt -s inherit_errexit   # a failure inside $(...) fails the script too
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
root="$(pwd)"
source scripts/lib/cluster.sh
out="$root/build/packages"
mkdir -p "$out"
version="$(crate_version)"
majors=("$@"); [ ${#majors[@]} -gt 0 ] || majors=(15 16 17 18)

# files_of_package DIR: the module and extension files cargo pgrx package laid out under DIR,
# wherever its pg_config put them (absolute paths of the build tree are kept inside DIR)
module_of() {
    local so; so="$(find "$1" -name kt_governance.so -type f | head -1)"
    [ -n "$so" ] || { echo "no kt_governance.so under $1" >&2; return 1; }
    echo "$so"
}
extension_dir_of() {
    local control; control="$(find "$1" -name kt_governance.control -type f | head -1)"
    [ -n "$control" ] || { echo "no kt_governance.control under $1" >&2; return 1; }
    dirname "$control"
}

# shlib_depends SO: the Depends field dpkg-shlibdeps computes for the module (libc, libgcc);
# it wants a debian/control of a source package, so it runs in a scratch one
shlib_depends() {
    local scratch; scratch="$(mktemp -d)"
    mkdir -p "$scratch/debian"
    printf 'Source: kt-governance\n\nPackage: kt-governance\nArchitecture: amd64\n' > "$scratch/debian/control"
    local out; out="$(cd "$scratch" && dpkg-shlibdeps -O "$1" 2>/dev/null)"
    rm -rf "$scratch"
    echo "$out" | sed -n 's/^shlibs:Depends=//p'
}

build_deb() {
    local major="$1" staged="$2" so ext stage deb depends
    so="$(module_of "$staged")"; ext="$(extension_dir_of "$staged")"
    stage="$(mktemp -d)"; chmod 0755 "$stage"   # the package's ./ entry: mktemp makes it 0700
    install -D -m 0644 "$so" "$stage/usr/lib/postgresql/$major/lib/kt_governance.so"
    # as dh_strip would: debug sections out, the dynamic symbols PostgreSQL looks up stay
    strip --strip-debug "$stage/usr/lib/postgresql/$major/lib/kt_governance.so"
    mkdir -p "$stage/usr/share/postgresql/$major/extension"
    install -m 0644 "$ext"/kt_governance* "$stage/usr/share/postgresql/$major/extension/"
    install -D -m 0644 LICENSE "$stage/usr/share/doc/postgresql-$major-kt-governance/copyright"
    depends="postgresql-$major"
    local libs; libs="$(shlib_depends "$stage/usr/lib/postgresql/$major/lib/kt_governance.so")"
    [ -n "$libs" ] || { echo "dpkg-shlibdeps found no library dependency for the module" >&2; return 1; }
    depends="$depends, $libs"
    mkdir -p "$stage/DEBIAN"
    cat > "$stage/DEBIAN/control" <<EOF
Package: postgresql-$major-kt-governance
Version: $version
Architecture: amd64
Maintainer: kt_governance developers <kt-governance@localhost>
Depends: $depends
Section: database
Priority: optional
Installed-Size: $(du -sk "$stage/usr" | cut -f1)
Description: AI-governance decision events store for PostgreSQL $major
 kt_governance turns a PostgreSQL database into the store for AI-gateway decision
 events: time partitions, incremental rollups, reports, retention with legal holds,
 Parquet export and a maintenance background worker. CREATE EXTENSION kt_governance.
EOF
    deb="$out/postgresql-$major-kt-governance_${version}_amd64.deb"
    dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
    rm -rf "$stage"
    echo "$deb"
}

for major in "${majors[@]}"; do
    pg_config="$(pg_bin_for_major "$major")/pg_config"
    [ -x "$pg_config" ] || { echo "no pg_config for PostgreSQL $major at $pg_config (scripts/setup.sh)" >&2; exit 1; }
    echo "== PostgreSQL $major: cargo pgrx package (release build)"
    staged="$root/target/release/kt_governance-pg$major"
    rm -rf "$staged"
    cargo pgrx package --pg-config "$pg_config" --out-dir "$staged" >/dev/null
    # the tarball: lib/ and share/extension/ relative to the server's install prefix
    tarroot="$(mktemp -d)"
    mkdir -p "$tarroot/lib" "$tarroot/share/extension"
    cp "$(module_of "$staged")" "$tarroot/lib/"
    cp "$(extension_dir_of "$staged")"/kt_governance* "$tarroot/share/extension/"
    tar -czf "$out/kt_governance-$version-pg$major-linux-amd64.tar.gz" -C "$tarroot" lib share
    rm -rf "$tarroot"
    echo "   $out/kt_governance-$version-pg$major-linux-amd64.tar.gz"
    deb="$(build_deb "$major" "$staged")"
    echo "   $deb"
done
