"""The ground-truth calculator on a tiny hand-made history, with every number worked by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dora_pipeline.sandbox.ground_truth import daily_metrics, percentile
from dora_pipeline.sandbox.world import (
    DEFAULT_AS_OF,
    FAILED,
    SUCCEEDED,
    Change,
    Deployment,
    Failure,
    Service,
    World,
    build_world,
)

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)


def deployment(i: str, at: datetime, changes=(), status=SUCCEEDED, env="production", **flags) -> Deployment:
    return Deployment(
        i, "svc", env, env, env == "production", at, status, tuple(changes), 3 * len(changes) or 1, "sha", **flags
    )


def change(i: str, first_commit: datetime | None, merged: datetime) -> Change:
    return Change(i, "svc", 1, "t", "feature/x", "a", first_commit, merged - H, merged, "feature")


def test_percentile_interpolates_like_percentile_cont():
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([1, 2, 3, 4], 0.9) == pytest.approx(3.7)
    assert percentile([100, 200, 400], 0.75) == 300
    assert percentile([5], 0.9) == 5


def test_daily_metrics_on_a_hand_made_history():
    changes = {
        "backlog": change("backlog", T0 - 100 * H, T0 - 50 * H),
        "c1": change("c1", T0 - 10 * H, T0 - 2 * H),  # lead 24 h + 10 h
        "c2": change("c2", T0 - 20 * H, T0 - 3 * H),  # shipped twice: first counted wins
        "c3": change("c3", None, T0 + 20 * H),  # no first commit: only variants
        "fix": change("fix", T0 + 25 * H, T0 + 26 * H),
    }
    deployments = [
        deployment("d0", T0, ["backlog"]),  # first counted: backlog
        deployment("d1", T0 + 24 * H, ["c1", "c2"]),
        deployment("uat", T0 + 23 * H, ["c3"], env="uat"),  # not production
        deployment("d2f", T0 + 25 * H, ["c3"], status=FAILED),  # failed, not counted
        deployment("d2", T0 + 27 * H, ["c3", "c2"]),
        deployment("d3", T0 + 28 * H, ["fix"], is_fix=True),
    ]
    failures = [
        Failure("f1", "svc", "x", 2, T0 + 26 * H, T0 + 29 * H, "d1", "d3"),
        Failure("f2", "svc", "x", 4, T0 + 30 * H, None, "d2", None),
    ]
    service = Service("svc", "team", "id", [], True, ("gearset",), 1)
    world = World(1, T0, T0 + 48 * H, [service], changes, deployments, failures)

    rows = daily_metrics(world)

    day1, day2 = ("svc", "production", date(2026, 3, 2)), ("svc", "production", date(2026, 3, 3))
    assert set(rows) == {day1, day2}
    assert rows[day1]["deployment_count"] == 1 and rows[day1]["lead_time_n"] == 0
    second = rows[day2]
    assert second["deployment_count"] == 3  # d1, d2, d3
    assert second["failed_deployment_count"] == 2  # d1 (f1) and d2 (f2)
    assert second["change_failure_rate"] == pytest.approx(2 / 3)
    assert second["rework_rate"] == pytest.approx(1 / 3)
    # lead times: c1 = 34 h, c2 = 44 h (shipped by d1), fix = 3 h; c3 has no first commit
    assert second["lead_time_n"] == 3
    assert second["lead_time_median_seconds"] == 34 * 3600
    assert second["lead_time_mean_seconds"] == pytest.approx((34 + 44 + 3) / 3 * 3600)
    assert second["open_to_deploy_n"] == 4
    # f1: recovery from d1 (T0+24h) to T0+29h = 5 h; restore from detection T0+26h = 3 h
    assert second["recovery_time_n"] == 1 and second["recovery_time_median_seconds"] == 5 * 3600
    assert second["time_to_restore_median_seconds"] == 3 * 3600
    assert second["open_failures"] == 1

    severe_only = daily_metrics(world, severity_threshold=2)
    assert severe_only[day2]["failed_deployment_count"] == 1 and severe_only[day2]["open_failures"] == 0


def test_history_grows_with_as_of_and_never_rewrites_the_past():
    world = build_world()
    early, late = world.view(DEFAULT_AS_OF - timedelta(days=30)), world.view(DEFAULT_AS_OF)
    assert set(d.deployment_id for d in early.deployments) < set(d.deployment_id for d in late.deployments)
    assert build_world().deployments == world.deployments  # deterministic for a seed
    reopened = [f for f in early.failures if f.resolved_at is None]
    assert any(
        f.resolved_at is not None
        for f in late.failures
        if f in reopened or f.failure_id in {r.failure_id for r in reopened}
    )
