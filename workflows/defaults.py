"""What a command does when it is not told: run counts, the seed, the scenario. Defined
here once, for the CLI, ``compare``/``simulate``, ``check`` and the pytest plugin (and
light to import: the CLI reads it to print its help). The strategies a scenario is run
with by default are the scenario's ``strategies:``, whose own default is
``scenarios.schema.DEFAULT_STRATEGIES``."""

DEFAULT_RUNS = 1000
"""Runs per strategy of ``compare``, ``simulate`` and ``simulate_many``: enough for a p99
of failed requests (368 values) and tight medians."""

CHECK_RUNS = 400
"""Runs per strategy and scenario of ``check`` and the pytest plugin: enough for the
bundled library's expectations to be shown at 95% (a false-rollback rate of 0 in 400
healthy releases bounds it below 1%), and the whole library runs in under two minutes on
two cores."""

DEFAULT_SEED = 1
"""Root seed when neither the command nor the scenario's ``seed:`` gives one."""

DEFAULT_SCENARIO = "standard"
"""The bundled scenario ``compare`` runs when none is named."""

DEFAULT_MONTH = "standard-month"
"""The history ``compare`` plays beside ``DEFAULT_SCENARIO`` when no scenario is named: the
same world deployed about twice a day for 30 days, so the report has all five DORA
metrics (deployment frequency, lead time and rework rate need dated deployments)."""

RUNS_PER_MONTH = 50
"""``compare``'s companion history plays one history (about 60 deployments) per this many
runs of the comparison: 20 histories, about 1,300 deployments per strategy, for the
default 1,000 runs."""
