"""The Kubernetes runner's least privilege: ``live/rbac.yaml`` rendered for a namespace.

``live/rbac.yaml`` is the one list of what the runner may do (each rule with the code that
needs it; docs/security.md gives it as a table). This module reads it, puts the runner in
the namespace you name and keeps the parts you ask for (``RbacPart``), and can apply the
result with an administrator's client (a platform team's one-time setup; the runner never
applies RBAC itself).

    python -m rolloutlab.live.kube_rbac --namespace team-a > rbac.yaml      # runner + demo-image + node-loss
    python -m rolloutlab.live.kube_rbac --namespace ci --part namespace-per-run ...

Binding names outside the runner's namespace (kube-public, cluster-scoped) end in the
namespace, so runners of several namespaces each get their own binding.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rolloutlab.errors import KubeError

MANIFEST = Path(__file__).with_name("rbac.yaml")
PART_LABEL = "rolloutlab.io/rbac-part"
SERVICE_ACCOUNT = "rolloutlab-runner"
_DEFAULT_NAMESPACE = "rolloutlab"  # the namespace live/rbac.yaml is written for
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a namespace name (RFC 1123 label)


class RbacPart(str, Enum):
    """The parts of ``live/rbac.yaml`` (its objects' ``rolloutlab.io/rbac-part`` label)."""

    RUNNER = "runner"  # ServiceAccount, the rules, their RoleBinding in the runner's namespace
    DEMO_IMAGE = "demo-image"  # read kube-public/rolloutlab-demo-image
    NODE_LOSS = "node-loss"  # cordon / uncordon nodes (node_loss faults)
    NAMESPACE_PER_RUN = "namespace-per-run"  # validate --backend kube: broad, see the manifest


DEFAULT_PARTS = (RbacPart.RUNNER, RbacPart.DEMO_IMAGE, RbacPart.NODE_LOSS)


def load_manifest() -> list[dict[str, Any]]:
    """Every object of ``live/rbac.yaml``, as written (namespace ``rolloutlab``)."""
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def render_rbac(namespace: str = _DEFAULT_NAMESPACE, parts: Iterable[RbacPart | str] = DEFAULT_PARTS
                ) -> list[dict[str, Any]]:
    """The manifest's objects of ``parts`` with the runner's ServiceAccount and RoleBinding in
    ``namespace``; ``KubeError`` for a name Kubernetes would refuse."""
    if not _NAME.match(namespace):
        raise KubeError(f"namespace {namespace!r}: not a Kubernetes namespace name (lower-case letters, digits, "
                        "'-', at most 63)")
    wanted = {RbacPart(p) for p in parts}
    out = []
    for doc in load_manifest():
        if RbacPart(doc["metadata"]["labels"][PART_LABEL]) not in wanted:
            continue
        doc = copy.deepcopy(doc)
        meta = doc["metadata"]
        if meta.get("namespace") == _DEFAULT_NAMESPACE:
            meta["namespace"] = namespace
        if doc["kind"].endswith("Binding") and meta["name"].endswith(f"-{_DEFAULT_NAMESPACE}"):
            meta["name"] = meta["name"][: -len(_DEFAULT_NAMESPACE)] + namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
        out.append(doc)
    return out


def service_account_user(namespace: str) -> str:
    """The user name the API server gives the runner's ServiceAccount (for access reviews)."""
    return f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"


def apply_rbac(api: client.ApiClient, objects: Iterable[dict[str, Any]]) -> None:
    """Create each object, or replace it when it exists (as an administrator: creating RBAC
    objects needs rights the runner does not have, by design)."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    calls = {
        "ServiceAccount": (core.create_namespaced_service_account, core.replace_namespaced_service_account),
        "Role": (rbac.create_namespaced_role, rbac.replace_namespaced_role),
        "RoleBinding": (rbac.create_namespaced_role_binding, rbac.replace_namespaced_role_binding),
        "ClusterRole": (rbac.create_cluster_role, rbac.replace_cluster_role),
        "ClusterRoleBinding": (rbac.create_cluster_role_binding, rbac.replace_cluster_role_binding),
    }
    for doc in objects:
        create, replace = calls[doc["kind"]]
        name, namespace = doc["metadata"]["name"], doc["metadata"].get("namespace")
        where = (namespace,) if namespace else ()
        try:
            create(*where, doc)
        except ApiException as error:
            if error.status != 409:
                raise KubeError(f"create {doc['kind']} {name}: HTTP {error.status} {error.reason}") from None
            if doc["kind"] != "ServiceAccount":  # a ServiceAccount has nothing of ours to update
                replace(name, *where, doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rolloutlab.live.kube_rbac",
                                     description="Print live/rbac.yaml rendered for a namespace.")
    parser.add_argument("--namespace", default=_DEFAULT_NAMESPACE, help="where the runner works (default: rolloutlab)")
    parser.add_argument("--part", action="append", choices=[p.value for p in RbacPart],
                        help=f"a part to include (repeat; default: {', '.join(p.value for p in DEFAULT_PARTS)})")
    args = parser.parse_args(argv)
    try:
        objects = render_rbac(args.namespace, args.part or DEFAULT_PARTS)
    except KubeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


__all__ = ["DEFAULT_PARTS", "MANIFEST", "RbacPart", "SERVICE_ACCOUNT", "apply_rbac", "load_manifest", "render_rbac",
           "service_account_user"]

if __name__ == "__main__":
    sys.exit(main())
