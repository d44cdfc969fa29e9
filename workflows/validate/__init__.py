"""``rolloutlab validate``: does the simulator tell the truth about this scenario?

The same scenario, the same strategy and the same kind of release run twice over: in the
simulator (many seeded runs) and for real (a few runs, real Poisson traffic) on the local
backend (demo-service processes behind HAProxy) or on a Kubernetes cluster (real
containers behind kube-proxy, a namespace per run). Each live value is then checked against
the simulator's *prediction interval* for it (a ``PredictionCheck`` with a
``PredictionVerdict``: inside, outside, or no prediction).

The package, by what each module holds:

- ``metrics``: the judged figures (``ValidatedMetric``), their values in one results row,
  ``Censored`` times (did not end in the window: right-censored at the window's end,
  shown "> window"), the per-step effective weights;
- ``prediction``: the order-statistic prediction interval and prediction set, checking a
  live value against them (pure statistics);
- ``switching``: zero downtime, measured (failed requests caused by routing changes);
- ``calibration``: measured pod start and switch delay, and the re-fitted scenario;
- ``running``: the world both sides see, the simulation and the live runs (acts);
- ``kube_runs``: the live runs on Kubernetes (a namespace per run, pod starts watched);
- ``rendering``: the terminal table, validation.json, the results tables and the report;
- ``library``: ``validate --all``: which library scenarios, with which strategy and release,
  run one after another under one time bound; each one's status (validated, cannot run
  live and why, not started, failed);
- ``library_rendering``: the one table of the library, the coverage of the intervals before
  and after calibration, library.csv/.json/.md and its report;
- ``command``: the ``rolloutlab validate`` command (one scenario, or ``--all``) from loaded
  inputs to an exit status.

Everything that decides is pure (``compute_*`` / ``judge_*``); ``run_validation`` acts
(simulates, starts processes) and closes every backend it opens, whatever happens. The
names below are importable from here.
"""

from rolloutlab.errors import ValidateError
from rolloutlab.workflows.validate.calibration import (
    PodTimingSummary,
    compute_assumed_pod_ready,
    compute_calibrated_scenario,
    compute_created_to_ready,
)
from rolloutlab.workflows.validate.command import (
    check_validate_target,
    run_validate_all_command,
    run_validate_command,
)
from rolloutlab.workflows.validate.metrics import (
    BASE_METRICS,
    HOLDABLE,
    SWITCH_FAILURES,
    WEIGHT_PREFIX,
    Censored,
    Kind,
    ValidatedMetric,
    Value,
    check_hold,
    compute_live_step_weights,
    compute_metric_values,
    compute_sim_step_weights,
    compute_weight_segments,
    is_held,
    metric_kind,
    weight_metric,
)
from rolloutlab.workflows.validate.prediction import (
    LEVEL,
    Prediction,
    PredictionCheck,
    PredictionVerdict,
    compute_exit_code,
    compute_fixed_prediction,
    compute_prediction,
    compute_prediction_ranks,
    compute_prediction_set,
    compute_predictions,
    judge_live,
    judge_value,
)
from rolloutlab.workflows.validate.rendering import (
    calibration_lines,
    describe_prediction,
    render_validation,
    results_table,
    summary_table,
    validation_json,
    write_validation,
    write_validation_report,
    zero_downtime_lines,
)
from rolloutlab.workflows.validate.running import (
    BACKENDS,
    DEFAULT_NODE_PORT,
    RELEASES,
    LiveResult,
    LiveWorld,
    Settings,
    Validation,
    compute_live_scenario,
    forced_release,
    run_validation,
    simulate_validation_run,
    simulate_world,
)
from rolloutlab.workflows.validate.switching import SwitchFailures, compute_switch_failures, routing_change_times

__all__ = [
    "BACKENDS", "BASE_METRICS", "DEFAULT_NODE_PORT", "Censored", "HOLDABLE", "Kind", "LEVEL", "LiveResult",
    "LiveWorld", "PodTimingSummary",
    "Prediction", "PredictionCheck", "PredictionVerdict", "RELEASES", "SWITCH_FAILURES", "Settings",
    "SwitchFailures", "ValidateError", "ValidatedMetric", "Validation", "Value", "WEIGHT_PREFIX",
    "calibration_lines", "check_hold", "check_validate_target", "compute_assumed_pod_ready", "compute_calibrated_scenario",
    "compute_created_to_ready", "compute_exit_code", "compute_fixed_prediction", "compute_live_scenario",
    "compute_live_step_weights", "compute_metric_values", "compute_prediction", "compute_prediction_ranks",
    "compute_prediction_set", "compute_predictions", "compute_sim_step_weights", "compute_switch_failures",
    "compute_weight_segments", "describe_prediction", "forced_release", "is_held", "judge_live", "judge_value",
    "metric_kind", "render_validation", "results_table", "routing_change_times", "run_validate_all_command", "run_validate_command",
    "run_validation", "simulate_validation_run", "simulate_world", "summary_table", "validation_json",
    "weight_metric", "write_validation", "write_validation_report", "zero_downtime_lines",
]
