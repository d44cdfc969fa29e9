"""The discrete-event world (SimPy) that drives the shared controller: traffic, pods,
faults, migrations and Monte Carlo comparisons. Built by the simulator issue."""
