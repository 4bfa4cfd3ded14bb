"""The demo path end to end: loopback HTTP, dlt load, dbt build, Dagster materialisation,
held against the ground truth the simulator computes independently of the dbt models."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from warehouse_checks import differences, mart_rows, string_values_containing, table_fingerprint

from dora_pipeline.refresh import run_refresh
from dora_pipeline.sandbox.world import DEFAULT_AS_OF, build_world

LOOKBACK = timedelta(days=30)  # the source's default look-back


def test_demo_command_builds_marts_equal_to_ground_truth(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DORA__"))}
    env |= {"DORA_DUCKDB_PATH": str(tmp_path / "demo.duckdb"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    cli = Path(sys.executable).parent / "dora-pipeline"
    done = subprocess.run([str(cli), "demo"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "assets materialised" in done.stdout
    assert "billing-api" in done.stdout and str(tmp_path / "demo.duckdb") in done.stdout

    truth_world = build_world().view(DEFAULT_AS_OF)
    assert differences(tmp_path / "demo.duckdb", truth_world) == []
    rows = mart_rows(tmp_path / "demo.duckdb")
    assert len(rows) > 300
    assert {r["team"] for r in rows.values()} == {"payments", "customer"}


def test_refresh_materialises_every_asset_and_keeps_tokens_out(settings, sandbox, point_at_sandbox):
    outcome = run_refresh(settings)

    assert outcome.materialized == 20  # 5 raw tables + 15 dbt models
    assert outcome.checks_passed >= 20
    assert differences(settings.duckdb_path, sandbox.world.view(sandbox.as_of)) == []
    assert string_values_containing(settings.duckdb_path, sandbox.gearset.token) == []


def test_second_run_without_new_data_changes_nothing(settings, sandbox, point_at_sandbox):
    run_refresh(settings)
    before = table_fingerprint(settings.duckdb_path)
    first_run_requests = len(sandbox.gearset.requests)

    run_refresh(settings)

    assert table_fingerprint(settings.duckdb_path) == before
    starts = [
        datetime.fromisoformat(r["params"]["StartDate"].replace("Z", "+00:00"))
        for r in sandbox.gearset.requests[first_run_requests:]
        if r["method"] == "POST"
    ]
    newest = max(d.deployed_at for d in sandbox.world.view(sandbox.as_of).deployments)
    assert starts and min(starts) == newest - LOOKBACK


def test_incremental_run_fetches_only_the_look_back_window_and_matches_truth(settings, sandbox, point_at_sandbox):
    # Observe first while a bug is open; it is resolved by the second run (a changed record).
    bug = next(
        f
        for f in sandbox.world.failures
        if f.resolved_at and datetime(2026, 9, 1, tzinfo=UTC) < f.detected_at < DEFAULT_AS_OF - LOOKBACK
    )
    first_as_of = bug.detected_at + timedelta(seconds=1)
    sandbox.set_as_of(first_as_of)
    run_refresh(settings)
    first_run_requests = len(sandbox.gearset.requests)
    served_before = sandbox.gearset.deployments_served

    sandbox.set_as_of(DEFAULT_AS_OF)
    point_at_sandbox()
    run_refresh(settings)

    second = [r for r in sandbox.gearset.requests[first_run_requests:] if r["method"] == "POST"]
    newest_first = max(d.deployed_at for d in sandbox.world.view(first_as_of).deployments)
    window_start = min(datetime.fromisoformat(r["params"]["StartDate"].replace("Z", "+00:00")) for r in second)
    assert window_start == newest_first - LOOKBACK
    now_visible = sandbox.world.view(DEFAULT_AS_OF).deployments
    refetched = [d for d in now_visible if d.deployed_at >= window_start]
    assert sandbox.gearset.deployments_served - served_before == len(refetched) < len(now_visible)

    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        for table, key in (
            ("deployments", "id"),
            ("reported_bugs", "id"),
            ("deployment_pull_requests", "deployment_id, number"),
        ):
            total_rows, distinct = con.execute(
                f"select count(*), count(distinct ({key})) from raw_gearset.{table}"
            ).fetchall()[0]
            assert total_rows == distinct, table
        resolved_at = con.execute(
            "select resolved_at from raw_gearset.reported_bugs where id = ?", [bug.failure_id]
        ).fetchall()[0][0]
    assert resolved_at == bug.resolved_at
    assert _count(settings.duckdb_path, "raw_gearset.deployments") == len(now_visible)
    assert differences(settings.duckdb_path, sandbox.world.view(DEFAULT_AS_OF)) == []


def _count(path: Path, table: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"select count(*) from {table}").fetchall()[0][0]
