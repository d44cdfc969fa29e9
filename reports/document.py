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

from rolloutlab.reports import plots
from rolloutlab.reports.dora import DEFINITIONS, TIERS, compute_dora, dora_frame
from rolloutlab.results.statistics import FIGURE_METHODS, format_duration, format_percent, format_quantity, summarize
from rolloutlab.results.timeline import TimelinePoint


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


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
        sections += _results_sections(label, df, timelines or [])
        frames.append(dora_frame(df))
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
    summaries = summarize(df)
    impact = Section(f"User impact, duration and cost: {label}", paragraphs=[
        "DORA counts a canary caught at 5% of traffic and a full outage alike as one change failure. "
        "These figures show how much each failure hurt: failed requests per deployment, the share of "
        "user requests answered by a version the release made worse, how long a rollout takes and what "
        "it costs in replica-seconds. Brackets are 95% confidence intervals.",
    ])
    impact.images.append(Image(f"{_stem(label)}-bars", plots.figure_png(plots.metric_bar_grid(summaries)),
                               "per-strategy bars with 95% confidence intervals"))
    impact.images.append(Image(f"{_stem(label)}-ecdf", plots.figure_png(plots.restore_ecdf(df)),
                               "ECDF of time to restore per strategy"))
    impact.images.append(Image(f"{_stem(label)}-failed", plots.figure_png(plots.failed_requests_distribution(df)),
                               "distribution of failed requests per deployment"))
    impact.images.append(Image(f"{_stem(label)}-pareto", plots.figure_png(plots.pareto(summaries)),
                               "rollout duration vs failed requests vs cost"))
    sections.append(impact)
    scenario = str(df["scenario"].iloc[0])
    chosen = [t for t in timelines if t.get("scenario") == scenario and t["strategy"] in set(df["strategy"])]
    if chosen:
        section = Section(f"Rollout timelines: {label}", paragraphs=[
            "Chosen runs, simulated again from their seeds: declared vs effective canary weight, error "
            "rate per version, analysis verdicts and the promote / abort / alert marks."])
        for t in chosen:
            title = f"{t['strategy']}, run {t['run']} (seed {t['seed']}): {t['defect']} release, {t['outcome']}"
            section.images.append(Image(f"{_stem(label)}-timeline-{_stem(t['strategy'])}-{t['run']}",
                                        plots.figure_png(plots.rollout_timeline(_points(t), title)), title))
        sections.append(section)
    return sections


DORA_FIELDS = ("deployment_frequency", "lead_time_median", "change_failure_rate", "recovery_time_median",
               "recovery_time_p90", "rework_rate")
IMPACT_FIELDS = ("failed_requests_mean", "failed_requests_p99", "users_affected_mean", "users_affected_p99",
                 "rollout_duration_median", "cost_mean")


def _points(timeline: dict) -> list[TimelinePoint]:
    return [TimelinePoint(**{**p, "events": tuple(p.get("events", ()))}) for p in timeline["points"]]


def _dora_sections(label: str, df: pd.DataFrame) -> list[Section]:
    dora = compute_dora(df)
    section = Section(f"DORA metrics: {label}", paragraphs=[
        f"{len(df):,} deployments. Each metric with its 95% confidence interval and, where DORA "
        "defines them, its performance tier (thresholds and source under Definitions). A figure "
        "the data cannot give says why."])
    for fields_, caption in ((DORA_FIELDS, "the five DORA metrics"),
                             (IMPACT_FIELDS, "user impact, duration and cost (DORA does not show these)")):
        rows = []
        for item in dora:
            metrics = item.metrics()
            rows.append([item.strategy] + [_format_metric(metrics[name]) for name in fields_])
        section.tables.append(Table(["strategy"] + [f.replace("_", " ") for f in fields_], rows, caption=caption))
    return [section]


def _format_metric(metric) -> str:
    if metric.value is None or (isinstance(metric.value, float) and math.isnan(metric.value)):
        return f"n/a ({metric.note})" if metric.note else "n/a"
    text = _number(metric.value, metric.unit)
    if metric.low is not None and metric.high is not None:
        text += f" [{_number(metric.low, metric.unit)}, {_number(metric.high, metric.unit)}]"
    if metric.tier is not None:
        text += f" · {metric.tier.value}"
    return text


def _number(value: float, unit: str) -> str:
    """One figure in the unit it is kept in, written as the terminal comparison writes it."""
    if unit == "s":
        return format_duration(value)
    if unit in ("%", "share", "fraction"):
        return f"{format_percent(value)}%"
    if unit == "deployments/day":
        return f"{value:.2f}/day"
    return format_quantity(value)


def _definitions_section() -> Section:
    section = Section("Definitions and performance tiers")
    for name, text in DEFINITIONS.items():
        section.paragraphs.append(f"{name.replace('_', ' ').capitalize()}: {text}")
    rows = []
    sources = []
    for metric, table in TIERS.items():
        wording = {band.tier.value: band.wording for band in table.bands}
        rows.append([metric.replace("_", " ")] + [wording.get(t, table.note or "not defined")
                                                  for t in ("elite", "high", "medium", "low")])
        if table.source and table.source not in sources:
            sources.append(table.source)
    section.tables.append(Table(["metric", "elite", "high", "medium", "low"], rows,
                                caption="DORA performance tiers used to classify each metric"))
    section.paragraphs.append("Tier source: " + " ".join(sources))
    section.paragraphs.append("Confidence intervals: " + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in FIGURE_METHODS.items()) + ".")
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
            lines.append("")
        for image in section.images:
            lines += [f"![{image.alt}](images/{image.name}.png)", ""]
    return "\n".join(lines)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
