"""The report: built once as plain data (sections of text, tables and images), then
written as one self-contained HTML file (images embedded, no script, opens offline) and
as Markdown with its images beside it, plus ``summary.csv``.

Inputs are the results table (from ``simulate``, ``compare``, a live run or
``validate``), optionally the timelines saved beside it, and optionally a team's real
deployment log.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rolloutlab.reports import availability as availability_figures
from rolloutlab.reports import distributions, plots, timeline_plot
from rolloutlab.reports.dora import DEFINITIONS, RELEASE_FAILED, DoraMetric, compute_dora, dora_frame
from rolloutlab.reports.tiers import TIERS
from rolloutlab.results.formatting import format_beyond, format_duration, format_quantity
from rolloutlab.results.statistics import FIGURE_METHODS, summarize
from rolloutlab.results.timeline import TimelinePoint

LOG_SOURCE = "log"
"""The ``source`` of rows read from a deployment log: no requests, no cost, no timelines."""


@dataclass(frozen=True)
class Table:
    """A table of text cells; ``notes`` are numbered below it, each said once however many
    cells refer to it ("n/a (note 1)")."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)


class Notes:
    """The numbered notes of one table: the same text gets the same number, so a reason that
    applies to every cell of a column is written once."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def refer(self, text: str) -> str:
        """"note 2" for ``text``, numbering it if it is new."""
        if text not in self.texts:
            self.texts.append(text)
        return f"note {self.texts.index(text) + 1}"


@dataclass(frozen=True)
class Image:
    name: str  # file stem, for the Markdown copy
    png: bytes
    alt: str


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)


@dataclass
class Report:
    title: str
    sections: list[Section]
    summary: pd.DataFrame


# ---------------------------------------------------------------------------- building


def build_report(results: pd.DataFrame, timelines: list[dict] | None = None, log: pd.DataFrame | None = None) -> Report:
    """The whole report as data; every figure comes from the tables given."""
    sections: list[Section] = []
    frames = []
    for label, df in _groups(results):
        if (df["source"] == LOG_SOURCE).all():  # a log given alone: DORA is all it can say
            sections += _dora_sections(f"Deployment log: {label}", df)
            frames.append(dora_frame(df))
            continue
        sections += _results_sections(label, df, timelines or [])
        frames += [dora_frame(df), availability_figures.availability_frame(df)]
    if log is not None and len(log):
        for label, df in _groups(log):
            sections += _dora_sections(f"Deployment log: {label}", df)
            frames.append(dora_frame(df))
    sections.append(_definitions_section())
    scenarios = ", ".join(sorted({str(s) for s in results["scenario"].unique()}))
    return Report(title=f"rolloutlab report: {scenarios}", sections=sections,
                  summary=pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())


def _groups(df: pd.DataFrame):
    for (source, scenario), group in df.groupby(["source", "scenario"], sort=True):
        yield f"{scenario} ({source})", group


def _results_sections(label: str, df: pd.DataFrame, timelines: list[dict]) -> list[Section]:
    sections = _dora_sections(label, df)
    sections.append(_availability_section(label, df))
    summaries = summarize(df)
    release = RELEASE_FAILED in df
    impact = Section(f"User impact, duration and cost: {label}", paragraphs=[
        "DORA counts a canary caught at 5% of traffic and a full outage alike as one change failure. "
        "These figures show how much each failure hurt: failed requests per deployment"
        + (" caused by the release (beyond what the old version would have failed anyway), beside the "
           "total" if release else "")
        + ", the share of users who got a bad answer from the release (a weight spreads a bad release over "
        "every user; a header route, a cohort or a flag concentrates it on a few), how long a rollout "
        "takes and what it costs in replica-seconds. Brackets are 95% confidence intervals.",
    ])
    impact.images.append(Image(f"{_stem(label)}-bars", plots.figure_png(plots.metric_bar_grid(summaries)),
                               "per-strategy bars with 95% confidence intervals"))
    impact.images.append(Image(f"{_stem(label)}-ecdf", plots.figure_png(distributions.restore_ecdf(df)),
                               "time to restore per strategy: share of failed deployments restored within t "
                               "(Kaplan-Meier, incidents not restored censored at the window's end)"))
    impact.images.append(Image(f"{_stem(label)}-failed", plots.figure_png(distributions.failed_requests_distribution(df)),
                               "failed requests per deployment: " + ("caused by the release, and in total"
                                                                     if release else "total")))
    impact.images.append(Image(f"{_stem(label)}-pareto", plots.figure_png(plots.pareto(summaries)),
                               "rollout duration vs failed requests vs cost"))
    sections.append(impact)
    scenario = str(df["scenario"].iloc[0])
    chosen = [t for t in timelines if t.get("scenario") == scenario and t["strategy"] in set(df["strategy"])]
    if chosen:
        section = Section(f"Rollout timelines: {label}", paragraphs=[(
            "Chosen runs, simulated again from their seeds: the new version's share of traffic (declared by "
            "the strategy vs effective at the router), the error rate of each version, the analysis' "
            "measurements and the promote / abort / rollback / alert marks.")])
        for t in chosen:
            title = f"{t['strategy']}, run {t['run']} (seed {t['seed']}): {t['defect']} release, {t['outcome']}"
            section.images.append(Image(f"{_stem(label)}-timeline-{_stem(t['strategy'])}-{t['run']}",
                                        plots.figure_png(timeline_plot.rollout_timeline(_points(t), title)), title))
        sections.append(section)
    return sections


DORA_FIELDS = ("deployment_frequency", "lead_time_median", "change_failure_rate", "recovery_time_median",
               "recovery_time_p90", "rework_rate")
IMPACT_FIELDS = ("release_failed_requests_mean", "failed_requests_mean", "release_failed_requests_p99",
                 "users_affected_mean", "users_affected_p99", "rollout_duration_median", "cost_mean")
_HEADERS = {
    "release_failed_requests_mean": "failed requests caused by the release, mean",
    "release_failed_requests_p99": "caused by the release, p99",
    "failed_requests_mean": "failed requests in total, mean (baseline included)",
    "error_budget_burn_mean": "error budget burned per deployment, mean",
    "error_budget_burn_p90": "error budget burned, p90",
    "deployments_per_budget": "deployments the budget allows per SLO window",
    "availability": "availability over the window",
}


def _points(timeline: dict) -> list[TimelinePoint]:
    return [TimelinePoint.from_json(p) for p in timeline["points"]]


def _dora_sections(label: str, df: pd.DataFrame) -> list[Section]:
    dora = compute_dora(df)
    section = Section(f"DORA metrics: {label}", paragraphs=[(
        f"{len(df):,} deployments. Each metric with its 95% confidence interval and, where DORA "
        "defines them, its performance tier (thresholds and source under Definitions). A figure "
        "the data cannot give says why, once, in the notes under its table. Recovery times count "
        "every change failure: one not restored in its window is censored there (\"censored\" in "
        "a cell), and a median beyond the window is written \">28m20s\" (more than the longest time "
        "observed) and tiered low.")])
    for fields_, caption in ((DORA_FIELDS, "the five DORA metrics"),
                             (IMPACT_FIELDS, "user impact, duration and cost (DORA does not show these)")):
        section.tables.append(_metric_table([(item.strategy, item.metrics()) for item in dora], fields_, caption))
    return [section]


def _metric_table(rows: list[tuple[str, dict[str, DoraMetric]]], fields_: tuple[str, ...], caption: str) -> Table:
    """One row per strategy, one column per figure; reasons and caveats numbered once below."""
    notes = Notes()
    cells = [[strategy] + [format_metric(metrics[name], notes) for name in fields_] for strategy, metrics in rows]
    columns = ["strategy"] + [_HEADERS.get(f, f.replace("_", " ")) for f in fields_]
    return Table(columns, cells, caption=caption, notes=notes.texts)


def _availability_section(label: str, df: pd.DataFrame) -> Section:
    items = availability_figures.compute_availability(df)
    slos = {(a.objective, a.slo_window) for a in items if a.objective is not None}
    if slos:
        objective, window = min(slos)
        slo = (f"The scenario's SLO: {100 * objective:.10g}% of requests succeed over "
               f"{_format_window(window)}; its error budget is the {100 * (1 - objective):.4g}% of "
               "that window's requests allowed to fail.")
    else:
        slo = "The scenario states no SLO (slo: objective and window), so only availability is shown."
    window = availability_figures.compute_window(df)
    if window is not None and len(window) and math.isfinite(window[0]):
        slo += f" Each deployment's window, over which its requests are counted: {format_duration(float(window[0]))}."
    section = Section(f"Availability and error budget: {label}", paragraphs=[
        "Availability as teams report it against an SLO, per strategy, with 95% confidence intervals. " + slo,
        *availability_figures.DEFINITIONS.values(),
    ])
    fields_ = ("availability", "error_budget_burn_mean", "error_budget_burn_p90", "deployments_per_budget")
    section.tables.append(_metric_table([(a.strategy, a.metrics()) for a in items], fields_,
                                        "availability over the window and error budget burned per deployment"))
    return section


def format_metric(metric: DoraMetric, notes: Notes | None = None) -> str:
    """A table cell: value [low, high] · tier, with how many values were censored; an n/a
    cell refers to its reason in ``notes`` (or says it, without notes)."""
    if metric.value is None or (isinstance(metric.value, float) and math.isnan(metric.value)):
        if not metric.note:
            return "n/a"
        return f"n/a ({notes.refer(metric.note)})" if notes is not None else f"n/a ({metric.note})"

    def one(x: float) -> str:
        if math.isinf(x) and x > 0 and metric.beyond is not None:
            return format_beyond(metric.beyond, "duration")
        return _number(x, metric.unit, metric)

    text = one(metric.value)
    if metric.low is not None and metric.high is not None and not (math.isinf(metric.value) and math.isinf(metric.low)):
        text += f" [{one(metric.low)}, {one(metric.high)}]"
    if metric.tier is not None:
        text += f" · {metric.tier.value}"
    if metric.censored:
        text += f" ({metric.censored} of {metric.n} censored at the window's end)"
    if metric.note and notes is not None and metric.note not in _TIER_NOTES:
        text += f" ({notes.refer(metric.note)})"
    return text


_TIER_NOTES = {t.note for t in TIERS.values() if t.note}
"""Caveats said in the tier table already (rework has no tiers): not repeated in every cell."""


def _number(value: float, unit: str, metric: DoraMetric | None = None) -> str:
    """One figure in the unit it is kept in, written as the terminal comparison writes it."""
    if unit == "s":
        return format_duration(value)
    if unit in ("%", "share", "fraction"):
        return format_share(value, metric)
    if unit == "deployments/day":
        return f"{value:.2f}/day"
    if unit == "deployments":
        return "unlimited" if math.isinf(value) else format_quantity(value)
    return format_quantity(value)


def format_share(value: float, metric: DoraMetric | None) -> str:
    """A fraction as a percentage with enough decimals to tell its interval's ends apart
    (an availability of 99.90007%, a budget burn of 0.0032%), at least one, at most six;
    never in exponent notation."""
    ends = [metric.low, metric.high] if metric and metric.low is not None and metric.high is not None else []
    width = abs(ends[1] - ends[0]) * 100 if ends else 0.0
    if width > 1e-9 and math.isfinite(width):
        decimals = 1 - math.floor(math.log10(width))
    elif abs(value) * 100 > 1e-9:
        decimals = 1 - math.floor(math.log10(abs(value) * 100))  # two significant figures
    else:
        decimals = 1
    decimals = min(6, max(1, decimals))
    shown = 0.0 if abs(value) * 100 < 0.5 * 10.0 ** -decimals else 100 * value  # no "-0.0%"
    return f"{shown:.{decimals}f}%"


def _format_window(seconds: float) -> str:
    """An SLO window as teams state it: "30 days", "7 days", "1 hour"; else as a duration."""
    for size, name in ((86400.0, "day"), (3600.0, "hour")):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {name}{'s' if count != 1 else ''}"
    return format_duration(seconds)


def _definitions_section() -> Section:
    section = Section("Definitions and performance tiers")
    # Each definition starts with the metric's name already.
    section.paragraphs += list(DEFINITIONS.values())
    rows = []
    sources = []
    notes = Notes()
    for metric, table in TIERS.items():
        wording = {band.tier.value: band.wording for band in table.bands}
        if wording:
            rows.append([metric.replace("_", " ")] + [wording.get(t, "not defined")
                                                      for t in ("elite", "high", "medium", "low")])
        else:  # no tiers at all: say why once, not in every tier's cell
            rows.append([metric.replace("_", " ")] + [f"none ({notes.refer(table.note or 'not defined')})"] * 4)
        if table.source and table.source not in sources:
            sources.append(table.source)
    section.tables.append(Table(["metric", "elite", "high", "medium", "low"], rows,
                                caption="DORA performance tiers used to classify each metric", notes=notes.texts))
    section.paragraphs.append("Tier source: " + " ".join(sources))
    # A table, not a paragraph: several figures share a method, which reads as a wall of repeats in prose.
    section.tables.append(Table(["figure", "estimate and 95% confidence interval"],
                                [[k.replace("_", " "), v] for k, v in FIGURE_METHODS.items()],
                                caption="how each figure of the comparison is estimated"))
    return section


def _stem(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


# ---------------------------------------------------------------------------- writing


def write_report(report: Report, out_dir: Path) -> dict[str, Path]:
    """report.html (self-contained), report.md (+ images/), summary.csv."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "report.html"
    html_path.write_text(render_html(report), encoding="utf-8")
    images = out_dir / "images"
    images.mkdir(exist_ok=True)
    for section in report.sections:
        for image in section.images:
            (images / f"{image.name}.png").write_bytes(image.png)
    md_path = out_dir / "report.md"
    md_path.write_text(render_markdown(report), encoding="utf-8")
    csv_path = out_dir / "summary.csv"
    report.summary.to_csv(csv_path, index=False)
    return {"html": html_path, "markdown": md_path, "summary": csv_path}


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1b1f24;line-height:1.45}
h1{font-size:1.7rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}caption{caption-side:bottom;font-size:.8rem;color:#57606a;padding-top:.3rem}
ol.notes{font-size:.8rem;color:#57606a;margin:-.4rem 0 1rem;padding-left:0;list-style-position:inside}ol.notes li::marker{content:"note " counter(list-item) ": "}
figure{margin:1.2rem 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}figcaption{font-size:.8rem;color:#57606a}
"""


def render_html(report: Report) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(report.title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{e(report.title)}</h1>"]
    for section in report.sections:
        parts.append(f"<section><h2>{e(section.title)}</h2>")
        parts += [f"<p>{e(p)}</p>" for p in section.paragraphs]
        for table in section.tables:
            parts.append("<table>")
            if table.caption:
                parts.append(f"<caption>{e(table.caption)}</caption>")
            parts.append("<thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in table.columns) + "</tr></thead><tbody>")
            parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table.rows]
            parts.append("</tbody></table>")
            if table.notes:
                parts.append('<ol class="notes">' + "".join(f"<li>{e(n)}</li>" for n in table.notes) + "</ol>")
        for image in section.images:
            data = base64.b64encode(image.png).decode("ascii")
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(image.alt)}">'
                         f"<figcaption>{e(image.alt)}</figcaption></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(report: Report) -> str:
    lines = [f"# {report.title}", ""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for p in section.paragraphs:
            lines += [p, ""]
        for table in section.tables:
            lines.append("| " + " | ".join(_md(c) for c in table.columns) + " |")
            lines.append("|" + "---|" * len(table.columns))
            lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in table.rows]
            if table.caption:
                lines += ["", f"*{table.caption}*"]
            if table.notes:
                lines += ["", *(f"{i}. {n}" for i, n in enumerate(table.notes, start=1))]
            lines.append("")
        for image in section.images:
            lines += [f"![{image.alt}](images/{image.name}.png)", ""]
    return "\n".join(lines)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
