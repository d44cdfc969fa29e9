"""Live runs of the shared controller: the Kubernetes backend and the local-process
backend behind HAProxy, with real traffic and injected faults. Built by the live issues."""
