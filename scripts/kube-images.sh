#!/usr/bin/env bash
# Builds the two container images the single-node cluster needs, from Debian parts only,
# because no container registry is reachable: the pod sandbox's pause image (scripts/pause.c,
# static) and the demo service's runtime (a debootstrap minbase rootfs with python3 and
# python3-prometheus-client). Both are cached by content and imported into containerd.
#
#   scripts/kube-images.sh build          # prints the cache folder holding both archives
#   scripts/kube-images.sh import SOCKET  # builds if needed, imports into containerd (k8s.io)
#   scripts/kube-images.sh names          # prints PAUSE_IMAGE=... and DEMO_IMAGE=...; no build
#
# Tags are a prefix of the recipe's hash, so a changed recipe gives new tags and a node never
# runs a stale image under an old name (and a non-"latest" tag keeps the kubelet from pulling).
# The debootstrap mirror is derived from the machine's own apt sources (never written here).
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
PAUSE_C="$(dirname "$SELF")/pause.c"
# What the demo service imports beyond the standard library (live/demo_service.py).
PACKAGES="python3,python3-prometheus-client"
ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/rolloutlab"

die() { echo "kube-images: $*" >&2; exit 1; }

suite() {
    # In a subshell: os-release sets VERSION and friends, which must not leak into ours.
    local codename
    codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")" || true
    [ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release (not a Debian machine?)"
    echo "$codename"
}

recipe_hash() {
    # Everything that decides the images' content; a change to any of it is a new cache.
    {
        printf 'script %s\n' "$(sha256sum < "$SELF")"
        printf 'pause.c %s\n' "$(sha256sum < "$PAUSE_C")"
        printf 'suite %s\narch %s\npackages %s\n' "$SUITE" "$ARCH" "$PACKAGES"
    } | sha256sum | cut -c1-64
}

[ -r "$PAUSE_C" ] || die "missing $PAUSE_C"
SUITE="$(suite)"
ARCH="$(dpkg --print-architecture 2>/dev/null || uname -m)"
HASH="$(recipe_hash)"
TAG="r-${HASH:0:12}"
PAUSE_IMAGE="rolloutlab.local/pause:$TAG"
DEMO_IMAGE="rolloutlab.local/demo-python:$TAG"
CACHE="$ROOT/images-$HASH"

need_tools() {
    local t missing=()
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
    [ "${#missing[@]}" = 0 ] || die "missing tools: ${missing[*]} (apt-get install -y ${missing[*]})"
}

# The first mirror URI of the apt sources that serve SUITE, and its Signed-By keyring if it
# names a file; prints "URI KEYRING" (KEYRING may be empty).
mirror_for() {
    local suite="$1" f out=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        # deb822: blank-line separated stanzas; skip comments and disabled stanzas.
        out="$(awk -v s="$suite" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ") && enabled != "no" && uri != "")
                    { print uri, key; found = 1; exit }
                types = suites = uri = key = enabled = ""
            }
            /^#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ { next }
            {
                field = tolower($1); sub(/:$/, "", field); $1 = ""; sub(/^ +/, "")
                if (field == "types") types = $0
                else if (field == "suites") suites = $0
                else if (field == "uris") { split($0, u, " "); uri = u[1] }
                else if (field == "signed-by" && $0 ~ /^\//) key = $0
                else if (field == "enabled") enabled = tolower($0)
            }
            END { if (!found) flush() }
        ' "$f")"
        [ -n "$out" ] && { echo "$out"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        # one-line: "deb [opts] URI SUITE COMPONENTS..."
        out="$(awk -v s="$suite" '
            $1 != "deb" { next }
            {
                key = ""; line = $0; sub(/^deb[ \t]+/, "", line)
                if (line ~ /^\[/) {
                    opts = substr(line, 2, index(line, "]") - 2); line = substr(line, index(line, "]") + 1)
                    if (match(opts, /signed-by=[^ ]+/)) key = substr(opts, RSTART + 10, RLENGTH - 10)
                }
                split(line, w, " ")
                if (w[2] == s) { print w[1], key; exit }
            }
        ' "$f")"
        [ -n "$out" ] && { echo "$out"; return 0; }
    done
    return 1
}

WORK=""
cleanup() {
    [ -n "$WORK" ] || return 0
    # debootstrap mounts proc/sys inside the target; an interrupted run can leave them, and
    # rm must never walk into them. Unmount (deepest first), then stay on this filesystem.
    awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$WORK"
}

build_pause() {
    local oci="$1" out="$2" bundle="$WORK/pause-bundle"
    gcc -Os -Wall -Werror -static -DVERSION="$TAG" -o "$WORK/pause" "$PAUSE_C"
    strip "$WORK/pause"
    umoci new --image "$oci:pause"
    umoci unpack --image "$oci:pause" "$bundle" >&2
    install -m 0755 "$WORK/pause" "$bundle/rootfs/pause"
    umoci repack --image "$oci:pause" "$bundle"
    # As upstream's image: an unprivileged user, since pause needs no rights at all.
    umoci config --image "$oci:pause" --no-history \
        --config.entrypoint /pause --config.workingdir / --config.user 65535:65535
    skopeo copy --quiet --policy "$WORK/policy.json" \
        "oci:$oci:pause" "docker-archive:$out/pause.tar:$PAUSE_IMAGE" >&2
}

trim_rootfs() {
    local r="$1"
    # Nothing in the container installs packages, reads docs or needs a locale but C.UTF-8.
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old \
        "$r"/var/lib/dpkg/*-old "$r"/var/log/* "$r"/tmp/* "$r"/var/tmp/* \
        "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/lintian \
        "$r"/usr/share/locale/*
    # Keep the copyright files (licences travel with the binaries), drop the rest of doc.
    find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
    # runc gives every container its own /dev, /proc, /sys, /run, hostname and resolv.conf;
    # what debootstrap left there is the build machine's.
    rm -rf "$r"/dev/* "$r"/proc/* "$r"/sys/* "$r"/run/*
    # (A plain `ctr run` mounts none of them, so leave neutral ones behind.)
    rm -f "$r/etc/resolv.conf" "$r/etc/hostname" "$r/etc/hosts"
    install -m 0644 /dev/null "$r/etc/resolv.conf"
    echo localhost | install -m 0644 /dev/stdin "$r/etc/hostname"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' |
        install -m 0644 /dev/stdin "$r/etc/hosts"
}

build_demo() {
    local oci="$1" out="$2" bundle="$WORK/demo-bundle" src uri key
    src="$(mirror_for "$SUITE")" || die "no apt source for suite $SUITE in /etc/apt to take a mirror from"
    read -r uri key <<<"$src"
    umoci new --image "$oci:demo-python"
    umoci unpack --image "$oci:demo-python" "$bundle" >&2
    local args=(--variant=minbase --include="$PACKAGES")
    [ -n "$key" ] && args+=(--keyring="$key")
    echo "kube-images: debootstrap $SUITE from $uri" >&2
    if ! debootstrap "${args[@]}" "$SUITE" "$bundle/rootfs" "$uri" >&2; then
        tail -n 20 "$bundle/rootfs/debootstrap/debootstrap.log" >&2 2>/dev/null || true
        die "debootstrap failed"
    fi
    trim_rootfs "$bundle/rootfs"
    umoci repack --image "$oci:demo-python" "$bundle"
    # PYTHONUNBUFFERED: a pod's stdout is a pipe, and the service's lines must reach the log
    # as they happen, not when a buffer fills. PROMETHEUS_DISABLE_CREATED_SERIES: bookworm's
    # prometheus-client (0.16) predates disable_created_metrics(), which the demo service
    # calls only when present; this switch drops the same *_created series.
    umoci config --image "$oci:demo-python" --no-history --config.workingdir / \
        --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --config.env LANG=C.UTF-8 --config.env PYTHONUNBUFFERED=1 \
        --config.env PROMETHEUS_DISABLE_CREATED_SERIES=True
    skopeo copy --quiet --policy "$WORK/policy.json" \
        "oci:$oci:demo-python" "docker-archive:$out/demo-python.tar:$DEMO_IMAGE" >&2
}

cached() { [ -s "$CACHE/pause.tar" ] && [ -s "$CACHE/demo-python.tar" ]; }

build() {
    if cached; then echo "$CACHE"; return 0; fi
    [ "$(id -u)" = 0 ] || die "building the images needs root (debootstrap, file ownership)"
    need_tools gcc strip umoci skopeo debootstrap flock dpkg
    [ -e "$(gcc -print-file-name=libc.a)" ] || die "missing static libc for gcc -static (apt-get install -y libc6-dev)"
    mkdir -p "$ROOT"
    # One build at a time; a second caller of the same recipe waits, then finds the cache.
    exec 9>"$ROOT/.images.lock"
    flock 9
    if cached; then echo "$CACHE"; return 0; fi
    # Build beside the cache (same filesystem) and move in at the end: an interrupted build
    # never leaves a half cache.
    WORK="$(mktemp -d "$ROOT/.images-build.XXXXXX")"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # Both ends of every copy are local files: no signature policy applies.
    echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$WORK/policy.json"
    local oci="$WORK/oci" out="$WORK/out"
    mkdir -p "$out"
    umoci init --layout "$oci"
    build_pause "$oci" "$out"
    build_demo "$oci" "$out"
    printf 'PAUSE_IMAGE=%s\nDEMO_IMAGE=%s\n' "$PAUSE_IMAGE" "$DEMO_IMAGE" > "$out/names.env"
    rm -rf "$CACHE"
    mv -T "$out" "$CACHE"
    echo "$CACHE"
}

import_images() {
    local sock="$1" cache img listed ref
    need_tools ctr
    [ -S "$sock" ] || die "no containerd socket at $sock"
    cache="$(build)"
    for img in pause demo-python; do
        # Re-importing the same archive only re-points the name: idempotent.
        ctr --address "$sock" -n k8s.io images import "$cache/$img.tar" >&2 ||
            die "ctr images import of $cache/$img.tar into $sock failed"
    done
    listed="$(ctr --address "$sock" -n k8s.io images ls -q)" || die "ctr images ls at $sock failed"
    for ref in "$PAUSE_IMAGE" "$DEMO_IMAGE"; do
        grep -qxF "$ref" <<<"$listed" || die "$ref not in containerd's k8s.io images at $sock after import"
    done
    echo "kube-images: imported $PAUSE_IMAGE and $DEMO_IMAGE into $sock (k8s.io)" >&2
}

case "${1:-}" in
    build) build ;;
    import)
        [ -n "${2:-}" ] || { echo "usage: $0 import SOCKET" >&2; exit 2; }
        import_images "$2" ;;
    names) printf 'PAUSE_IMAGE=%s\nDEMO_IMAGE=%s\n' "$PAUSE_IMAGE" "$DEMO_IMAGE" ;;
    *) echo "usage: $0 build|import SOCKET|names" >&2; exit 2 ;;
esac
