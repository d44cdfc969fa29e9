"""scripts/kube-cluster.sh refuses to start on a machine that lacks a part, with a message
naming the part, at once: never a hang, never a half-started cluster. And the clusters it
runs side by side (``--cluster N``) hold nothing in common on the machine: no folder,
port, address, network, bridge or name (its ``settings`` command says them; nothing starts).

These run the script's preflight against a state folder of their own (the running test
cluster, if any, is not touched: its status is read from the default folder only).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "kube-cluster.sh"


def run_up(tmp_path: Path, env: dict[str, str], user: str | None = None) -> subprocess.CompletedProcess:
    argv = [str(SCRIPT), "up"]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={**env, "ROLLOUTLAB_KUBE_DIR": str(tmp_path / "cluster")})


def path_without(tmp_path: Path, missing: str) -> str:
    """A PATH with every tool of the machine's PATH but ``missing``."""
    shadow = tmp_path / "bin"
    shadow.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            target = Path(folder) / name
            if name != missing and not (shadow / name).exists() and os.access(target, os.X_OK):
                (shadow / name).symlink_to(target)
    return str(shadow)


@pytest.mark.skipif(os.geteuid() != 0, reason="the preflight's own root check answers first when not root")
@pytest.mark.parametrize("tool", ["containerd", "runc", "conntrack"])
def test_a_missing_tool_is_named_and_nothing_starts(tmp_path, tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed here at all")
    done = run_up(tmp_path, {**os.environ, "PATH": path_without(tmp_path, tool)})
    assert done.returncode == 1
    assert f"missing '{tool}'" in done.stderr, done.stderr
    assert not (tmp_path / "cluster" / "run").exists()  # refused before anything started


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to another user")
def test_without_root_it_says_so(tmp_path):
    tmp_path.chmod(0o777)
    done = run_up(tmp_path, {"PATH": os.environ["PATH"]}, user="65534")  # nobody
    assert done.returncode == 1
    assert "needs root" in done.stderr, done.stderr


def test_an_unknown_command_is_a_usage_error():
    done = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=10)
    assert done.returncode == 2 and "usage" in done.stderr


# --------------------------------------------------------------------------- several clusters

def script(*args: str, **env: str) -> subprocess.CompletedProcess:
    """The script with the machine's PATH and only the given ROLLOUTLAB_KUBE_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUTLAB_KUBE_")}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=30, env={**clean, **env})


def settings(cluster: int) -> dict[str, str]:
    done = script("settings", "--cluster", str(cluster))
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_cluster_one_keeps_the_addresses_ports_and_names_it_always_had():
    assert settings(1) == {
        "CLUSTER": "1", "DIR": "/tmp/rolloutlab-kube", "API_URL": "https://127.0.0.1:16443", "API_BIND": "127.0.0.1",
        "ETCD_PORT": "16379", "NODE_PORT_ADDRESS": "127.0.0.1", "SERVICE_CIDR": "10.96.0.0/16",
        "NODE_ADDRESSES": "10.243.0.1 10.243.0.2", "POD_CIDRS": "10.244.1.0/24 10.244.2.0/24",
        "BRIDGES": "rlk-cni1 rlk-cni2", "NODES": "rolloutlab-node-1 rolloutlab-node-2",
        "KUBELET_PORTS": "10250 10248 10260 10258", "KUBE_PROXY_PORTS": "10256 10249",
        "CONTAINERD_SOCKETS": "/tmp/rolloutlab-kube/nodes/1/containerd/containerd.sock "
                              "/tmp/rolloutlab-kube/nodes/2/containerd/containerd.sock",
        "NETNS": ""}


def test_no_two_clusters_share_a_folder_port_address_network_bridge_or_name():
    """Every value a cluster holds on the machine is its own (clusters 1, 2 and 9 compared
    word by word); cluster N >= 2 has a network namespace of its own."""
    every = {n: settings(n) for n in (1, 2, 9)}
    for key in every[1]:
        if key == "NETNS":
            continue
        words = {n: set(s[key].split()) for n, s in every.items()}
        for a, b in [(1, 2), (1, 9), (2, 9)]:
            assert not words[a] & words[b], f"{key}: clusters {a} and {b} share {words[a] & words[b]}"
    assert every[2]["NETNS"] == "rolloutlab-kube-2" and every[2]["NODE_PORT_ADDRESS"] == "127.0.0.2"
    assert every[2]["API_URL"].startswith("https://127.0.0.2:")


def test_the_folder_setting_is_a_base_the_other_clusters_add_their_number_to(tmp_path):
    base = str(tmp_path / "kube")
    done = script("settings", "--cluster", "3", ROLLOUTLAB_KUBE_DIR=base)
    assert f"DIR={base}-3\n" in done.stdout
    done = script("settings", ROLLOUTLAB_KUBE_DIR=base, ROLLOUTLAB_KUBE_CLUSTER="2")
    assert f"DIR={base}-2\n" in done.stdout and "CLUSTER=2\n" in done.stdout


@pytest.mark.parametrize("args", [
    ["status", "--cluster", "0"],
    ["status", "--cluster", "10"],
    ["status", "--cluster", "two"],
    ["up", "--all"],
    ["kubeconfig", "--clusters", "1,2", "--contexts", "us-east"],
    ["kubeconfig", "--clusters", "1,2", "--contexts", "us-east,us-east"],
    ["kubeconfig", "--clusters", "1", "--contexts", "us east"],
    ["kubeconfig"],
], ids=["cluster-0", "cluster-10", "cluster-not-a-number", "all-with-up", "fewer-contexts", "context-twice",
        "context-with-a-space", "no-clusters"])
def test_a_wrong_selection_is_a_usage_error_naming_it(args):
    done = script(*args)
    assert done.returncode == 2, done.stderr
    assert "usage" in done.stderr and "kube-cluster: " in done.stderr


def test_a_kubeconfig_of_a_cluster_that_is_not_up_is_refused_naming_it(tmp_path):
    out = tmp_path / "regions"
    done = script("kubeconfig", "--clusters", "1,7", "--contexts", "a,b", "-o", str(out),
                  ROLLOUTLAB_KUBE_DIR=str(tmp_path / "kube"))
    assert done.returncode == 1
    assert "cluster 1 is not up" in done.stderr
    assert not out.exists()


def test_a_regions_kubeconfig_is_the_runners_serviceaccount_unless_admin_is_asked(tmp_path):
    """Region contexts authenticate as each cluster's runner ServiceAccount (its token from
    the TokenRequest API, written by `up`), so region waves run under live/rbac.yaml's rules;
    --admin gives the clusters' admin certificates instead."""
    base = tmp_path / "kube"
    (base / "pki").mkdir(parents=True)
    (base / "env").write_text("CLUSTER=1\n")
    refused = script("kubeconfig", "--clusters", "1", "--contexts", "us-east", ROLLOUTLAB_KUBE_DIR=str(base))
    assert refused.returncode == 1 and "cluster 1 has no runner token" in refused.stderr
    (base / "pki" / "runner.token").write_text("the-runners-token\n")
    runner = script("kubeconfig", "--clusters", "1", "--contexts", "us-east", ROLLOUTLAB_KUBE_DIR=str(base))
    assert runner.returncode == 0, runner.stderr
    assert 'token: "the-runners-token"' in runner.stdout and "namespace: rolloutlab" in runner.stdout
    assert "admin" not in runner.stdout
    admin = script("kubeconfig", "--clusters", "1", "--contexts", "us-east", "--admin", ROLLOUTLAB_KUBE_DIR=str(base))
    assert admin.returncode == 0, admin.stderr
    assert f"{base}/pki/admin.crt" in admin.stdout and "token" not in admin.stdout
