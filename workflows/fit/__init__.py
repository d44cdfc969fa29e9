"""``rolloutlab fit``: a team's deployment log (and optionally Prometheus) as a scenario.

What other packages may use:

- ``run_fit`` / ``print_fit`` / ``FitResult`` (``command``): the command.
- ``FittedParameter``, ``MIN_DEPLOYMENTS``, ``MIN_TIMES`` (``parameters``): what is stated
  and the refusal rule.
- ``simulate_history_log`` / ``write_history_log`` (``history_log``): a simulated history as
  a deployment log, to check ``fit`` against a known world.

The estimators are in ``estimators``; what each log column measures in ``from_log``; the
traffic and baseline from Prometheus in ``from_prometheus``; the written YAML in
``scenario_yaml``.
"""

from rolloutlab.workflows.fit.command import FitResult, print_fit, run_fit
from rolloutlab.workflows.fit.history_log import simulate_history_log, write_history_log
from rolloutlab.workflows.fit.parameters import MIN_DEPLOYMENTS, MIN_TIMES, FittedParameter

__all__ = ["FitResult", "FittedParameter", "MIN_DEPLOYMENTS", "MIN_TIMES", "print_fit", "run_fit",
           "simulate_history_log", "write_history_log"]
