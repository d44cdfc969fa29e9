"""Test-suite settings shared by every test module."""

import pytest

# Scenario files under fixtures/ fail on purpose: the rolloutlab pytest plugin would
# collect them as tests. The tests that need them run them explicitly.
collect_ignore = ["fixtures"]

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def node_cluster():
    """The real Kubernetes cluster of scripts/kube-cluster.sh, shared by the whole session
    (see tests/kube_cluster.py); started here only if it is not up already."""
    from tests.kube_cluster import node_cluster_or_skip

    cluster = node_cluster_or_skip()
    yield cluster
    cluster.stop()
