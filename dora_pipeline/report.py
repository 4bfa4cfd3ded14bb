"""A self-contained HTML report from the published warehouse, for people rather than SQL.

Charts are Plotly figures with plotly.js inlined once, so the file opens anywhere without a
network. Sections: a notice when a source's latest extraction failed, the five metrics week by
week per team and per service, the current performance level of every service, team and the
organisation against the benchmark year ("not tracked" where failures are not recorded), the
trend of the latest month against the month before, the data-quality summary and each source's
freshness.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import duckdb
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

METRICS = (
    ("deployments_per_day", "Deployment frequency (deployments per day)", 1.0),
    ("lead_time_median_seconds", "Lead time for changes, median (hours)", 1 / 3600),
    ("change_failure_rate", "Change failure rate (%)", 100.0),
    ("recovery_time_median_seconds", "Failed deployment recovery time, median (hours)", 1 / 3600),
    ("rework_rate", "Deployment rework rate (%)", 100.0),
)

# Failure metrics of a scope whose tools record no failures: shown as such, never as 0.
FAILURE_COLUMNS = {"change_failure_rate", "recovery_time_median_seconds"}
NOT_TRACKED = "not tracked"

# Records script errors and, once loaded, how many charts rendered, on <body> (read by the
# browser test and handy when a chart is missing).
SELF_CHECK = """
window.addEventListener('error', function (e) {
  document.documentElement.dataset.errors = (document.documentElement.dataset.errors || '') + e.message + ';';
});
window.addEventListener('load', function () {
  setTimeout(function () {
    document.body.dataset.chartsRendered = document.querySelectorAll('.js-plotly-plot .main-svg').length;
  }, 300);
});
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #1f2933; }
h1 { margin-bottom: 0; } .meta { color: #616e7c; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e4e7eb; padding: 0.3rem 0.7rem; text-align: left; }
.elite { color: #0b7a3e; font-weight: 600; } .high { color: #2d6cdf; } .medium { color: #b7791f; }
.low { color: #c53030; } .chart { margin: 1rem 0 2rem; }
.stale { border-left: 4px solid #c53030; background: #fff5f5; padding: 0.2rem 1rem; }
"""


@dataclass
class Report:
    path: Path
    charts: int
    size_bytes: int


def build_report(warehouse: Path, output: Path) -> Report:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        teams = _rows(con, "select * from marts.dora_team_metrics_weekly order by period_start")
        services = _rows(
            con,
            "select service || ' / ' || environment as service, * exclude (service) "
            "from marts.dora_metrics_weekly order by period_start",
        )
        levels = _rows(con, "select * from marts.performance_levels order by scope_level desc, scope, metric")
        trend = _rows(
            con,
            """
            with months as (
                select *, row_number() over (partition by team order by period_start desc) as back
                from marts.dora_team_metrics_monthly
            )
            select team, period_start, back, tracks_failures, deployments_per_day, lead_time_median_seconds,
                   change_failure_rate, recovery_time_median_seconds, rework_rate
            from months where back in (1, 2) order by team, back
            """,
        )
        quality = _rows(
            con,
            "select source, entity, outcome, sum(records) as records from marts.data_quality "
            "group by all order by source, entity, records desc",
        )
        freshness = _rows(
            con,
            "select source, last_status, last_success_at, last_attempt_at, last_error "
            "from marts.source_freshness order by source",
        )
    figures = [_figure(teams, "team", column, title, scale) for column, title, scale in METRICS]
    figures += [_figure(services, "service", column, title, scale) for column, title, scale in METRICS]
    year = levels[0]["benchmark_year"] if levels else "-"
    window = f"{levels[0]['window_start']} to {levels[0]['window_end']}" if levels else "-"
    charts = [f'<div class="chart">{fig.to_html(full_html=False, include_plotlyjs=False)}</div>' for fig in figures]
    body = [
        "<h1>DORA metrics</h1>",
        f'<p class="meta">Performance levels against the DORA {year} benchmarks over {window}.</p>',
        _freshness_notice(freshness),
        "<h2>Teams, week by week</h2>",
        *charts[: len(METRICS)],
        "<h2>Services, week by week</h2>",
        *charts[len(METRICS) :],
        "<h2>Current performance level</h2>",
        _levels_table(levels),
        "<h2>Trend: latest month (it may be partial) against the month before</h2>",
        _trend_table(trend),
        "<h2>Data quality</h2>",
        _table(quality, ["source", "entity", "outcome", "records"]),
        "<h2>Source freshness</h2>",
        _table(freshness, ["source", "last_status", "last_success_at", "last_attempt_at", "last_error"]),
    ]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>DORA metrics</title>"
        f"<style>{STYLE}</style><script>{SELF_CHECK}</script><script>{get_plotlyjs()}</script></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.tmp")
    staging.write_text(page, encoding="utf-8")
    staging.replace(output)
    return Report(output, len(figures), output.stat().st_size)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _figure(rows: list[dict], key: str, column: str, title: str, scale: float) -> go.Figure:
    figure = go.Figure()
    for name in sorted({r[key] for r in rows}):
        points = [r for r in rows if r[key] == name]
        figure.add_trace(
            go.Scatter(
                x=[r["period_start"] for r in points],
                y=[None if r[column] is None else r[column] * scale for r in points],
                mode="lines+markers",
                name=name,
                connectgaps=True,
            )
        )
    figure.update_layout(title=f"{title}, per {key}", height=360, margin={"t": 50, "b": 40})
    return figure


def _levels_table(levels: list[dict]) -> str:
    head = "<tr><th>scope</th><th>metric</th><th>value</th><th>level</th><th>band</th></tr>"
    rows = [
        f"<tr><td>{html.escape(str(r['scope_level']))}: {html.escape(str(r['scope']))}</td>"
        f"<td>{html.escape(r['metric'])}</td>"
        f"<td>{NOT_TRACKED if r['level'] == 'not_tracked' else _value(r['metric'], r['value'])}</td>"
        f"<td class='{r['level'] or ''}'>{(r['level'] or '-').replace('_', ' ')}</td>"
        f"<td>{html.escape(str(r['band'] or '-'))}</td></tr>"
        for r in levels
    ]
    return f"<table>{head}{''.join(rows)}</table>"


def _freshness_notice(freshness: list[dict]) -> str:
    """A warning at the top when a source's latest extraction failed: its numbers are stale."""
    failed = [r for r in freshness if r["last_status"] == "failed"]
    if not failed:
        return ""
    items = "".join(
        f"<li><b>{html.escape(r['source'])}</b>: its latest extraction failed; its data is from "
        f"{html.escape(str(r['last_success_at'] or 'no successful extraction yet'))}.</li>"
        for r in failed
    )
    return f'<div class="stale"><p>Some sources are stale:</p><ul>{items}</ul></div>'


def _trend_table(rows: list[dict]) -> str:
    head = "<tr><th>team</th>" + "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in METRICS) + "</tr>"
    body = []
    for team in sorted({r["team"] for r in rows}):
        months = {r["back"]: r for r in rows if r["team"] == team}
        cells = []
        tracks = any(m.get("tracks_failures") for m in months.values())
        for column, _, scale in METRICS:
            if column in FAILURE_COLUMNS and not tracks:
                cells.append(f"<td>{NOT_TRACKED}</td>")
                continue
            last, before = (months.get(b, {}).get(column) for b in (1, 2))
            cells.append(f"<td>{_fmt(last, scale)} (was {_fmt(before, scale)})</td>")
        body.append(f"<tr><td>{html.escape(team)}</td>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _value(metric: str, value: float | None) -> str:
    scale = {"lead_time": 1 / 3600, "recovery_time": 1 / 3600, "change_failure_rate": 100.0}.get(metric, 1.0)
    unit = {"lead_time": " h", "recovery_time": " h", "change_failure_rate": " %", "deployment_frequency": " /day"}
    return "-" if value is None else f"{value * scale:.2f}{unit.get(metric, '')}"


def _fmt(value: float | None, scale: float) -> str:
    return "-" if value is None else f"{value * scale:.2f}"
