"""DORA metrics, statistics, plots and HTML/Markdown reports over the results table.
Built by the reports issue."""
