"""What the report shows, read from the published marts into plain JSON-ready structures.

The report only presents: every number comes from a mart (`performance_levels` for the tiles,
the weekly marts for the charts, `changes` / `failures` / `deployments` for the drill-downs).
The one aggregate computed here is the weekly median of each lead-time stage, a presentation of
the stage columns `marts.changes` already holds.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dora_pipeline.warehouse import Connection

# (metric id in performance_levels, column in the weekly marts, title, unit, scale from the mart's unit,
# whether higher is better). Durations are shown in hours, fractions in per cent.
METRICS = (
    ("deployment_frequency", "deployments_per_day", "Deployment frequency", "deployments per day", 1.0, True),
    ("lead_time", "lead_time_median_seconds", "Lead time for changes", "hours (median)", 1 / 3600, False),
    ("change_failure_rate", "change_failure_rate", "Change failure rate", "% of deployments", 100.0, False),
    (
        "recovery_time",
        "recovery_time_median_seconds",
        "Failed deployment recovery time",
        "hours (median)",
        1 / 3600,
        False,
    ),
    ("rework_rate", "rework_rate", "Deployment rework rate", "% of deployments", 100.0, False),
)
FAILURE_METRICS = {"change_failure_rate", "recovery_time"}
# The weekly marts' sample size of each charted column.
SAMPLE_SIZE = {
    "deployments_per_day": "deployment_count",
    "lead_time_median_seconds": "lead_time_n",
    "change_failure_rate": "failure_tracked_deployment_count",
    "recovery_time_median_seconds": "recovery_time_n",
    "rework_rate": "deployment_count",
}
# A week without a row had no deployments: 0 of these, and no value (a gap) for everything else.
ZERO_WITHOUT_ROW = {"deployments_per_day", "deployment_count"}
# How far back the failure and rework drill-downs look, from the last day with data.
RECENT_DAYS = 30
SLOWEST_CHANGES_PER_SERVICE = 10


def read_report_data(con: Connection) -> dict:
    levels = _rows(con, "select * from marts.performance_levels order by scope_level, scope, metric")
    services = _rows(con, "select distinct service, team from marts.deployments where is_counted order by service")
    window = (levels[0]["window_start"], levels[0]["window_end"]) if levels else (None, None)
    return {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "benchmark_year": levels[0]["benchmark_year"] if levels else None,
        "window": {"start": _iso(window[0]), "end": _iso(window[1])},
        "data_until": _iso(con.execute("select max(deployed_at) from marts.deployments where is_counted")[0][0]),
        "metrics": [
            {"id": m, "column": c, "title": t, "unit": u, "scale": s, "higher_is_better": h}
            for m, c, t, u, s, h in METRICS
        ],
        "scopes": _scopes(services),
        "tiles": _tiles(levels),
        "bands": _bands(con, levels[0]["benchmark_year"] if levels else None),
        "series": _series(con, window[1]),
        "stages": _stages(con, window),
        "slowest_changes": _slowest_changes(con, window),
        "failures": _failures(con, window[1]),
        "rework": _rework(con, window[1]),
        "quality": _rows(
            con,
            """
            select source, entity, outcome, sum(records) as records,
                cast(sum(records) as double precision) / nullif(sum(records_extracted), 0) as share
            from marts.data_quality group by source, entity, outcome order by source, entity, records desc
            """,
        ),
        "freshness": _rows(
            con,
            "select source, last_status, last_attempt_at, last_success_at, hours_behind, last_error "
            "from marts.source_freshness order by source",
        ),
    }


def _scopes(services: list[dict]) -> list[dict]:
    """The selector's entries: the organisation, each team, each service (with its team)."""
    scopes = [{"key": "overall:all", "level": "overall", "name": "All teams", "team": None}]
    scopes += [
        {"key": f"team:{t}", "level": "team", "name": t, "team": t} for t in sorted({s["team"] for s in services})
    ]
    scopes += [
        {"key": f"service:{s['service']}", "level": "service", "name": s["service"], "team": s["team"]}
        for s in services
    ]
    return scopes


def _tiles(levels: list[dict]) -> dict:
    tiles: dict[str, dict] = {}
    for r in levels:
        tiles.setdefault(f"{r['scope_level']}:{r['scope']}", {})[r["metric"]] = {
            "value": r["value"],
            "level": r["level"],
            "band": r["band"],
            "within_band": r["within_band"],
            "n": r["sample_size"],
            "previous": r["previous_value"],
            "previous_n": r["previous_sample_size"],
        }
    return tiles


def _bands(con: Connection, year: int | None) -> dict:
    bands: dict[str, list] = {}
    for r in _rows(
        con, "select * from marts.dora_benchmarks where report_year = ? order by metric, level_rank", [year]
    ):
        bands.setdefault(r["metric"], []).append(
            {"level": r["level"], "lower": r["lower_bound"], "upper": r["upper_bound"], "published": r["published"]}
        )
    return bands


def _series(con: Connection, last_day: date | None) -> dict:
    """Weekly traces per scope, on a continuous week axis: a week without deployments is 0 deployments
    per day but a gap (null) for every other metric, never a line drawn across it."""
    columns = [c for _, c, *_ in METRICS] + sorted(set(SAMPLE_SIZE.values())) + ["tracks_failures"]
    selected = ", ".join(columns)
    rows = _rows(
        con,
        f"""
        select 'overall:all' as scope, 'all teams' as trace, period_start, {selected}
        from marts.dora_overall_metrics_weekly
        union all
        select 'team:' || team, team, period_start, {selected} from marts.dora_team_metrics_weekly
        union all
        select 'service:' || service, environment, period_start, {selected} from marts.dora_metrics_weekly
        order by period_start
        """,
    )
    if not rows or last_day is None:
        return {}
    first = min(r["period_start"] for r in rows)
    weeks = [first + timedelta(weeks=i) for i in range((last_day - first).days // 7 + 1)]
    series: dict[str, dict] = {}
    for r in rows:
        trace = series.setdefault(r["scope"], {}).setdefault(r["trace"], {})
        trace[r["period_start"]] = r
    return {
        scope: [
            {
                "name": name,
                "weeks": [_iso(w) for w in weeks],
                **{
                    column: [
                        by_week[w][column]
                        if w in by_week
                        else (0 if column in ("deployments_per_day", "deployment_count") else None)
                        for w in weeks
                    ]
                    for column in columns
                },
            }
            for name, by_week in sorted(traces.items())
        ]
        for scope, traces in series.items()
    }


def _stages(con: Connection, window: tuple) -> dict:
    """Weekly median of each lead-time stage (coding, review, deploy) per scope, over the changes
    counted in the lead time."""
    rows = _rows(
        con,
        """
        with counted as (
            select service, team, date_trunc('week', deployed_at)::date as week,
                coding_seconds, review_seconds, deploy_seconds
            from marts.changes
            where lead_time_exclusion_reason is null and deployed_at < ?::date + 1
        )
        select
            case when service is not null then 'service:' || service
                 when team is not null then 'team:' || team else 'overall:all' end as scope,
            week, count(*) as n,
            percentile_cont(0.5) within group (order by coding_seconds) as coding,
            percentile_cont(0.5) within group (order by review_seconds) as review,
            percentile_cont(0.5) within group (order by deploy_seconds) as deploy
        from counted
        group by grouping sets ((week), (team, week), (team, service, week))
        order by week
        """,
        [window[1]],
    )
    stages: dict[str, dict] = {}
    for r in rows:
        scope = stages.setdefault(r["scope"], {"weeks": [], "n": [], "coding": [], "review": [], "deploy": []})
        scope["weeks"].append(_iso(r["week"]))
        for key in ("n", "coding", "review", "deploy"):
            scope[key].append(r[key])
    return stages


def _slowest_changes(con: Connection, window: tuple) -> list[dict]:
    return _rows(
        con,
        f"""
        select service, team, environment, source_change_id, title, deployed_at, lead_time_seconds,
            coding_seconds, review_seconds, deploy_seconds
        from (
            select *, row_number() over (partition by service order by lead_time_seconds desc) as slowness
            from marts.changes
            where lead_time_exclusion_reason is null and deployed_at >= ?::date and deployed_at < ?::date + 1
        ) as ranked
        where slowness <= {SLOWEST_CHANGES_PER_SERVICE}
        order by lead_time_seconds desc
        """,
        [window[0], window[1]],
    )


def _failures(con: Connection, last_day: date | None) -> list[dict]:
    """Failures still open, and those detected or resolved in the last RECENT_DAYS days."""
    return _rows(
        con,
        f"""
        select service, team, source_failure_id, title, severity, detected_at, resolved_at, is_open,
            recovery_time_seconds, caused_by_deployment_id, caused_by_deployed_at, fixed_by_deployment_id
        from marts.failures
        where is_qualifying
            and (is_open or detected_at >= ?::date - {RECENT_DAYS} or resolved_at >= ?::date - {RECENT_DAYS})
        order by is_open desc, detected_at desc
        """,
        [last_day, last_day],
    )


def _rework(con: Connection, last_day: date | None) -> list[dict]:
    return _rows(
        con,
        f"""
        select service, team, environment, source, source_deployment_id, deployed_at, is_fix, is_rollback
        from marts.deployments
        where is_counted and (is_fix or is_rollback) and deployed_at >= ?::date - {RECENT_DAYS}
        order by deployed_at desc
        """,
        [last_day],
    )


def _rows(con: Connection, sql: str, parameters: list | None = None) -> list[dict]:
    return con.records(sql, parameters or [])


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
