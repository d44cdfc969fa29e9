#!/usr/bin/env bash
# Builds Kubernetes from Debian's `kubernetes` source package and caches it by version: the
# control plane (kube-apiserver, kube-controller-manager, kube-scheduler) and the node
# (kubelet, kube-proxy), so tests of the live Kubernetes backend run against a real cluster
# (with Debian's etcd-server, containerd and runc; scripts/kube-cluster.sh starts it).
#
#   scripts/kube-control-plane.sh build   # once per version; prints the bin folder
#   scripts/kube-control-plane.sh path    # prints the bin folder, exit 1 if not built
#
# The deb-src lines are derived from the machine's own apt sources (never written by hand),
# so the script works on any mirror the machine already uses.
set -euo pipefail

VERSION="${ROLLOUTLAB_KUBE_VERSION:-1.20.2}"
# Bump when the build recipe changes, so a cached build of an older recipe is not reused.
RECIPE=3
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/rolloutlab/kube-$VERSION-r$RECIPE"
BIN="$CACHE/bin"
BINARIES="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy"

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "kube-control-plane: installing build packages needs root (apt-get)" >&2
        exit 1
    fi
}

add_deb_src() {
    # deb822 sources: copy every "Types: deb" stanza as "Types: deb-src".
    local out=/etc/apt/sources.list.d/rolloutlab-deb-src.sources
    local found=0
    : > "$out.tmp"
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        [ "$f" = "$out" ] && continue
        if grep -q '^Types: deb$' "$f"; then
            sed 's/^Types: deb$/Types: deb-src/' "$f" >> "$out.tmp"
            printf '\n' >> "$out.tmp"
            found=1
        fi
    done
    # one-line sources: turn "deb URI suite comps" into "deb-src URI suite comps".
    local list=/etc/apt/sources.list.d/rolloutlab-deb-src.list
    : > "$list.tmp"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        [ "$f" = "$list" ] && continue
        grep -E '^deb\s' "$f" | sed -E 's/^deb(\s)/deb-src\1/' >> "$list.tmp" || true
    done
    [ -s "$list.tmp" ] && found=1
    mv "$out.tmp" "$out"; mv "$list.tmp" "$list"
    [ -s "$out" ] || rm -f "$out"
    [ -s "$list" ] || rm -f "$list"
    if [ "$found" = 0 ]; then
        echo "kube-control-plane: no apt 'deb' sources found to derive deb-src lines from" >&2
        exit 1
    fi
}

build() {
    local b missing=0
    for b in $BINARIES; do [ -x "$BIN/$b" ] || missing=1; done
    if [ "$missing" = 0 ]; then
        echo "$BIN"
        return 0
    fi
    need_root
    add_deb_src
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        dpkg-dev golang-go etcd-server jq rsync golang-github-modern-go-reflect2-dev >&2
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    (cd "$WORK" && apt-get source -q "kubernetes=$(apt-cache showsrc kubernetes \
        | awk '/^Version:/{print $2}' | grep -F "$VERSION" | head -1)" >&2)
    local src
    src="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)"
    [ -n "$src" ] || { echo "kube-control-plane: source unpack failed" >&2; exit 1; }
    # Kubernetes 1.20 vendors reflect2 1.0.1, whose map iteration crashes the API server
    # (SIGSEGV in mapiterinit) when built with Go >= 1.18, as Debian's Go 1.19 is: every
    # custom resource write hits it. reflect2 1.0.2 fixed it; take Debian's copy of it.
    local reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
    [ -d "$reflect2" ] || { echo "kube-control-plane: $reflect2 missing" >&2; exit 1; }
    rm -rf "$src/vendor/github.com/modern-go/reflect2"
    mkdir -p "$src/vendor/github.com/modern-go/reflect2"
    find "$reflect2" -maxdepth 1 -name '*.go' ! -name '*_test.go' -exec cp {} "$src/vendor/github.com/modern-go/reflect2/" \;
    # The way debian/rules builds it: Kubernetes' own make rules in a GOPATH with the
    # vendored modules (no network needed).
    mkdir -p "$src/.go/src/k8s.io"
    ln -sfn ../../.. "$src/.go/src/k8s.io/kubernetes"
    (cd "$src" && env GOPATH="$src/.go" CGO_ENABLED=0 GOCACHE="$WORK/gocache" HOME="$WORK" \
        make WHAT="$(for b in $BINARIES; do printf 'cmd/%s ' "$b"; done)" >&2)
    rm -rf "$BIN.tmp" "$BIN" "$CACHE/gocache"
    mkdir -p "$BIN.tmp"
    for b in $BINARIES; do cp "$src/_output/bin/$b" "$BIN.tmp/"; done
    mv "$BIN.tmp" "$BIN"
    echo "$BIN"
}

case "${1:-build}" in
    build) build ;;
    path)
        for b in $BINARIES; do [ -x "$BIN/$b" ] || exit 1; done
        echo "$BIN" ;;
    *) echo "usage: $0 build|path" >&2; exit 2 ;;
esac
