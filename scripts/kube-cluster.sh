#!/usr/bin/env bash
# Kubernetes clusters of Debian parts on this machine, for the live Kubernetes backend's
# tests and for `rolloutlab live|validate --backend kube` where kind cannot run:
#
#   control plane  etcd (Debian etcd-server), kube-apiserver, kube-controller-manager,
#                  kube-scheduler (built by scripts/kube-control-plane.sh from Debian's
#                  kubernetes source package), TLS everywhere, one credential per component
#   nodes          NODES (default 2) kubelets, each with its own containerd (Debian, runc v2
#                  shim, cgroupfs driver: cgroup v1 hybrid here, which crun refuses) and its
#                  own CNI bridge (Debian containernetworking-plugins); one kube-proxy
#                  (iptables mode) per cluster, NodePorts on 127.0.0.0/8 only
#   images         the pause and demo images from scripts/kube-images.sh, imported into
#                  every node's containerd (no registry is reachable)
#   the runner     the ServiceAccount and RBAC rules of live/rbac.yaml, applied by the admin;
#                  the env file's KUBECONFIG and TOKEN authenticate as that ServiceAccount
#                  (RBAC on: only its rules), ADMIN_KUBECONFIG / ADMIN_TOKEN as system:masters
#
#   scripts/kube-cluster.sh up      # idempotent: starts what is not running; prints the env file
#   scripts/kube-cluster.sh down    # stops everything, then checks nothing is left behind
#   scripts/kube-cluster.sh status  # exit 0 when the cluster answers and every node is Ready
#   scripts/kube-cluster.sh env     # prints the env file (KUBECONFIG=..., API_URL=..., ...)
#   scripts/kube-cluster.sh settings                 # the cluster's addresses, ports and names
#   scripts/kube-cluster.sh up --cluster 2           # another cluster beside it (a "region")
#   scripts/kube-cluster.sh down --all               # every cluster this script started
#   scripts/kube-cluster.sh kubeconfig --clusters 1,2 --contexts us-east,eu-west [-o FILE]
#                                   # one kubeconfig, a context per cluster, named by region,
#                                   # as the runner's ServiceAccount (--admin: as the admin)
#
# Several clusters run side by side (--cluster N or ROLLOUTLAB_KUBE_CLUSTER=N, 1 <= N <= 9;
# 1 is the default). Cluster 1 lives in the machine's own network namespace: its API
# server and NodePorts on 127.0.0.1, node addresses added to `lo` (10.243.0.N/32), pod
# addresses on the bridges it creates. Cluster N >= 2 runs whole (control plane, containerd,
# kubelets, kube-proxy) in a network namespace of its own, joined to the host by a veth
# pair, because kube-proxy's iptables mode owns the KUBE-* chains of the namespace it runs
# in: two of them in one namespace delete each other's Service chains on every sync. The
# host reaches cluster N at 127.0.0.N (API server and NodePorts alike), which one DNAT rule
# sends into its namespace. Each cluster lives under its own folder ($ROLLOUTLAB_KUBE_DIR,
# default /tmp/rolloutlab-kube, with "-N" appended for N >= 2); the machine-wide sysctls the
# clusters change are recorded once in $HOST_STATE and put back by the `down` of the last
# cluster that needs them.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BASE_DIR="${ROLLOUTLAB_KUBE_DIR:-/tmp/rolloutlab-kube}"
NODES="${ROLLOUTLAB_KUBE_NODES:-2}"
BASE_API_PORT="${ROLLOUTLAB_KUBE_API_PORT:-16443}"
BASE_ETCD_PORT="${ROLLOUTLAB_KUBE_ETCD_PORT:-16379}"
MAX_CLUSTERS=9
TOKEN=rolloutlab-test-token  # the admin's bearer token (also a client certificate in the kubeconfig)
CNI_BIN=/usr/lib/cni
SYSCTLS="net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.ipv4.conf.all.route_localnet=1"

# The kubelet sets these itself (protectKernelDefaults: false); recorded so `down` restores them.
# They are kernel-wide, whichever network namespace the kubelet runs in.
KUBELET_SYSCTLS="vm.overcommit_memory kernel.panic kernel.panic_on_oops vm.panic_on_oom"

# What the clusters of this machine share: the sysctl values found before the first change,
# and which cluster still needs which of them (one file per cluster).
HOST_STATE=/run/rolloutlab-kube
HOST_LOCK=/run/lock/rolloutlab-kube.lock

select_cluster() {
    # select_cluster N: everything that tells cluster N from the others on this machine.
    # Cluster 1 keeps the values this script has always used.
    CLUSTER="$1"
    local i=$(( $1 - 1 ))
    DIR="$BASE_DIR"; [ "$CLUSTER" = 1 ] || DIR="$BASE_DIR-$CLUSTER"
    API_PORT=$(( BASE_API_PORT + 10 * i ))
    ETCD_PORT=$(( BASE_ETCD_PORT + 10 * i ))
    SERVICE_CIDR="10.$(( 96 + i )).0.0/16"
    SERVICE_IP="10.$(( 96 + i )).0.1"   # the `kubernetes` Service's ClusterIP
    NODE_NET="10.243.$i"                # node N has $NODE_NET.N/32 on lo
    POD_NET="10.$(( 244 + i ))"         # node N's pods: $POD_NET.N.0/24 on bridge ${LINK_PREFIX}-cniN
    PORT_OFFSET=$(( 1000 * i ))         # kubelet and kube-proxy ports
    HOST_ADDR="127.0.0.$CLUSTER"        # where the host reaches its API server and NodePorts
    if [ "$CLUSTER" = 1 ]; then
        NAME_PREFIX=rolloutlab; LINK_PREFIX=rlk; NETNS=""; API_BIND=127.0.0.1; NS_EXEC=()
    else
        NAME_PREFIX="rolloutlab-c$CLUSTER"; LINK_PREFIX="rlk$CLUSTER"; NETNS="rolloutlab-kube-$CLUSTER"
        VETH_HOST="$LINK_PREFIX-host"; VETH_NS="$LINK_PREFIX-ns"
        TRANSIT_HOST="10.242.$CLUSTER.1"; TRANSIT_NS="10.242.$CLUSTER.2"  # the veth pair's /30
        API_BIND="$TRANSIT_NS"
        NS_EXEC=(nsenter "--net=/run/netns/$NETNS" --)
    fi
}

say() { echo "kube-cluster: $*" >&2; }
die() { say "$*"; exit 1; }
node_name() { echo "$NAME_PREFIX-node-$1"; }
# Runs a command where the cluster's processes run (its network namespace, if it has one).
in_ns() { "${NS_EXEC[@]}" "$@"; }

# --------------------------------------------------------------------------- preflight

preflight() {
    # Each missing piece gets its own message: a failure to start must name what is
    # missing, never hang (every wait below is bounded too).
    [ "$(id -u)" = 0 ] || die "needs root (containers, network namespaces, iptables, mounts)"
    local tool
    for tool in containerd containerd-shim-runc-v2 runc ctr etcd openssl iptables iptables-save ip conntrack curl; do
        command -v "$tool" >/dev/null 2>&1 || die "missing '$tool' (Debian: containerd runc etcd-server openssl iptables iproute2 conntrack curl)"
    done
    for tool in bridge host-local loopback portmap; do
        [ -x "$CNI_BIN/$tool" ] || die "missing CNI plugin $CNI_BIN/$tool (Debian: containernetworking-plugins)"
    done
    BIN="$("$HERE/kube-control-plane.sh" path)" || die "Kubernetes is not built: run scripts/kube-control-plane.sh build"
    local controller
    for controller in cpu cpuacct cpuset memory pids devices freezer; do
        grep -qw "$controller" /proc/cgroups || die "the kernel has no '$controller' cgroup controller (the kubelet needs it)"
        if [ ! -d "/sys/fs/cgroup/$controller" ] && ! grep -q 'cgroup2' /proc/mounts; then
            die "cgroup controller '$controller' is not mounted under /sys/fs/cgroup"
        fi
    done
    grep -qw overlay /proc/filesystems || die "the kernel has no overlay filesystem (containerd's snapshotter needs it)"
    [ -d /proc/sys/net/bridge ] || die "bridge netfilter (br_netfilter) is not loaded: Services cannot reach pods on a bridge"
    # Probes named after the cluster: two clusters may start at the same time.
    ip link add "$LINK_PREFIX-probe" type bridge 2>/dev/null || die "cannot create a bridge interface (no CAP_NET_ADMIN or no bridge support)"
    ip link del "$LINK_PREFIX-probe"
    ip netns add "$LINK_PREFIX-probe" 2>/dev/null || die "cannot create a network namespace"
    ip netns del "$LINK_PREFIX-probe"
    iptables -t nat -S >/dev/null 2>&1 || die "iptables' nat table is not usable (kube-proxy needs it)"
    [ -e /dev/kmsg ] || die "/dev/kmsg is missing (the kubelet's OOM watcher reads it)"
    command -v flock >/dev/null 2>&1 || die "missing 'flock' (Debian: util-linux)"
    if [ -n "$NETNS" ]; then
        command -v nsenter >/dev/null 2>&1 || die "missing 'nsenter' (Debian: util-linux)"
        # The DNAT rule sends all of $HOST_ADDR's TCP into the cluster: a listener of the
        # machine's own there would be cut off.
        local listeners; listeners="$(ss -Htln 2>/dev/null || true)"
        if grep -qF " $HOST_ADDR:" <<< "$listeners"; then
            die "something on this machine listens on $HOST_ADDR, which cluster $CLUSTER would take: $(grep -F " $HOST_ADDR:" <<< "$listeners" | head -1)"
        fi
    fi
}

# --------------------------------------------------------------------------- processes

pidfile() { echo "$DIR/run/$1.pid"; }
running() { local p; p="$(cat "$(pidfile "$1")" 2>/dev/null)" && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

spawn() {
    # spawn NAME ARGV...: in its own session (so `down` can end its children too) and the
    # cluster's network namespace, log and pid file under $DIR. (nsenter execs the command:
    # the pid is the process's own.)
    local name="$1"; shift
    running "$name" && return 0
    setsid "${NS_EXEC[@]}" "$@" >"$DIR/logs/$name.log" 2>&1 < /dev/null &
    echo $! > "$(pidfile "$name")"
}

stop() {
    local name="$1" p i
    p="$(cat "$(pidfile "$name")" 2>/dev/null)" || return 0
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
        kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
    fi
    rm -f "$(pidfile "$name")"
}

wait_for() {
    # wait_for WHAT SECONDS PROCESS COMMAND...: until COMMAND succeeds; the process's log
    # tail when it died or the time ran out.
    local what="$1" seconds="$2" proc="$3"; shift 3
    local deadline=$(( $(date +%s) + seconds ))
    until "$@" >/dev/null 2>&1; do
        if [ -n "$proc" ] && ! running "$proc"; then
            tail -25 "$DIR/logs/$proc.log" >&2 || true
            die "$proc exited while waiting for $what (log: $DIR/logs/$proc.log)"
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            [ -n "$proc" ] && { tail -25 "$DIR/logs/$proc.log" >&2 || true; }
            die "$what not ready after ${seconds}s (log: $DIR/logs/${proc:-}.log)"
        fi
        sleep 0.2
    done
}

api() { curl -sf --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $TOKEN" "https://$HOST_ADDR:$API_PORT$1" "${@:2}"; }

write_config() {
    # write_config FILE < content: replaced only when the content changed (kube-proxy exits
    # when its config file changes under it, and `up` runs again on a running cluster).
    local tmp; tmp="$(mktemp "$1.XXXX")"
    cat > "$tmp"
    if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

# --------------------------------------------------------------------------- certificates

cert() {
    # cert NAME SUBJECT [SAN]: a key and a certificate signed by the cluster's CA.
    local name="$1" subject="$2" san="${3:-}"
    [ -s "$DIR/pki/$name.crt" ] && return 0
    openssl req -new -newkey rsa:2048 -nodes -keyout "$DIR/pki/$name.key" -subj "$subject" \
        -out "$DIR/pki/$name.csr" 2>/dev/null
    local ext="$DIR/pki/$name.ext"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' > "$ext"
    [ -n "$san" ] && echo "subjectAltName=$san" >> "$ext"
    openssl x509 -req -in "$DIR/pki/$name.csr" -CA "$DIR/pki/ca.crt" -CAkey "$DIR/pki/ca.key" -CAcreateserial \
        -days 365 -extfile "$ext" -out "$DIR/pki/$name.crt" 2>/dev/null
    rm -f "$DIR/pki/$name.csr" "$ext"
}

kubeconfig() {
    # kubeconfig FILE CERT_NAME [ADDRESS]: a kubeconfig with a client certificate, for the API
    # server at ADDRESS (default: the address the cluster's own components use).
    local name=rolloutlab; [ "$CLUSTER" = 1 ] || name="rolloutlab-$CLUSTER"
    cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: $name, cluster: {server: "https://${3:-$API_BIND}:$API_PORT", certificate-authority: "$DIR/pki/ca.crt"}}]
users: [{name: $2, user: {client-certificate: "$DIR/pki/$2.crt", client-key: "$DIR/pki/$2.key"}}]
contexts: [{name: $name, context: {cluster: $name, user: $2}}]
current-context: $name
EOF
}

pki() {
    mkdir -p "$DIR/pki"
    local ca_name=rolloutlab-kube-ca extra_ips=""
    [ "$CLUSTER" = 1 ] || { ca_name="rolloutlab-kube-$CLUSTER-ca"; extra_ips="IP:$HOST_ADDR,IP:$API_BIND,"; }
    if [ ! -s "$DIR/pki/ca.crt" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/pki/ca.key" -out "$DIR/pki/ca.crt" \
            -days 365 -subj "/CN=$ca_name" 2>/dev/null
    fi
    [ -s "$DIR/pki/sa.key" ] || openssl genrsa -out "$DIR/pki/sa.key" 2048 2>/dev/null
    cert apiserver "/CN=kube-apiserver" \
        "IP:127.0.0.1,${extra_ips}IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    cert admin "/O=system:masters/CN=rolloutlab-admin"
    # With one credential for all its controllers (no per-controller service accounts), the
    # controller manager needs more than the bootstrap role system:kube-controller-manager.
    cert controller-manager "/O=system:masters/CN=system:kube-controller-manager"
    cert scheduler "/CN=system:kube-scheduler"
    cert kube-proxy "/CN=system:kube-proxy"
    local n
    for n in $(seq "$NODES"); do
        cert "node-$n" "/O=system:nodes/CN=system:node:$(node_name "$n")" "IP:$NODE_NET.$n,DNS:$(node_name "$n")"
    done
    echo "$TOKEN,rolloutlab-admin,rolloutlab-admin,system:masters" > "$DIR/pki/tokens.csv"
    kubeconfig "$DIR/kubeconfig" admin "$HOST_ADDR"   # the host's way in
    kubeconfig "$DIR/controller-manager.kubeconfig" controller-manager
    kubeconfig "$DIR/scheduler.kubeconfig" scheduler
    kubeconfig "$DIR/kube-proxy.kubeconfig" kube-proxy
    for n in $(seq "$NODES"); do kubeconfig "$DIR/node-$n.kubeconfig" "node-$n"; done
}

# --------------------------------------------------------------------------- host settings

host_locked() {
    # host_locked COMMAND...: with the machine-wide lock held (a bounded wait), so clusters
    # going up or down at the same time keep one consistent record.
    ( flock -w 60 9 || die "waited 60s for the lock $HOST_LOCK"; "$@" ) 9>"$HOST_LOCK"
}

holder_file() { echo "$HOST_STATE/holders/$(tr / _ <<< "$DIR")"; }

claim_sysctls() {
    # Records each value this cluster or its kubelets will change (unless another cluster
    # already did: then the record holds the value found before any of them) and which keys
    # this cluster needs. A cluster in its own network namespace sets the network ones there.
    local keys="" kv key path
    [ -n "$NETNS" ] || for kv in $SYSCTLS; do keys="$keys ${kv%%=*}"; done
    keys="$keys $KUBELET_SYSCTLS"
    mkdir -p "$HOST_STATE/holders"
    for key in $keys; do
        path="/proc/sys/${key//.//}"
        [ -e "$path" ] || continue
        grep -q "^$key=" "$HOST_STATE/sysctl.saved" 2>/dev/null || echo "$key=$(cat "$path")" >> "$HOST_STATE/sysctl.saved"
    done
    printf '%s\n%s\n' "$DIR" "$keys" > "$(holder_file)"
}

release_sysctls() {
    # Puts back every recorded value no cluster still up needs; the last cluster down puts
    # back all of them and removes the record.
    local kv key holder needed=" "
    if [ -f "$DIR/sysctl.saved" ]; then
        # A cluster started by an older version of this script kept its record here; it is
        # older than (and wins over) any record made since.
        mkdir -p "$HOST_STATE/holders"
        touch "$HOST_STATE/sysctl.saved"
        awk -F= 'NR == FNR {print; older[$1]; next} !($1 in older)' \
            "$DIR/sysctl.saved" "$HOST_STATE/sysctl.saved" > "$DIR/sysctl.merged"
        mv "$DIR/sysctl.merged" "$HOST_STATE/sysctl.saved"
        rm -f "$DIR/sysctl.saved"
    fi
    [ -d "$HOST_STATE" ] || return 0
    rm -f "$(holder_file)"
    for holder in "$HOST_STATE"/holders/*; do
        [ -f "$holder" ] || continue
        # A cluster whose folder is gone was killed, never taken down: it needs nothing.
        if [ -d "$(head -1 "$holder")" ]; then needed="$needed$(tail -n +2 "$holder" | tr '\n' ' ') "; else rm -f "$holder"; fi
    done
    if [ -f "$HOST_STATE/sysctl.saved" ]; then
        : > "$HOST_STATE/sysctl.kept"
        while IFS= read -r kv; do
            key="${kv%%=*}"
            if [[ "$needed" == *" $key "* ]]; then
                echo "$kv" >> "$HOST_STATE/sysctl.kept"
            else
                echo "${kv#*=}" > "/proc/sys/${key//.//}" || say "could not restore $key"
            fi
        done < "$HOST_STATE/sysctl.saved"
        mv "$HOST_STATE/sysctl.kept" "$HOST_STATE/sysctl.saved"
        [ -s "$HOST_STATE/sysctl.saved" ] || rm -f "$HOST_STATE/sysctl.saved"
    fi
    rmdir "$HOST_STATE/holders" "$HOST_STATE" 2>/dev/null || true
}

set_sysctls() {
    # Recorded before the first change, so `down` puts the machine back.
    local kv key path
    for kv in $SYSCTLS; do
        key="${kv%%=*}"; path="/proc/sys/${key//.//}"
        [ -e "$path" ] || die "sysctl $key is missing"
    done
    host_locked claim_sysctls
    for kv in $SYSCTLS; do
        key="${kv%%=*}"; path="/proc/sys/${key//.//}"
        # In a network namespace these are the namespace's own (and go with it).
        in_ns sh -c "echo ${kv#*=} > $path" || die "cannot set sysctl $key (read-only /proc/sys?)"
    done
}

host_nat() {
    # host_nat -A|-D: the two rules that make $HOST_ADDR the cluster's address on the host:
    # every TCP connection to it goes to the cluster's end of the veth pair, from the host's
    # end (a packet from 127.0.0.0/8 is not accepted off `lo` otherwise).
    local tag="rolloutlab-kube cluster $CLUSTER"
    local dnat=(OUTPUT -d "$HOST_ADDR/32" -p tcp -m comment --comment "$tag" -j DNAT --to-destination "$TRANSIT_NS")
    local snat=(POSTROUTING -o "$VETH_HOST" -m comment --comment "$tag" -j SNAT --to-source "$TRANSIT_HOST")
    if [ "$1" = -A ]; then
        iptables -t nat -C "${dnat[@]}" 2>/dev/null || iptables -t nat -A "${dnat[@]}"
        iptables -t nat -C "${snat[@]}" 2>/dev/null || iptables -t nat -A "${snat[@]}"
    else
        while iptables -t nat -D "${dnat[@]}" 2>/dev/null; do :; done
        while iptables -t nat -D "${snat[@]}" 2>/dev/null; do :; done
    fi
}

network() {
    # Cluster 1: node addresses on the machine's `lo`. Cluster N: its network namespace (a
    # `lo` with the node addresses, and the veth pair to the host) and the host's NAT rules.
    local n
    if [ -n "$NETNS" ]; then
        [ -e "/run/netns/$NETNS" ] || ip netns add "$NETNS" || die "cannot create network namespace $NETNS"
        ip -n "$NETNS" link set lo up
        if ! ip link show "$VETH_HOST" >/dev/null 2>&1; then
            ip link add "$VETH_HOST" type veth peer name "$VETH_NS" netns "$NETNS"
            ip addr add "$TRANSIT_HOST/30" dev "$VETH_HOST"
            ip -n "$NETNS" addr add "$TRANSIT_NS/30" dev "$VETH_NS"
        fi
        # Answers to the host's 127.0.0.1 come in on the veth: accepted there (and only there).
        echo 1 > "/proc/sys/net/ipv4/conf/$VETH_HOST/route_localnet"
        ip link set "$VETH_HOST" up
        ip -n "$NETNS" link set "$VETH_NS" up
        host_nat -A
    fi
    for n in $(seq "$NODES"); do
        case "$(in_ns ip addr show dev lo)" in
            *" $NODE_NET.$n/32 "*) ;;
            *) in_ns ip addr add "$NODE_NET.$n/32" dev lo ;;
        esac
    done
}

remove_network() {
    local link n
    if [ -n "$NETNS" ]; then
        # Everything of the cluster's own (bridges, veths, iptables rules, conntrack) goes
        # with its namespace; on the host only the veth pair and the two NAT rules were its.
        host_nat -D
        ip link del "$VETH_HOST" 2>/dev/null || true
        ip netns del "$NETNS" 2>/dev/null || true
        conntrack -D -d "$HOST_ADDR" >/dev/null 2>&1 || true
        return 0
    fi
    # A pod's veth goes with its network namespace; any left on a bridge goes first, then
    # the bridges.
    for link in $(ip -o link show 2>/dev/null | awk -v m=" master $LINK_PREFIX-" 'index($0, m) {sub(/@.*/, "", $2); sub(/:$/, "", $2); print $2}'); do
        ip link del "$link" 2>/dev/null || true
    done
    for link in $(ip -o link show 2>/dev/null | awk -F': ' -v p="$LINK_PREFIX-" 'index($2, p) == 1 {print $2}'); do
        ip link del "${link%@*}" 2>/dev/null || true
    done
    for n in $(seq "$NODES"); do ip addr del "$NODE_NET.$n/32" dev lo 2>/dev/null || true; done
    remove_iptables
}

# --------------------------------------------------------------------------- control plane

control_plane() {
    mkdir -p "$DIR/etcd"
    spawn etcd etcd --data-dir "$DIR/etcd" --name rolloutlab \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
        --initial-cluster "rolloutlab=http://127.0.0.1:$((ETCD_PORT + 1))" --unsafe-no-fsync
    wait_for etcd 30 etcd in_ns curl -sf "http://127.0.0.1:$ETCD_PORT/health"
    spawn kube-apiserver "$BIN/kube-apiserver" \
        --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address="$API_BIND" --secure-port="$API_PORT" \
        --advertise-address="$API_BIND" \
        --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" \
        --client-ca-file="$DIR/pki/ca.crt" --token-auth-file="$DIR/pki/tokens.csv" --anonymous-auth=false \
        --kubelet-client-certificate="$DIR/pki/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$DIR/pki/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types=InternalIP \
        --authorization-mode=Node,RBAC --service-cluster-ip-range="$SERVICE_CIDR" \
        --service-account-key-file="$DIR/pki/sa.key" --service-account-signing-key-file="$DIR/pki/sa.key" \
        --service-account-issuer=https://kubernetes.default.svc \
        --enable-admission-plugins=NodeRestriction --disable-admission-plugins=ServiceAccount \
        --enable-priority-and-fairness=false --service-node-port-range=30000-32767 --v=0
    wait_for kube-apiserver 90 kube-apiserver api /readyz
    spawn kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig="$DIR/controller-manager.kubeconfig" --leader-elect=false --port=0 --secure-port=0 \
        --controllers=deployment,replicaset,endpoint,endpointslice,garbagecollector,namespace,nodelifecycle,podgc,disruption,ttl \
        --use-service-account-credentials=false --node-monitor-grace-period=16s --v=0
    spawn kube-scheduler "$BIN/kube-scheduler" \
        --kubeconfig="$DIR/scheduler.kubeconfig" --leader-elect=false --port=0 --secure-port=0 --v=0
}

# --------------------------------------------------------------------------- nodes

containerd_config() {
    local n="$1" d="$DIR/nodes/$n"
    mkdir -p "$d/cni/net.d" "$d/containerd"
    write_config "$d/containerd/config.toml" <<EOF
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
[grpc]
  address = "$d/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Network namespaces under the node's own state folder, so \`down\` finds every one.
  netns_mounts_under_state_dir = true
  # This sandbox lacks CAP_SYS_RESOURCE: a negative oom_score_adj (the kubelet asks -998
  # for sandboxes) makes runc fail ("can't get final child's PID from pipe"). Restricted,
  # containers get no lower a score than containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$d/cni/net.d"
EOF
    write_config "$d/cni/net.d/10-rolloutlab.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$NAME_PREFIX-$n",
  "plugins": [
    {"type": "bridge", "bridge": "$LINK_PREFIX-cni$n", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$d/cni/ipam",
              "ranges": [[{"subnet": "$POD_NET.$n.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

kubelet_config() {
    local n="$1" d="$DIR/nodes/$n"
    # Several kubelets on one machine: distinct ports, root dirs and cgroup roots. Eviction and
    # image GC thresholds are set low so a full disk on a shared machine does not evict the
    # tests' pods or delete the imported images (there is no registry to pull them back).
    write_config "$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: "$NODE_NET.$n"
port: $((10250 + 10 * (n - 1) + PORT_OFFSET))
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $((10248 + 10 * (n - 1) + PORT_OFFSET))
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$DIR/pki/ca.crt"}
authorization: {mode: AlwaysAllow}
tlsCertFile: "$DIR/pki/node-$n.crt"
tlsPrivateKeyFile: "$DIR/pki/node-$n.key"
cgroupDriver: cgroupfs
cgroupRoot: /$(node_name "$n")
cgroupsPerQOS: true
enforceNodeAllocatable: []
failSwapOn: false
protectKernelDefaults: false
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
nodeStatusUpdateFrequency: 4s
syncFrequency: 5s
fileCheckFrequency: 5s
resolvConf: /etc/resolv.conf
EOF
}

cgroup_root() {
    # The kubelet wants its --cgroup-root to exist in every v1 hierarchy (cgroupfs driver,
    # no systemd to make it); a new cpuset starts empty and must inherit its parent's cpus
    # and memory nodes before anything can run in it.
    local n="$1" mount dir
    for mount in $(awk '$3 == "cgroup" {print $2}' /proc/self/mounts); do
        dir="$mount/$(node_name "$n")"
        mkdir -p "$dir" || die "cannot create cgroup $dir"
        if [ -f "$mount/cpuset.cpus" ]; then
            [ -s "$dir/cpuset.cpus" ] && [ -n "$(cat "$dir/cpuset.cpus")" ] || cat "$mount/cpuset.cpus" > "$dir/cpuset.cpus"
            [ -s "$dir/cpuset.mems" ] && [ -n "$(cat "$dir/cpuset.mems")" ] || cat "$mount/cpuset.mems" > "$dir/cpuset.mems"
        fi
    done
}

start_node() {
    local n="$1" d="$DIR/nodes/$n" name
    name="$(node_name "$n")"
    containerd_config "$n"
    kubelet_config "$n"
    cgroup_root "$n"
    spawn "containerd-$n" containerd --config "$d/containerd/config.toml"
    wait_for "containerd of node $n" 30 "containerd-$n" ctr --address "$d/containerd/containerd.sock" version
    "$HERE/kube-images.sh" import "$d/containerd/containerd.sock" >&2 \
        || die "importing the images into node $n's containerd failed"
    spawn "kubelet-$n" "$BIN/kubelet" --config="$d/kubelet.yaml" --kubeconfig="$DIR/node-$n.kubeconfig" \
        --container-runtime=remote --container-runtime-endpoint="unix://$d/containerd/containerd.sock" \
        --hostname-override="$name" --node-ip="$NODE_NET.$n" --root-dir="$d/kubelet" --cert-dir="$d/kubelet/pki" \
        --node-labels="topology.kubernetes.io/zone=$(echo abcdefghij | cut -c"$n")" --v=1
}

kube_proxy() {
    # In its own namespace a cluster's NodePorts answer on its end of the veth pair too:
    # that is where the host's connections to $HOST_ADDR arrive.
    local node_port_addresses='"127.0.0.0/8"'
    [ -z "$NETNS" ] || node_port_addresses="$node_port_addresses, \"$TRANSIT_NS/32\""
    write_config "$DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$DIR/kube-proxy.kubeconfig"}
mode: iptables
hostnameOverride: $(node_name 1)
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$((10256 + PORT_OFFSET))
metricsBindAddress: 127.0.0.1:$((10249 + PORT_OFFSET))
nodePortAddresses: [$node_port_addresses]
clusterCIDR: "$POD_NET.0.0/16"
# 0 = leave the host's conntrack table size and timeouts as they are
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
    spawn kube-proxy "$BIN/kube-proxy" --config="$DIR/kube-proxy.yaml" --v=0
}

node_ready() {
    local node; node="$(api "/api/v1/nodes/$1")" || return 1
    grep -A2 '"type": "Ready"' <<< "$node" | grep -q '"status": "True"'
}

publish_image() {
    # The Kubernetes backend reads which demo image the nodes hold from here (live/kube_objects.py).
    local body="{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"rolloutlab-demo-image\"}, \"data\": {\"image\": \"$DEMO_IMAGE\"}}"
    wait_for "namespace kube-public" 30 kube-apiserver api /api/v1/namespaces/kube-public
    api /api/v1/namespaces/kube-public/configmaps -X POST -H 'Content-Type: application/json' -d "$body" >/dev/null \
        || api /api/v1/namespaces/kube-public/configmaps/rolloutlab-demo-image -X PUT -H 'Content-Type: application/json' -d "$body" >/dev/null \
        || die "could not publish the demo image's name in kube-public"
}

# --------------------------------------------------------------------------- the runner's identity

RUNNER_NAMESPACE=rolloutlab   # the namespace live/rbac.yaml is written for
RUNNER_SA=rolloutlab-runner
RUNNER_TOKEN_SECONDS=604800   # a week: a developer's cluster stays up for days; `up` renews it

rbac_url() {
    # rbac_url KIND NAMESPACE: where objects of KIND live (NAMESPACE empty: cluster-scoped).
    local group=/apis/rbac.authorization.k8s.io/v1 ns="${2:+/namespaces/$2}"
    case "$1" in
        ServiceAccount) echo "/api/v1$ns/serviceaccounts" ;;
        Role) echo "$group$ns/roles" ;;
        RoleBinding) echo "$group$ns/rolebindings" ;;
        ClusterRole) echo "$group/clusterroles" ;;
        ClusterRoleBinding) echo "$group/clusterrolebindings" ;;
        *) die "live/rbac.yaml: no rule here to apply a $1" ;;
    esac
}

api_code() {
    # api_code PATH CURL_ARGS...: the HTTP status of one admin request (api() only says ok or not).
    curl -s -o /dev/null -w '%{http_code}' --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $TOKEN" \
        "https://$HOST_ADDR:$API_PORT$1" "${@:2}"
}

apply_yaml() {
    # apply_yaml FILE: create the one object of FILE, or replace it when it exists (the API
    # server reads YAML itself: no kubectl here).
    local kind name ns url code
    kind="$(awk '/^kind:/ {print $2; exit}' "$1")"
    name="$(awk '/^  name:/ {print $2; exit}' "$1")"
    ns="$(awk '/^  namespace:/ {print $2; exit}' "$1")"
    url="$(rbac_url "$kind" "$ns")"
    code="$(api_code "$url" -X POST -H 'Content-Type: application/yaml' --data-binary "@$1")"
    if [ "$code" = 409 ]; then
        code="$(api_code "$url/$name" -X PUT -H 'Content-Type: application/yaml' --data-binary "@$1")"
    fi
    case "$code" in 2??) ;; *) die "applying $kind $name of live/rbac.yaml: HTTP $code" ;; esac
}

test_reader() {
    # This cluster is the tests': they check the runner's work by reading what the runner
    # itself never reads (endpoints, events, single pods, nodes, the namespaces). Read-only,
    # bound to the runner's ServiceAccount here only, never shipped in live/rbac.yaml; what
    # tests write beyond the runner's rules (bare pods, CRDs) they do with the admin client.
    write_config "$DIR/rbac/test-reader.yaml" <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: rolloutlab-test-reader
  labels: {app.kubernetes.io/managed-by: rolloutlab}
rules:
  - apiGroups: [""]
    resources: [endpoints, events, pods, pods/log, nodes, namespaces, services, configmaps]
    verbs: [get, list, watch]
  - apiGroups: [apps]
    resources: [deployments, replicasets]
    verbs: [get, list, watch]
EOF
    write_config "$DIR/rbac/test-reader-binding.yaml" <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: rolloutlab-test-reader
  labels: {app.kubernetes.io/managed-by: rolloutlab}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rolloutlab-test-reader}
subjects:
  - {kind: ServiceAccount, name: $RUNNER_SA, namespace: $RUNNER_NAMESPACE}
EOF
    apply_yaml "$DIR/rbac/test-reader.yaml"
    apply_yaml "$DIR/rbac/test-reader-binding.yaml"
}

runner_identity() {
    # The runner's ServiceAccount and rules (live/rbac.yaml, every part: the kube tests run
    # `validate --backend kube`, a namespace per run), applied as the admin; then a token for
    # the ServiceAccount from the TokenRequest API (signed with pki/sa.key, the API server's
    # --service-account-signing-key-file) and runner.kubeconfig, which authenticates as it.
    # The RBAC authorizer (--authorization-mode=Node,RBAC) then allows only those rules.
    local manifest="$HERE/../live/rbac.yaml" doc body answer token
    [ -f "$manifest" ] || die "missing $manifest (the runner's RBAC manifest)"
    api_code /api/v1/namespaces -X POST -H 'Content-Type: application/json' \
        -d "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"$RUNNER_NAMESPACE\"}}" >/dev/null
    wait_for "namespace $RUNNER_NAMESPACE" 30 kube-apiserver api "/api/v1/namespaces/$RUNNER_NAMESPACE"
    rm -rf "$DIR/rbac"; mkdir -p "$DIR/rbac"
    # One file per YAML document (comments and all: the API server ignores them).
    awk -v d="$DIR/rbac" '/^---$/ {n++; next} n > 0 {print > sprintf("%s/%02d.yaml", d, n)}' "$manifest"
    for doc in "$DIR"/rbac/*.yaml; do apply_yaml "$doc"; done
    test_reader
    body="{\"apiVersion\": \"authentication.k8s.io/v1\", \"kind\": \"TokenRequest\", \"spec\": {\"expirationSeconds\": $RUNNER_TOKEN_SECONDS}}"
    answer="$(api "/api/v1/namespaces/$RUNNER_NAMESPACE/serviceaccounts/$RUNNER_SA/token" -X POST \
        -H 'Content-Type: application/json' -d "$body")" || die "the TokenRequest for $RUNNER_SA was refused"
    token="$(grep -o '"token": *"[^"]*"' <<< "$answer" | cut -d'"' -f4)"
    [ -n "$token" ] || die "the TokenRequest answer for $RUNNER_SA holds no token"
    (umask 077; echo "$token" > "$DIR/pki/runner.token")
    local name=rolloutlab; [ "$CLUSTER" = 1 ] || name="rolloutlab-$CLUSTER"
    (umask 077; cat > "$DIR/runner.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: $name, cluster: {server: "https://$HOST_ADDR:$API_PORT", certificate-authority: "$DIR/pki/ca.crt"}}]
users: [{name: $RUNNER_SA, user: {token: "$token"}}]
contexts: [{name: $name, context: {cluster: $name, user: $RUNNER_SA, namespace: $RUNNER_NAMESPACE}}]
current-context: $name
EOF
    )
}

write_env() {
    # NODE_PORT_ADDRESS: where the host reaches the cluster's NodePorts (the API server's
    # host too: a runner given only a kubeconfig context finds it in the server URL).
    # KUBECONFIG and TOKEN: the runner's ServiceAccount (what tests and runs use); the
    # ADMIN_ ones: system:masters, for the setup a platform team does (and `down`).
    cat > "$DIR/env" <<EOF
KUBECONFIG=$DIR/runner.kubeconfig
API_URL=https://$HOST_ADDR:$API_PORT
CA_FILE=$DIR/pki/ca.crt
TOKEN=$(cat "$DIR/pki/runner.token")
RUNNER_NAMESPACE=$RUNNER_NAMESPACE
ADMIN_KUBECONFIG=$DIR/kubeconfig
ADMIN_TOKEN=$TOKEN
NODES="$(for n in $(seq "$NODES"); do printf '%s ' "$(node_name "$n")"; done | sed 's/ $//')"
CLUSTER=$CLUSTER
NODE_PORT_ADDRESS=$HOST_ADDR
NETNS=$NETNS
$("$HERE/kube-images.sh" names)
EOF
}

up() {
    preflight
    mkdir -p "$DIR/run" "$DIR/logs" "$DIR/nodes"
    local t0; t0=$(date +%s)
    "$HERE/kube-images.sh" build >&2 || die "building the pause and demo images failed"
    eval "$("$HERE/kube-images.sh" names)"
    pki
    network
    set_sysctls
    control_plane
    local n
    for n in $(seq "$NODES"); do start_node "$n"; done
    kube_proxy
    publish_image
    runner_identity
    for n in $(seq "$NODES"); do
        wait_for "node $(node_name "$n") Ready" 90 "kubelet-$n" node_ready "$(node_name "$n")"
    done
    wait_for kube-proxy 30 kube-proxy in_ns curl -sf "http://127.0.0.1:$((10256 + PORT_OFFSET))/healthz"
    running kube-scheduler || die "kube-scheduler exited: $(tail -5 "$DIR/logs/kube-scheduler.log")"
    running kube-controller-manager || die "kube-controller-manager exited: $(tail -5 "$DIR/logs/kube-controller-manager.log")"
    write_env
    say "cluster $CLUSTER up in $(( $(date +%s) - t0 ))s: $NODES node(s) Ready; env: $DIR/env"
    cat "$DIR/env"
}

status() {
    [ -f "$DIR/env" ] || return 1
    local n
    for name in etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do running "$name" || return 1; done
    for n in $(seq "$NODES"); do
        running "containerd-$n" && running "kubelet-$n" && node_ready "$(node_name "$n")" || return 1
    done
}

# --------------------------------------------------------------------------- down

remove_pods() {
    # Pods are torn down by their kubelet (CRI StopPodSandbox runs the CNI DEL that removes
    # the veth, the IP lease and the portmap rules). Controllers stop first so nothing is
    # recreated.
    stop kube-controller-manager
    stop kube-scheduler
    running kube-apiserver || return 0
    local ns
    for ns in $(api /api/v1/namespaces | grep -o '"name": "[^"]*"' | cut -d'"' -f4); do
        api "/api/v1/namespaces/$ns/pods?gracePeriodSeconds=0" -X DELETE >/dev/null || true
    done
    local n deadline=$(( $(date +%s) + 30 ))
    for n in $(seq "$NODES"); do
        running "containerd-$n" || continue
        while [ -n "$(ctr --address "$DIR/nodes/$n/containerd/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null)" ]; do
            [ "$(date +%s)" -ge "$deadline" ] && { say "node $n: containers still running after 30s; killing them"; break; }
            sleep 0.5
        done
    done
}

kill_leftover_tasks() {
    local n sock task
    for n in $(seq "$NODES"); do
        sock="$DIR/nodes/$n/containerd/containerd.sock"
        running "containerd-$n" || continue
        for task in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
            ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
        done
    done
}

unmount_all() {
    # Deepest first: the pods' volumes, the containers' rootfs, the network namespaces.
    local m
    for m in $(awk -v d="$DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
    done
}

remove_iptables() {
    # kube-proxy's own cleanup first, then any rule of the kubelet's, the CNI plugins' or
    # kube-proxy's that is left (chains KUBE-*, CNI-*), table by table.
    [ -n "${BIN:-}" ] && [ -x "$BIN/kube-proxy" ] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
    local table chain rule rules
    for table in filter nat mangle; do
        # Jumps into those chains from the built-in ones (POSTROUTING, FORWARD, ...) first.
        rules="$(iptables -t "$table" -S 2>/dev/null | grep -E '^-A ' | grep -vE '^-A (KUBE|CNI)-' \
            | grep -E -- 'KUBE-|CNI-' || true)"
        while IFS= read -r rule; do
            [ -n "$rule" ] || continue
            eval "iptables -t $table ${rule/-A/-D}" 2>/dev/null || say "could not remove iptables rule: $rule"
        done <<< "$rules"
        for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (KUBE|CNI)-/{print $2}'); do
            iptables -t "$table" -F "$chain" 2>/dev/null || true
        done
        for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (KUBE|CNI)-/{print $2}'); do
            iptables -t "$table" -X "$chain" 2>/dev/null || say "could not remove iptables chain $chain"
        done
    done
}

remove_cgroups() {
    local mount n
    # v1 hierarchies and the hybrid layout's v2 one (the kubelet makes its tree there too)
    for mount in $(awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/self/mounts); do
        for n in $(seq "$NODES"); do
            [ -d "$mount/$(node_name "$n")" ] || continue
            find "$mount/$(node_name "$n")" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        done
    done
}

leftovers() {
    # What `down` promises to leave nothing of: processes, mounts, interfaces, addresses,
    # iptables rules, the network namespace, cgroups (of this cluster: another one may be up).
    # Each listing is read whole before it is searched: `cmd | grep -q` under pipefail can
    # fail on SIGPIPE and hide a leftover.
    local found=0 n mounts links addresses rules namespaces
    if pgrep -f "$DIR/" >/dev/null; then say "left running: $(pgrep -af "$DIR/" | head -5)"; found=1; fi
    mounts="$(awk -v d="$DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts)"
    if [ -n "$mounts" ]; then say "left mounted: $(head -3 <<< "$mounts")"; found=1; fi
    links="$(ip -br link)"
    if grep -qF "$LINK_PREFIX-" <<< "$links"; then say "left interfaces: $(grep -F "$LINK_PREFIX-" <<< "$links" | head -3)"; found=1; fi
    rules="$(iptables-save 2>/dev/null)"
    if [ -n "$NETNS" ]; then
        namespaces="$(ip netns list)"
        if grep -qw "$NETNS" <<< "$namespaces"; then say "left network namespace $NETNS"; found=1; fi
        if grep -qF "rolloutlab-kube cluster $CLUSTER\"" <<< "$rules"; then say "left the host's NAT rules of cluster $CLUSTER"; found=1; fi
    else
        addresses="$(ip addr show dev lo)"
        if grep -q " $NODE_NET\." <<< "$addresses"; then say "left node addresses on lo"; found=1; fi
        if grep -qE 'KUBE-|CNI-' <<< "$rules"; then say "left iptables rules: $(grep -cE 'KUBE-|CNI-' <<< "$rules")"; found=1; fi
    fi
    for n in $(seq "$NODES"); do
        if ls -d /sys/fs/cgroup/*/"$(node_name "$n")" >/dev/null 2>&1; then say "left cgroups of node $n"; found=1; fi
    done
    return "$found"
}

down() {
    [ "$(id -u)" = 0 ] || die "needs root"
    BIN="$("$HERE/kube-control-plane.sh" path 2>/dev/null)" || BIN=""
    if [ -d "$DIR/run" ]; then
        remove_pods
        kill_leftover_tasks
        stop kube-proxy
        local n
        for n in $(seq "$NODES"); do stop "kubelet-$n"; done
        for n in $(seq "$NODES"); do stop "containerd-$n"; done
        stop kube-apiserver
        stop etcd
    fi
    # Shims outlive containerd by design; theirs are ours to end.
    pkill -KILL -f "containerd-shim-runc-v2 -namespace k8s.io -id .* -address $DIR/" 2>/dev/null || true
    unmount_all
    remove_network
    remove_cgroups
    host_locked release_sysctls
    if leftovers; then
        rm -rf "$DIR"
        say "down: cluster $CLUSTER: nothing left behind"
    else
        die "down: cluster $CLUSTER: some things were left behind (see above); $DIR kept for inspection"
    fi
}

# --------------------------------------------------------------------------- several clusters

present() {
    # Whether cluster $CLUSTER has anything on this machine (up, or killed and not taken down).
    [ -d "$DIR" ] || { [ -n "$NETNS" ] && [ -e "/run/netns/$NETNS" ]; }
}

down_all() {
    # Every cluster present, the highest first (cluster 1, the one the others were added
    # to, goes last), each by a `down` of its own; fails if any failed.
    local c failed=0
    for c in $(seq "$MAX_CLUSTERS" -1 1); do
        select_cluster "$c"
        present || continue
        "$HERE/$(basename "${BASH_SOURCE[0]}")" down --cluster "$c" || failed=1
    done
    return "$failed"
}

status_all() {
    # A line per cluster present; exit 0 when every one of them is up.
    local c failed=0
    for c in $(seq 1 "$MAX_CLUSTERS"); do
        select_cluster "$c"
        present || continue
        if status 2>/dev/null; then echo "cluster $CLUSTER: up, API $(grep ^API_URL= "$DIR/env" | cut -d= -f2)"
        else echo "cluster $CLUSTER: not up"; failed=1; fi
    done
    return "$failed"
}

merged_kubeconfig() {
    # One kubeconfig for several clusters, a context per cluster named after its region, so
    # a runner switches region by context, as the runner's ServiceAccount of each (--admin:
    # as each cluster's admin). Every cluster named must be up.
    local -a ids names
    IFS=, read -r -a ids <<< "$CLUSTERS"
    [ -n "$CONTEXTS" ] || CONTEXTS="$(for c in "${ids[@]}"; do printf 'cluster-%s,' "$c"; done | sed 's/,$//')"
    IFS=, read -r -a names <<< "$CONTEXTS"
    [ "${#ids[@]}" -gt 0 ] || usage "kubeconfig needs --clusters N[,N...]"
    [ "${#ids[@]}" = "${#names[@]}" ] || usage "--clusters names ${#ids[@]} cluster(s) but --contexts ${#names[@]}"
    local i c name clusters="" users="" contexts="" seen=" "
    for i in "${!ids[@]}"; do
        c="${ids[$i]}"; name="${names[$i]}"
        valid_cluster "$c" || usage "--clusters: '$c' is not a cluster number (1-$MAX_CLUSTERS)"
        [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || usage "--contexts: '$name' is not a context name"
        [[ "$seen" != *" $name "* ]] || usage "--contexts: '$name' twice"
        seen="$seen$name "
        select_cluster "$c"
        [ -f "$DIR/env" ] || die "cluster $c is not up (no $DIR/env): scripts/kube-cluster.sh up --cluster $c"
        clusters="$clusters- name: $name
  cluster: {server: \"https://$HOST_ADDR:$API_PORT\", certificate-authority: \"$DIR/pki/ca.crt\"}
"
        if [ "$ADMIN" = 1 ]; then
            users="$users- name: $name-admin
  user: {client-certificate: \"$DIR/pki/admin.crt\", client-key: \"$DIR/pki/admin.key\"}
"
            contexts="$contexts- name: $name
  context: {cluster: $name, user: $name-admin}
"
        else
            [ -s "$DIR/pki/runner.token" ] || die "cluster $c has no runner token: scripts/kube-cluster.sh up --cluster $c"
            users="$users- name: $name-runner
  user: {token: \"$(cat "$DIR/pki/runner.token")\"}
"
            contexts="$contexts- name: $name
  context: {cluster: $name, user: $name-runner, namespace: $RUNNER_NAMESPACE}
"
        fi
    done
    local text
    text="$(printf 'apiVersion: v1\nkind: Config\nclusters:\n%susers:\n%scontexts:\n%scurrent-context: %s\n' \
        "$clusters" "$users" "$contexts" "${names[0]}")"
    if [ -n "$OUTPUT" ]; then
        (umask 077; printf '%s\n' "$text" > "$OUTPUT") || die "cannot write $OUTPUT"
        say "kubeconfig with contexts ${CONTEXTS//,/, } written to $OUTPUT"
    else
        printf '%s\n' "$text"
    fi
}

settings() {
    # What cluster $CLUSTER uses on this machine; nothing is started or read.
    cat <<EOF
CLUSTER=$CLUSTER
DIR=$DIR
API_URL=https://$HOST_ADDR:$API_PORT
API_BIND=$API_BIND
ETCD_PORT=$ETCD_PORT
NODE_PORT_ADDRESS=$HOST_ADDR
SERVICE_CIDR=$SERVICE_CIDR
NODE_ADDRESSES=$(for n in $(seq "$NODES"); do printf '%s ' "$NODE_NET.$n"; done | sed 's/ $//')
POD_CIDRS=$(for n in $(seq "$NODES"); do printf '%s ' "$POD_NET.$n.0/24"; done | sed 's/ $//')
BRIDGES=$(for n in $(seq "$NODES"); do printf '%s ' "$LINK_PREFIX-cni$n"; done | sed 's/ $//')
NODES=$(for n in $(seq "$NODES"); do printf '%s ' "$(node_name "$n")"; done | sed 's/ $//')
KUBELET_PORTS=$(for n in $(seq "$NODES"); do printf '%s ' "$((10250 + 10 * (n - 1) + PORT_OFFSET)) $((10248 + 10 * (n - 1) + PORT_OFFSET))"; done | sed 's/ $//')
KUBE_PROXY_PORTS=$((10256 + PORT_OFFSET)) $((10249 + PORT_OFFSET))
CONTAINERD_SOCKETS=$(for n in $(seq "$NODES"); do printf '%s ' "$DIR/nodes/$n/containerd/containerd.sock"; done | sed 's/ $//')
NETNS=$NETNS
EOF
}

# --------------------------------------------------------------------------- command line

usage() {
    [ -z "${1:-}" ] || echo "kube-cluster: $1" >&2
    cat >&2 <<EOF
usage: $0 up|down|status|env|settings [--cluster N]
       $0 down|status --all
       $0 kubeconfig --clusters N[,N...] [--contexts NAME[,NAME...]] [--admin] [-o FILE]
EOF
    exit 2
}

valid_cluster() { [[ "$1" =~ ^[1-9]$ ]] && [ "$1" -le "$MAX_CLUSTERS" ]; }

COMMAND=""; ALL=0; CLUSTERS=""; CONTEXTS=""; OUTPUT=""; ADMIN=0
CHOSEN="${ROLLOUTLAB_KUBE_CLUSTER:-1}"
while [ $# -gt 0 ]; do
    case "$1" in
        up|down|status|env|settings|kubeconfig) [ -z "$COMMAND" ] || usage "one command at a time"; COMMAND="$1" ;;
        --cluster) [ $# -ge 2 ] || usage "--cluster needs a number"; CHOSEN="$2"; shift ;;
        --cluster=*) CHOSEN="${1#*=}" ;;
        --all) ALL=1 ;;
        --admin) ADMIN=1 ;;
        --clusters) [ $# -ge 2 ] || usage "--clusters needs a list"; CLUSTERS="$2"; shift ;;
        --contexts) [ $# -ge 2 ] || usage "--contexts needs a list"; CONTEXTS="$2"; shift ;;
        -o|--output) [ $# -ge 2 ] || usage "$1 needs a file"; OUTPUT="$2"; shift ;;
        *) usage "unknown argument '$1'" ;;
    esac
    shift
done
valid_cluster "$CHOSEN" || usage "no cluster '$CHOSEN' (clusters are 1-$MAX_CLUSTERS)"
select_cluster "$CHOSEN"
[ "$ALL" = 0 ] || [ "$COMMAND" = down ] || [ "$COMMAND" = status ] || usage "--all goes with down or status"

case "$COMMAND" in
    up)
        if status 2>/dev/null; then
            # The RBAC objects as live/rbac.yaml says now, and a fresh runner token.
            runner_identity; write_env
            say "cluster $CLUSTER already up"; cat "$DIR/env"
        else
            # What a cluster whose processes were killed (not taken down) left behind
            # (mounts, bridges, iptables rules, stale pid files) goes first.
            if present; then say "a previous cluster $CLUSTER in $DIR is not running: taking it down first"; down; fi
            up
        fi ;;
    down)
        if [ "$ALL" = 1 ]; then down_all; else down; fi ;;
    status)
        if [ "$ALL" = 1 ]; then status_all; else status; fi ;;
    env) [ -f "$DIR/env" ] && cat "$DIR/env" || die "cluster $CLUSTER is not up (no $DIR/env)" ;;
    settings) settings ;;
    kubeconfig) merged_kubeconfig ;;
    *) usage ;;
esac
