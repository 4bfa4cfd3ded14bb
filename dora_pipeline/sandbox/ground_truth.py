"""The DORA metrics of a simulated history, computed in plain Python from the simulation's truth.

This is the independent second implementation of `docs/metrics.md` that the tests
hold the dbt marts against: it reads the `World` objects (never API payloads, never SQL) and
shares no code with the models.
"""

from __future__ import annotations

import calendar
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from dora_pipeline.sandbox.world import GEARSET, GITCLEAR, GITLAB, PARTIAL, SUCCEEDED, Deployment, World

DURATION_METRICS = ("lead_time", "merge_to_deploy", "open_to_deploy", "recovery_time", "time_to_restore")


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, as SQL's PERCENTILE_CONT."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "p75": None, "p90": None, "mean": None}
    return {
        "n": len(values),
        "median": percentile(values, 0.5),
        "p75": percentile(values, 0.75),
        "p90": percentile(values, 0.9),
        "mean": sum(values) / len(values),
    }


def is_counted(d: Deployment) -> bool:
    return d.is_production and d.status in (SUCCEEDED, PARTIAL) and not d.is_test and not d.is_empty


def failure_tracking(world: World, configured: dict[str, bool] | None = None) -> set[str]:
    """The services that track failures, by the rule of the definitions, from the world's facts.

    A service the configuration names is what it says. Otherwise it tracks failures when it really
    records them (`tracks_failures`) and one of its tools shows it in what is visible: Gearset
    marks every production deployment of such a pipeline (`ReportedBugs` is an array), GitLab and
    GitClear only show it once a failure (incident, critical defect) exists. Only services the
    warehouse has seen (a deployment, change or failure) are in scope.
    """
    configured = configured or {}
    seen = {d.service for d in world.deployments} | {c.service for c in world.changes.values()}
    seen |= {f.service for f in world.failures}
    with_failures = {f.service for f in world.failures}
    production = {d.service for d in world.deployments if d.is_production}
    tracked = set()
    for service in world.services:
        if service.name not in seen:
            continue
        if service.name in configured:
            shows = configured[service.name]
        else:
            tools = set(service.tools)
            shows = service.tracks_failures and (
                (GEARSET in tools and service.name in production)
                or (bool({GITLAB, GITCLEAR} & tools) and service.name in with_failures)
            )
        if shows:
            tracked.add(service.name)
    return tracked


@dataclass
class _Bucket:
    deployments: int = 0
    tracked_deployments: int = 0
    rework: int = 0
    failed: int = 0
    resolved: int = 0
    open_failures: int = 0

    def __post_init__(self) -> None:
        self.durations: dict[str, list[float]] = {m: [] for m in DURATION_METRICS}
        self.deployment_days: set[date] = set()


def period_start(day: date, grain: str) -> date:
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def days_in_period(start: date, grain: str) -> int:
    return {"day": 1, "week": 7}.get(grain) or calendar.monthrange(start.year, start.month)[1]


def _shipments(counted: list[Deployment]) -> tuple[set[str], dict[str, Deployment]]:
    """The first counted deployment of each service and environment (it ships the backlog), and
    the first counted deployment that shipped each change."""
    first_of_env: set[str] = set()
    seen_envs: set[tuple[str, str]] = set()
    shipped_by: dict[str, Deployment] = {}
    for d in counted:
        if (d.service, d.environment) not in seen_envs:
            seen_envs.add((d.service, d.environment))
            first_of_env.add(d.deployment_id)
        for change_id in d.change_ids:
            shipped_by.setdefault(change_id, d)
    return first_of_env, shipped_by


def performance_measures(
    world: World,
    window_days: int = 90,
    severity_threshold: int | None = None,
    configured_tracking: dict[str, bool] | None = None,
    windows_back: int = 0,
) -> dict:
    """The five measures per (scope_level, scope, metric) over the trailing window that ends at
    the end of the day of the latest counted deployment, as `int_performance_measures` defines
    (`windows_back=1`: the window of the same length before it). The failure measures are None
    for a scope none of whose services tracks failures."""
    measured = _performance(world, window_days, severity_threshold, configured_tracking, windows_back)
    return {key: value for key, (value, _) in measured.items()}


def performance_sample_sizes(world: World, window_days: int = 90, windows_back: int = 0) -> dict:
    """What each of `performance_measures` is computed from: counted deployments, counted
    deployments of services tracking failures, changes in the lead time, resolved failures."""
    measured = _performance(world, window_days, None, None, windows_back)
    return {key: size for key, (_, size) in measured.items()}


def _performance(
    world: World,
    window_days: int,
    severity_threshold: int | None,
    configured_tracking: dict[str, bool] | None,
    windows_back: int,
) -> dict[tuple, tuple[float | None, int | None]]:
    counted = sorted((d for d in world.deployments if is_counted(d)), key=lambda d: d.deployed_at)
    end = datetime.combine(counted[-1].deployed_at.date() + timedelta(days=1), datetime.min.time(), UTC)
    end -= timedelta(days=window_days * windows_back)
    start = end - timedelta(days=window_days)
    teams = {s.name: s.team for s in world.services}
    exposes_changes = {s.name for s in world.services if s.exposes_changes}
    tracked = failure_tracking(world, configured_tracking)
    failures = [
        f
        for f in world.failures
        if f.service in tracked and (severity_threshold is None or f.severity <= severity_threshold)
    ]
    failed = {f.caused_by for f in failures}
    by_id = {d.deployment_id: d for d in world.deployments}
    first_of_env, shipped_by = _shipments(counted)
    in_window = [d for d in counted if start <= d.deployed_at < end]
    scopes = {("service", d.service) for d in counted} | {("team", teams[d.service]) for d in counted}
    scopes.add(("overall", "all"))

    def member(scope: tuple[str, str], service: str) -> bool:
        return {"service": service, "team": teams[service], "overall": "all"}[scope[0]] == scope[1]

    leads = [
        (d.service, (d.deployed_at - world.changes[c].first_commit_at).total_seconds())
        for c, d in shipped_by.items()
        if start <= d.deployed_at < end
        and d.deployment_id not in first_of_env
        and d.service in exposes_changes
        and world.changes[c].first_commit_at is not None
        and d.deployed_at >= world.changes[c].first_commit_at
    ]
    recoveries = [
        (f.service, (f.resolved_at - by_id[f.caused_by].deployed_at).total_seconds())
        for f in failures
        if f.resolved_at is not None and start <= f.resolved_at < end
    ]
    measures = {}
    for scope in scopes:
        deployments = [d for d in in_window if member(scope, d.service)]
        scope_leads = [v for service, v in leads if member(scope, service)]
        scope_recoveries = [v for service, v in recoveries if member(scope, service)]
        tracking = any(member(scope, s) for s in tracked)
        tracked_deployments = [d for d in deployments if d.service in tracked]
        measures[(*scope, "deployment_frequency")] = (len(deployments) / window_days, len(deployments))
        measures[(*scope, "change_failure_rate")] = (
            sum(d.deployment_id in failed for d in tracked_deployments) / len(tracked_deployments)
            if tracking and tracked_deployments
            else None,
            len(tracked_deployments) if tracking else None,
        )
        measures[(*scope, "rework_rate")] = (
            sum(d.is_fix or d.is_rollback for d in deployments) / len(deployments) if deployments else None,
            len(deployments),
        )
        measures[(*scope, "lead_time")] = (percentile(scope_leads, 0.5) if scope_leads else None, len(scope_leads))
        measures[(*scope, "recovery_time")] = (
            percentile(scope_recoveries, 0.5) if tracking and scope_recoveries else None,
            len(scope_recoveries) if tracking else None,
        )
    return measures


def daily_metrics(world: World, severity_threshold: int | None = None) -> dict[tuple, dict]:
    """Metrics per (service, environment, UTC day), keyed like the `dora_metrics_daily` mart."""
    return metrics(world, "day", "service_environment", severity_threshold)


def metrics(
    world: World,
    grain: str,
    level: str,
    severity_threshold: int | None = None,
    configured_tracking: dict[str, bool] | None = None,
) -> dict[tuple, dict]:
    """Metrics per bucket of `grain` (day, week, month) at `level` (service_environment, team,
    overall), keyed by the level's dimensions and the bucket's first day. Where the bucket's scope
    does not track failures, its failure columns are None."""
    buckets: dict[tuple, _Bucket] = defaultdict(_Bucket)
    teams = {s.name: s.team for s in world.services}
    counted = sorted((d for d in world.deployments if is_counted(d)), key=lambda d: d.deployed_at)
    by_id = {d.deployment_id: d for d in world.deployments}

    def key(service: str, environment: str, when: datetime) -> tuple:
        start = period_start(when.date(), grain)
        if level == "service_environment":
            return service, environment, start
        if level == "team":
            return teams.get(service, "unassigned"), start
        return (start,)

    tracked = failure_tracking(world, configured_tracking)
    failures = [
        f
        for f in world.failures
        if f.service in tracked and (severity_threshold is None or f.severity <= severity_threshold)
    ]
    failed_deployments = {f.caused_by for f in failures}

    def scope_tracks(k: tuple) -> bool:
        if level == "service_environment":
            return k[0] in tracked
        if level == "team":
            return any(teams.get(s, "unassigned") == k[0] for s in tracked)
        return bool(tracked)

    first_of_env, shipped_by = _shipments(counted)
    for d in counted:
        b = buckets[key(d.service, d.environment, d.deployed_at)]
        b.deployments += 1
        b.deployment_days.add(d.deployed_at.date())
        b.rework += d.is_fix or d.is_rollback
        b.tracked_deployments += d.service in tracked
        b.failed += d.deployment_id in failed_deployments

    exposes_changes = {s.name for s in world.services if s.exposes_changes}
    for change_id, d in shipped_by.items():
        if d.deployment_id in first_of_env or d.service not in exposes_changes:
            continue  # first_deployment_backlog, or no tool of the service knows pull requests
        change = world.changes[change_id]
        b = buckets[key(d.service, d.environment, d.deployed_at)]
        starts = {
            "lead_time": change.first_commit_at,
            "merge_to_deploy": change.merged_at,
            "open_to_deploy": change.opened_at,
        }
        for metric, started in starts.items():
            if started is not None and d.deployed_at >= started:
                b.durations[metric].append((d.deployed_at - started).total_seconds())

    for f in failures:
        cause = by_id[f.caused_by]
        if f.resolved_at is None:
            buckets[key(f.service, cause.environment, f.detected_at)].open_failures += 1
            continue
        b = buckets[key(f.service, cause.environment, f.resolved_at)]
        b.resolved += 1
        b.durations["recovery_time"].append((f.resolved_at - cause.deployed_at).total_seconds())
        b.durations["time_to_restore"].append((f.resolved_at - f.detected_at).total_seconds())

    rows = {}
    for k, b in buckets.items():
        days = days_in_period(k[-1], grain)
        tracks = scope_tracks(k)
        row: dict[str, float | int | bool | None] = {
            "deployment_count": b.deployments,
            "deployment_days": len(b.deployment_days),
            "deployments_per_day": b.deployments / days,
            "days_in_period": days,
            "rework_deployment_count": b.rework,
            "tracks_failures": tracks,
            "failure_tracked_deployment_count": b.tracked_deployments,
            "failed_deployment_count": b.failed if tracks else None,
            "change_failure_rate": b.failed / b.tracked_deployments if tracks and b.tracked_deployments else None,
            "rework_rate": b.rework / b.deployments if b.deployments else None,
            "open_failures": b.open_failures if tracks else None,
        }
        for metric, values in b.durations.items():
            for stat, value in summarize(values).items():
                row[f"{metric}_{stat}" if stat == "n" else f"{metric}_{stat}_seconds"] = value
        if not tracks:
            for metric in ("recovery_time", "time_to_restore"):
                row[f"{metric}_n"] = None
        row["failures_resolved"] = b.resolved if tracks else None
        rows[k] = row
    return rows
