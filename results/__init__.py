"""The results contract: one row per deployment, the same columns from every producer
(the simulator, live runs, replays, a team's deployment log), and the statistics every
table and report computes from it.

- :mod:`rolloutlab.results.table`: the columns, :class:`Outcome`, :class:`DetectedBy`,
  conforming, reading and writing (CSV, Parquet).
- :mod:`rolloutlab.results.statistics`: confidence intervals, order statistics,
  censoring-aware summaries per strategy.
- :mod:`rolloutlab.results.timeline`: the timeline point and typed events, timelines files.
- :mod:`rolloutlab.results.formatting`: how durations, counts and percentages are written.

Imports numpy, pandas and scipy only, and nothing else of rolloutlab but its errors.
"""
