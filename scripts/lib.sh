# shellcheck shell=bash
# Shared setup for scripts/test and scripts/demo; sourced, never run.
# Every ensure_* step checks first and does only what is missing, so a second run is quick
# and a fresh machine (no engine, no images, no venv) gets everything it needs.

set -Eeuo pipefail

PERSIST_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PERSIST_CACHE=${PERSIST_CACHE:-/var/cache/persist-test}
PERSIST_LOGS=${PERSIST_LOGS:-/var/log/persist-docker}
DEBIAN_ROOTFS=$PERSIST_CACHE/rootfs-base

# The image the modules use by default for their helper containers (pinned Debian slim).
# No registry is reachable here, so the locally built Debian image is tagged with that name,
# exactly as an offline site mirrors an image.
HELPER_IMAGE=debian:bookworm-20250908-slim
DEBIAN_IMAGE=persist-test/debian:bookworm
NODE_IMAGE=persist-test/ansible-node:bookworm
# The node of the backup role's scenario: the above with Compose v1 and systemd's tools.
BACKUP_NODE_IMAGE=persist-test/backup-node:bookworm
BUSYBOX_IMAGE=persist-test/busybox:latest
# Database servers from Debian's packages, also tagged with the official names the database
# role defaults to (tests/images/README.md says why).
POSTGRES_IMAGE=persist-test/postgres:15
MARIADB_IMAGE=persist-test/mariadb:10.11
REDIS_IMAGE=persist-test/redis:7.0

CURRENT_STAGE=setup

log() { printf '==> %s\n' "$*"; }

stage() {
    CURRENT_STAGE=$1
    log "stage: $1 (at ${SECONDS}s)"
}

die() {
    printf '==> FAILED in stage %s: %s\n' "$CURRENT_STAGE" "$*" >&2
    exit 1
}

on_error() {
    local rc=$?
    printf '==> FAILED in stage %s (exit %s): %s\n' "$CURRENT_STAGE" "$rc" "$BASH_COMMAND" >&2
    exit "$rc"
}
trap on_error ERR

# apt_install PACKAGE...: installs the packages that are not installed yet.
apt_install() {
    local missing=() package
    for package; do
        [[ $(dpkg-query -W -f='${Status}' "$package" 2>/dev/null) == *' installed' ]] || missing+=("$package")
    done
    ((${#missing[@]})) || return 0
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_engine() {
    stage engine
    apt_install zstd age  # tests restore archives by hand: plain tar --zstd, age -d
    if docker version >/dev/null 2>&1; then
        log "engine answers: dockerd $(docker version --format '{{.Server.Version}}')"
        return
    fi
    apt_install docker.io
    mkdir -p "$PERSIST_LOGS"
    local daemon_log=$PERSIST_LOGS/dockerd.log
    # A dockerd that is still starting must not get a twin (its pidfile names a live process).
    if ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
        log "starting dockerd (no bridge, no iptables; log: $daemon_log)"
        setsid nohup dockerd --bridge=none --iptables=false --ip-masq=false \
            >>"$daemon_log" 2>&1 </dev/null &
    fi
    local waited
    for ((waited = 0; waited < 60; waited++)); do
        docker version >/dev/null 2>&1 && { log "engine answers after ${waited}s"; return; }
        sleep 1
    done
    tail -n 30 "$daemon_log" >&2 || true
    die "dockerd did not answer 'docker version' within 60 s (log: $daemon_log)"
}

# The Debian mirror debootstrap fetches from: PERSIST_DEBIAN_MIRROR when set, else the first
# URI of the machine's apt sources (deb822 files, then sources.list) that is not a security
# archive. No mirror is ever written into this repository.
debian_mirror() {
    if [[ -n ${PERSIST_DEBIAN_MIRROR:-} ]]; then
        printf '%s\n' "$PERSIST_DEBIAN_MIRROR"
        return
    fi
    local uri
    uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '$1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }' | grep -v -- '-security' | head -n 1 || true)
    if [[ -z $uri ]]; then
        uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } }' |
            grep -v -- '-security' | head -n 1 || true)
    fi
    [[ -n $uri ]] || die "no Debian mirror in the apt sources (/etc/apt/sources.list*); set PERSIST_DEBIAN_MIRROR"
    printf '%s\n' "$uri"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# A Debian minbase rootfs, built once. debootstrap writes into a temporary directory that is
# renamed only when complete, so a killed run never leaves a partial rootfs under the final name.
ensure_debian_rootfs() {
    local marker=etc/persist-test-rootfs
    [[ -x $DEBIAN_ROOTFS/usr/bin/tar && -f $DEBIAN_ROOTFS/$marker ]] && return
    apt_install debootstrap
    local building=$DEBIAN_ROOTFS.building.$$ mirror
    mirror=$(debian_mirror)
    log "debootstrap bookworm minbase into $DEBIAN_ROOTFS from $mirror"
    mkdir -p "$PERSIST_CACHE"
    rm -rf "$DEBIAN_ROOTFS" "$DEBIAN_ROOTFS".building.*
    debootstrap --variant=minbase bookworm "$building" "$mirror" >"$PERSIST_CACHE/debootstrap.log" 2>&1 ||
        die "debootstrap failed, see $PERSIST_CACHE/debootstrap.log"
    echo "debootstrap --variant=minbase bookworm $(date -u +%FT%TZ)" >"$building/$marker"
    mv "$building" "$DEBIAN_ROOTFS"
}

# built_from TAG: the context hash the image of that tag was built from (empty when none).
built_from() { docker image inspect -f '{{ index .Config.Labels "persist.test.context" }}' "$1" 2>/dev/null || true; }

# ensure_built TAG DIR: docker build with the host network (apt reaches Debian), unless an
# image of that tag was built from the same DIR contents (a label holds their hash).
ensure_built() {
    local context_hash lock_fd
    context_hash=$(cd "$2" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
    [[ $(built_from "$1") == "$context_hash" ]] && return
    # Test runs of several sessions share the engine: one builds a tag, the others wait for it
    # (and then find it built) instead of building the same image beside it.
    local name=${1//[\/:]/_}
    mkdir -p "$PERSIST_CACHE" "$PERSIST_LOGS"
    exec {lock_fd}>"$PERSIST_CACHE/build-$name.lock"
    flock "$lock_fd"
    if [[ $(built_from "$1") == "$context_hash" ]]; then
        exec {lock_fd}>&-
        return
    fi
    local build_log=$PERSIST_LOGS/build-$name.log started=$SECONDS
    log "docker build $1 from ${2#"$PERSIST_ROOT"/} (log: $build_log)"
    # The legacy builder: the BuildKit plugin (buildx) is not installed here.
    DOCKER_BUILDKIT=0 docker build --network host --label "persist.test.context=$context_hash" \
        -t "$1" "$2" >"$build_log" 2>&1 || {
        tail -n 30 "$build_log" >&2
        die "docker build $1 failed (log: $build_log)"
    }
    exec {lock_fd}>&-
    log "built $1 in $((SECONDS - started))s"
}

# ensure_tagged IMAGE NAME...: gives IMAGE the other NAMEs too (official names, as an offline
# site mirrors them); a NAME that points at another image id is moved to IMAGE.
ensure_tagged() {
    local image=$1 image_id name
    shift
    image_id=$(docker image inspect -f '{{.Id}}' "$image")
    for name; do
        [[ $(docker image inspect -f '{{.Id}}' "$name" 2>/dev/null) == "$image_id" ]] && continue
        log "docker tag $image $name"
        docker tag "$image" "$name"
    done
}

ensure_images() {
    stage images
    if ! image_exists "$DEBIAN_IMAGE"; then
        ensure_debian_rootfs
        log "docker import $DEBIAN_ROOTFS as $DEBIAN_IMAGE"
        tar -C "$DEBIAN_ROOTFS" -c . | docker import - "$DEBIAN_IMAGE" >/dev/null
    fi
    image_exists "$HELPER_IMAGE" || docker tag "$DEBIAN_IMAGE" "$HELPER_IMAGE"
    ensure_built "$NODE_IMAGE" "$PERSIST_ROOT/tests/images/ansible-node"
    ensure_built "$BACKUP_NODE_IMAGE" "$PERSIST_ROOT/tests/images/backup-node"
    ensure_built "$BUSYBOX_IMAGE" "$PERSIST_ROOT/tests/images/busybox"
    ensure_built "$POSTGRES_IMAGE" "$PERSIST_ROOT/tests/images/postgres"
    ensure_tagged "$POSTGRES_IMAGE" postgres:15 postgres:15-bookworm
    ensure_built "$MARIADB_IMAGE" "$PERSIST_ROOT/tests/images/mariadb"
    ensure_tagged "$MARIADB_IMAGE" mariadb:10.11 mariadb:10
    ensure_built "$REDIS_IMAGE" "$PERSIST_ROOT/tests/images/redis"
    ensure_tagged "$REDIS_IMAGE" redis:7.0 redis:7
    log "images ready: $DEBIAN_IMAGE $HELPER_IMAGE $NODE_IMAGE $BACKUP_NODE_IMAGE $BUSYBOX_IMAGE $POSTGRES_IMAGE $MARIADB_IMAGE $REDIS_IMAGE"
}

# A virtualenv keyed by the hash of tests/requirements.txt, reused while the file is unchanged.
ensure_venv() {
    stage venv
    local requirements=$PERSIST_ROOT/tests/requirements.txt hash
    hash=$(sha256sum "$requirements" | cut -c1-64)
    PERSIST_VENV=${PERSIST_VENV:-$HOME/.cache/persist-docker/venv-${hash:0:12}}
    local marker=$PERSIST_VENV/.persist-requirements-sha256
    if [[ $(cat "$marker" 2>/dev/null) != "$hash" ]]; then
        log "creating $PERSIST_VENV from tests/requirements.txt"
        python3 -m venv "$PERSIST_VENV"
        "$PERSIST_VENV/bin/python" -m pip install -q -r "$requirements"
        echo "$hash" >"$marker"
    fi
    export VIRTUAL_ENV=$PERSIST_VENV PATH=$PERSIST_VENV/bin:$PATH
    log "venv ready: $PERSIST_VENV"
}

# Ansible finds this checkout as persist.docker through a symlink named like a collection.
# The ansible package's own collections (community.docker ...) stay reachable: they live in
# site-packages/ansible_collections, which Ansible scans besides ANSIBLE_COLLECTIONS_PATH.
ensure_collection_path() {
    stage collection-path
    # One path per checkout, so that two checkouts can run their tests side by side.
    local root_hash
    root_hash=$(printf '%s' "$PERSIST_ROOT" | sha256sum | cut -c1-12)
    local collections=${PERSIST_COLLECTIONS:-/tmp/persist-docker-collections-$root_hash}
    mkdir -p "$collections/ansible_collections/persist"
    ln -sfn "$PERSIST_ROOT" "$collections/ansible_collections/persist/docker"
    export ANSIBLE_COLLECTIONS_PATH=$collections
    export ANSIBLE_PYTHON_INTERPRETER=$PERSIST_VENV/bin/python
    log "persist.docker -> $PERSIST_ROOT (ANSIBLE_COLLECTIONS_PATH=$collections)"
}

ensure_all() {
    ensure_engine
    ensure_images
    ensure_venv
    ensure_collection_path
}
