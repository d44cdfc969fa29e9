"""Live runs of the shared controller: real pods (Kubernetes, or local processes behind
HAProxy), real traffic, injected faults, and the same ``reconcile`` as the simulator.

What the other packages may use, by module:

- ``runner``: the real-time ``Runner``, the ``Backend`` and ``MetricsSource`` protocols,
  ``ReleasePlan`` / ``LiveVersion``, the persisted ``RunnerState``, ``Waiting`` (what a
  run waits for, for progress displays);
- ``session``: one live run of a scenario (``make_plan``, ``run_live``, its results row
  and timeline), ``open_backend`` by name; the scenario's faults and defects as chaos
  calls in ``scenario_faults``, a run with migrations in ``session_migration``;
- ``memory``: ``MemoryBackend`` / ``MemoryClock`` / ``MemoryMetrics``, the in-memory test
  double of a backend (as httpx ships ``MockTransport``);
- ``local``: ``LocalBackend`` (processes behind HAProxy; its parts: ``local_kubelet``,
  ``local_pods``, ``local_state``, ``calibration``, ``haproxy``; nodes, zones and their
  loss in ``local_chaos``; the services the demo calls in ``local_dependencies``);
- ``kube``: ``KubeBackend`` (its parts: ``kube_objects``, ``kube_chaos``, ``kube_metrics``);
- ``loadgen``: the open-loop ``LoadGenerator`` (each request's ``RequestResult`` is in
  ``request_results``);
- ``demo_service``: the service the live runs deploy (standard library + prometheus-client;
  its fault model and settings in ``demo_faults``, its database work in ``demo_database``);
- ``prometheus``: a real Prometheus server and its HTTP API; ``prometheus_metrics``: the
  live metrics source that answers analysis in PromQL through it;
- ``postgres`` / ``migrations_live``: the throwaway PostgreSQL cluster and the scenario's
  migrations as real DDL;
- ``kube_rbac``: the ServiceAccount, Role and bindings the Kubernetes runner needs.
"""
