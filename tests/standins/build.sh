#!/usr/bin/env bash
# Build the stand-in images, under exactly the names obskit pins, into the private engine
# (run by `.ci/engine up` / `.ci/engine images`; DOCKER_HOST points at that engine).
#
# Each stand-in keeps its official image's documented contract (entrypoint behaviour, user
# and uid, paths, ports, environment conventions), written down in CONTRACT.md next to its
# Dockerfile. They are built from a Debian base made with debootstrap (cached) and from
# real programs: Debian's nginx and PostgreSQL, obskit's collector, versitygw, and Loki,
# Mimir and Grafana where this machine has them (else that image is skipped, and the tests
# that need it say so).
#
# An image is rebuilt only when its inputs change (a content hash over the stand-in folder,
# the programs and the base, kept as a label). Each is also pushed to the local registry
# under its upstream name, where dockerd's registry mirror serves it to a `pull`; a quay.io
# name (MinIO's) is pushed under that very name to the engine's quay.io registry (QUAY_CA:
# its CA; inside the namespace quay.io is that registry, see .ci/engine).
#
# MinIO (AGPL) is built on the machine from its source at the pinned tag, never in this
# repository: without a `minio` program its image is skipped.
set -euo pipefail
shopt -s inherit_errexit
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
: "${CACHE:?}" "${SUITE:?}" "${MIRROR:?}" "${REGISTRY_ADDR:?}"
mkdir -p "$CACHE"
exec 9>"$CACHE/standins.lock"
flock 9  # one build at a time
export DOCKER_BUILDKIT=0  # the classic builder: no network, no buildx needed for these
export DOCKER_CLI_HINTS=false

say() { printf 'standins: %s\n' "$*" >&2; }

pin() {  # the image obskit pins for a key of Images in obskit/spec/model.py
    sed -n "s/^    $1: Image = \"\(.*\)\"/\1/p" "$repo/obskit/spec/model.py"
}

find_program() {  # first of NAMES on PATH, in .ci-bin, or in OBSKIT_PROGRAM_DIRS
    local dirs="${OBSKIT_PROGRAM_DIRS:-}:$repo/.ci-bin:$PATH" name d
    for name in "$@"; do
        IFS=: read -ra ds <<< "$dirs"
        for d in "${ds[@]}"; do
            if [ -n "$d" ] && [ -x "$d/$name" ] && [ ! -d "$d/$name" ]; then echo "$d/$name"; return 0; fi
        done
    done
    return 0
}

BASE_PACKAGES="ca-certificates,curl,gettext-base,procps,wget"

rootfs() {  # rootfs NAME PACKAGES...: a Debian tree (debootstrap base plus packages), as a tar
    local name="$1"; shift
    local tar="$CACHE/rootfs/$name.tar" key="$SUITE $MIRROR $BASE_PACKAGES $*"
    if [ -f "$tar" ] && [ "$(cat "$tar.key" 2>/dev/null)" = "$key" ]; then echo "$tar"; return; fi
    mkdir -p "$CACHE/rootfs"
    local base
    base="$CACHE/rootfs/base-$SUITE-$(echo "$MIRROR $BASE_PACKAGES" | sha256sum | cut -c1-8)"
    if [ ! -f "$base/.complete" ]; then
        say "debootstrap $SUITE (minbase) into $base: a few minutes, once"
        rm -rf "$base" "$CACHE"/rootfs/base-"$SUITE"*
        debootstrap --variant=minbase --include="$BASE_PACKAGES" \
            "$SUITE" "$base" "$MIRROR" >"$CACHE/rootfs/debootstrap.log" 2>&1 \
            || { tail -20 "$CACHE/rootfs/debootstrap.log" >&2; exit 1; }
        touch "$base/.complete"
    fi
    local dir="$CACHE/rootfs/$name"
    rm -rf "$dir"; cp -a "$base" "$dir"; rm -f "$dir/.complete"
    if [ $# -gt 0 ]; then
        say "installing $* into the $name tree"
        cp /etc/resolv.conf "$dir/etc/resolv.conf"
        printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"; chmod 755 "$dir/usr/sbin/policy-rc.d"
        local sid=""
        for p in "$@"; do case "$p" in */sid) sid=1 ;; esac; done
        if [ -n "$sid" ]; then
            # A mirror's sid may lag its Release file's validity: accept it as served.
            echo "deb [check-valid-until=no] $MIRROR sid main" > "$dir/etc/apt/sources.list.d/sid.list"
            printf 'Package: *\nPin: release n=sid\nPin-Priority: 100\n' > "$dir/etc/apt/preferences.d/sid"
        fi
        mkdir -p "$dir/etc/postgresql-common"
        echo "create_main_cluster = false" > "$dir/etc/postgresql-common/createcluster.conf"
        chroot "$dir" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $* && apt-get clean && rm -rf /var/lib/apt/lists/*" \
            >"$CACHE/rootfs/$name.log" 2>&1 || { tail -20 "$CACHE/rootfs/$name.log" >&2; exit 1; }
        rm -f "$dir/usr/sbin/policy-rc.d" "$dir/etc/resolv.conf"
    fi
    tar -C "$dir" --numeric-owner -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"; echo "$key" > "$tar.key"; rm -rf "$dir"
    echo "$tar"
}

import_rootfs() {  # import_rootfs NAME PACKAGES... -> image obskit-standin/NAME:<hash>
    local tar; tar="$(rootfs "$@")"
    local hash; hash="$(sha256sum < "$tar" | cut -c1-16)"
    local image="obskit-standin/$1:$hash"
    docker image inspect "$image" >/dev/null 2>&1 || docker import "$tar" "$image" >/dev/null
    echo "$image"
}

mirror_name() {  # the name under which the mirror serves an image (Docker Hub's library/)
    local name="$1"
    case "$name" in
        */*/*) echo "" ;;            # another registry (quay.io/...): not a Docker Hub name
        */*) echo "$name" ;;
        *) echo "library/$name" ;;
    esac
}

# stand IMAGE DIR BASE [PROGRAM...]: build DIR's Dockerfile FROM BASE with PROGRAMs in
# the context, tagged IMAGE; skipped when the inputs did not change.
stand() {
    local image="$1" dir="$2" base="$3"; shift 3
    local ctx; ctx="$(mktemp -d)"
    cp -a "$dir/." "$ctx/"
    for prog in "$@"; do cp "$prog" "$ctx/$(basename "$prog")"; done
    local hash
    hash="$( (echo "$base"; cd "$ctx" && find . -type f | sort | xargs sha256sum) | sha256sum | cut -c1-16)"
    local have
    have="$(docker image inspect "$image" --format '{{index .Config.Labels "dev.obskit.standin-hash"}}' 2>/dev/null || true)"
    if [ "$have" = "$hash" ]; then
        say "$image is current"
    else
        say "building $image"
        docker build -q --build-arg BASE="$base" --label "dev.obskit.standin-hash=$hash" \
            --label "dev.obskit.standin=$(basename "$dir")" -t "$image" "$ctx" >/dev/null
    fi
    rm -rf "$ctx"
    local m; m="$(mirror_name "${image%:*}")"
    if [ -n "$m" ]; then
        local tag="${image##*:}"
        if ! curl -fsS -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
                "http://$REGISTRY_ADDR/v2/$m/manifests/$tag" 2>/dev/null \
            || [ "$have" != "$hash" ]; then
            docker tag "$image" "$REGISTRY_ADDR/$m:$tag"
            docker push -q "$REGISTRY_ADDR/$m:$tag" >/dev/null
            docker rmi "$REGISTRY_ADDR/$m:$tag" >/dev/null
        fi
    fi
    case "$image" in
        quay.io/*)
            local qrepo="${image#quay.io/}"
            if [ -z "${QUAY_CA:-}" ] || [ -z "${NS:-}" ]; then
                say "not pushing $image: no quay.io registry (QUAY_CA, NS)"
            elif [ "$have" != "$hash" ] || ! ip netns exec "$NS" curl -fsS -o /dev/null --cacert "$QUAY_CA" \
                    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
                    "https://quay.io/v2/${qrepo%:*}/manifests/${qrepo##*:}" 2>/dev/null; then
                # dockerd resolves quay.io to the namespace's registry: nothing leaves the machine.
                docker push -q "$image" >/dev/null
            fi
            ;;
    esac
    echo "$image" >> "$CACHE/standins.built"
}

: > "$CACHE/standins.built"
skipped=()

debian="$(import_rootfs debian)"
nginx_base="$(import_rootfs nginx nginx/sid)"
postgres_base="$(import_rootfs postgres postgresql-17)"

stand "$(pin gateway)" "$here/nginx" "$nginx_base"
stand "$(pin postgres)" "$here/postgres" "$postgres_base"

vgw="$(find_program versitygw)"
if [ -n "$vgw" ]; then stand "$(pin versitygw)" "$here/versitygw" "$debian" "$vgw"; else skipped+=("versitygw (no versitygw program)"); fi

mn="$(find_program minio)"
if [ -n "$mn" ]; then stand "$(pin minio)" "$here/minio" "$debian" "$(readlink -f "$mn")"; else skipped+=("minio (no minio program: build MinIO from its source at the pinned tag, outside this repository)"); fi

col="$(find_program otelcol-obskit)"
if [ -n "$col" ]; then stand "$(pin otelcol)" "$here/otelcol" "$debian" "$col"; else skipped+=("the collector (no otelcol-obskit program: collector/build.sh DIR)"); fi

for prog in loki mimir; do
    p="$(find_program "$prog")"
    if [ -n "$p" ]; then stand "$(pin "$prog")" "$here/$prog" "$debian" "$p"; else skipped+=("$prog (no $prog program on PATH)"); fi
done

g="$(find_program grafana)"
ghome="${OBSKIT_GRAFANA_HOME:-}"
if [ -n "$g" ] && [ -z "$ghome" ]; then
    # A Grafana build next to its home folder (conf/ and public/), as a release unpacks.
    ghome="$(cd "$(dirname "$(readlink -f "$g")")/.." && pwd)"
fi
if [ -n "$g" ] && [ -d "$ghome/conf" ] && [ -d "$ghome/public" ]; then
    gctx="$(mktemp -d)"
    tar -C "$ghome" -cf "$gctx/home.tar" conf public
    stand "$(pin grafana)" "$here/grafana" "$debian" "$(readlink -f "$g")" "$gctx/home.tar"
    rm -rf "$gctx"
else
    skipped+=("grafana (no grafana program with its conf/ and public/ folders)")
fi

# Keep the cache bounded: base trees and stand-ins that the current inputs no longer use.
for old in $(docker images --format '{{.Repository}}:{{.Tag}}' 'obskit-standin/*'); do
    case " $debian $nginx_base $postgres_base " in *" $old "*) ;; *) docker rmi "$old" >/dev/null 2>&1 || true ;; esac
done
docker image prune --force >/dev/null 2>&1 || true

for s in "${skipped[@]}"; do say "skipped: $s"; done
say "ready: $(wc -l < "$CACHE/standins.built") images"
