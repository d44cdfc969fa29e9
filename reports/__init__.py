"""The report over results tables: what a team reads before choosing how to ship.

Reads the results contract (``rolloutlab.results``) and nothing above it.

- :mod:`rolloutlab.reports.dora`: the DORA metrics per strategy with their tiers
  (recovery times censoring-aware), the release's failures beside the total.
- :mod:`rolloutlab.reports.availability`: availability over the window and the share of
  the SLO's error budget one deployment burns.
- :mod:`rolloutlab.reports.plots`: what every chart shares, the comparison bars and the
  speed/safety trade-off; :mod:`~rolloutlab.reports.distributions`: restore times and
  failed requests over runs; :mod:`~rolloutlab.reports.timeline_plot`: one rollout over time.
- :mod:`rolloutlab.reports.document`: the report as data, written as HTML, Markdown and
  ``summary.csv``.
- :mod:`rolloutlab.reports.deploy_log`: a team's deployment log read into the results table.
"""
