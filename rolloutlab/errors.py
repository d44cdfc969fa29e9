"""Every error rolloutlab raises on purpose, in one hierarchy with two roots.

- :class:`BadInput` (exit status 2): something the user gave cannot be used — a scenario
  or strategy file (with file, line and field path), a results table, an option, an
  executor, a scenario feature a runner does not have. Nothing ran, or nothing was lost.
- :class:`RunFailed` (exit status 1): a run that was started did not finish — a simulated
  run raised, the cluster or the router refused something, persisted state belongs to
  another run.

The CLI maps them to exit statuses in one place (:func:`exit_status`); code never checks
a message text to decide what an error is. This module imports nothing, so every layer
(``strategies`` at the bottom included) may raise these.
"""

from __future__ import annotations

from typing import Any, Sequence


class RolloutlabError(Exception):
    """Base of every error rolloutlab raises on purpose."""

    exit_code = 1


# --------------------------------------------------------------------------- bad input (exit 2)


class BadInput(RolloutlabError):
    """The user's input cannot be used; the message says what and where."""

    exit_code = 2


class InputError(BadInput):
    """A file that does not load: names the file, the line and the field path
    (``bad.yaml:5: strategy.canary.steps[0].setWeight: ...``)."""

    def __init__(self, file: str, message: str, line: int | None = None, field: str | None = None) -> None:
        super().__init__(file, message, line, field)
        self.file = file
        self.message = message
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class FieldError(ValueError):
    """Raised by a schema validator to blame a sub-field rather than the whole model.

    Not an error the user sees: ``validate_document`` turns it into an :class:`InputError`
    whose field path is pydantic's location plus ``path`` (e.g.
    ``FieldError(("dependencies", 2, "callee"), "unknown service 'db'")``), so the user
    sees the field and line of the real mistake.
    """

    def __init__(self, path: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.path = tuple(path)
        self.message = message


class ResultsError(BadInput, ValueError):
    """A table or file that breaks the results contract; the message names where.

    ``row`` is the 0-based position of the offending row, when one row is to blame.
    """

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


class ExecutorError(BadInput, ValueError):
    """An executor that cannot be used: a malformed executor string or a missing extra."""


class DaskUnavailable(ExecutorError):
    """A Dask executor was asked for but dask.distributed is not installed."""


class LiveUnsupported(BadInput, ValueError):
    """A scenario feature that has no live counterpart (yet): said, never skipped silently."""


class ValidateError(BadInput, ValueError):
    """Bad input to a validation (a metric name, a release, a setting); the message says which."""


class PrometheusMissing(BadInput):
    """Prometheus (or promtool) is not installed where rolloutlab looks for it."""


class PrometheusUnreachable(BadInput):
    """No Prometheus answers at the address given, or it did not start."""


class PrometheusQueryError(BadInput):
    """Prometheus rejected a query (bad PromQL, a bad time range), or a query that must
    return series returned none."""


class PostgresMissing(BadInput):
    """PostgreSQL's server binaries (initdb, postgres, pg_ctl) are not installed where
    rolloutlab looks for them, or its driver (psycopg) is missing."""


class StateError(BadInput):
    """Persisted state that this run must not touch (another release, a newer format, a
    rollout already finished, a rollback of nothing): the run refuses before acting, so
    nothing is lost — the user asked for something the state does not allow."""


# --------------------------------------------------------------------------- a run that failed (exit 1)


class RunFailed(RolloutlabError, RuntimeError):
    """A run that was started did not finish; the message says which and why."""

    exit_code = 1


class SimulationFailed(RunFailed):
    """A simulated run raised: the message names the strategy, run and seed to replay it."""

    def __init__(self, message: str, strategy: str, run: int | None, seed: int) -> None:
        super().__init__(message)
        self.strategy = strategy
        self.run = run  # None when a whole chunk was lost (a worker process died)
        self.seed = seed

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses process and Dask boundaries with its fields intact.
        return (type(self), (str(self), self.strategy, self.run, self.seed))




class KubeError(RunFailed):
    """The cluster refused something that retrying will not fix (a clear message for the CLI)."""


class PostgresFailed(RunFailed):
    """The throwaway PostgreSQL cluster of a live run did not start, or a migration's DDL failed."""


class LocalBackendError(RunFailed):
    """Something the local backend cannot do; the message names what and why."""


class RouterError(RunFailed):
    """HAProxy refused a command or did not start; the message says which and why."""


def exit_status(error: BaseException) -> int:
    """The process exit status for an error: 2 for bad input, 1 for everything else."""
    return error.exit_code if isinstance(error, RolloutlabError) else 1
