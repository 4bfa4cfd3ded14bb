"""The demo path end to end: loopback HTTP, dlt load, dbt build, Dagster materialisation,
held against the ground truth the simulator computes independently of the dbt models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey
from warehouse_checks import (
    LOOK_BACK_RELATIONS,
    build_horizon,
    differences,
    extraction_windows,
    mart_rows,
    records_loaded_since,
    string_values_containing,
    table_fingerprint,
)

from dora_pipeline.refresh import run_refresh
from dora_pipeline.sandbox.ground_truth import (
    failure_tracking,
    is_counted,
    performance_measures,
    performance_sample_sizes,
)
from dora_pipeline.sandbox.world import DEFAULT_AS_OF, build_world
from dora_pipeline.settings import DBT_PROJECT_DIR
from dora_pipeline.sources.registry import SOURCES

LOOKBACK = timedelta(days=30)  # the source's default look-back
RECENT_LOOKBACK = timedelta(hours=24)  # Gearset's: every environment read again from a day before


def installed_wheel(tmp_path: Path) -> Path:
    """A venv holding dora-pipeline as `pip install` of the wheel built from this checkout puts it:
    no editable install and no checkout in reach, so the package must carry its dbt project and
    templates. Its dependencies are this environment's (a `.pth` line, which adds the folder
    without running the editable install's hook there), not downloaded again."""
    root = Path(__file__).resolve().parents[1]
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(root)],
        check=True,
        capture_output=True,
    )
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = wheels.glob("dora_pipeline-*.whl")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True
    )
    return venv


def test_demo_from_the_built_wheel_prints_progress_and_builds_marts_equal_to_ground_truth(tmp_path: Path):
    venv = installed_wheel(tmp_path)
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import dora_pipeline.settings as s; print(s.DBT_PROJECT_DIR)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert where.startswith(str(venv)) and where.endswith("dora_pipeline/dbt_project"), where

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DORA__"))}
    env |= {"DORA_DUCKDB_PATH": str(tmp_path / "demo.duckdb"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    run_in = tmp_path / "elsewhere"
    run_in.mkdir()
    done = subprocess.run(
        [str(venv / "bin" / "dora-pipeline"), "demo"], env=env, cwd=run_in, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "assets materialised" in done.stdout
    assert "billing-api" in done.stdout and str(tmp_path / "demo.duckdb") in done.stdout
    printed = (done.stdout + done.stderr).splitlines()
    assert len(printed) < 60, printed  # progress and the summary, not dbt's per-node lines
    # Progress: each source with its requests and rows, then dbt's layers with models and tests.
    for name in SOURCES:
        line = next(line for line in printed if line.strip().startswith(f"extract and load {name} "))
        assert "done" in line and " requests " in line and line.endswith(" rows"), line
    for layer in ("staging", "intermediate", "marts", "reconciliation"):
        assert any(line.split()[:1] == [layer] and "tests passed" in line for line in printed), layer

    truth_world = build_world().view(DEFAULT_AS_OF)
    for grain in ("day", "week", "month"):
        for level in ("service_environment", "team", "overall"):
            assert differences(tmp_path / "demo.duckdb", truth_world, grain=grain, level=level) == [], (grain, level)
    rows = mart_rows(tmp_path / "demo.duckdb")
    assert len(rows) > 300
    assert {r["team"] for r in rows.values()} == {s.team for s in truth_world.services}


def test_refresh_of_all_five_sources_materialises_everything_and_keeps_tokens_out(reference_refresh):
    settings, view, outcome = reference_refresh.settings, reference_refresh.world, reference_refresh.outcome

    # The dora_ops tables are external assets: every ingestion step writes its outcome and rejections.
    assert reference_refresh.external == {AssetKey(["dora_ops", t]) for t in ("source_runs", "rejected_records")}
    assert outcome.materialized == reference_refresh.materializable
    assert outcome.checks_passed == reference_refresh.checks
    assert differences(settings.duckdb_path, view) == []
    for token in reference_refresh.tokens:
        assert string_values_containing(settings.duckdb_path, token) == []
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        counted = dict(
            con.execute(
                "select service, sum(records) from marts.data_quality "
                "where entity = 'deployment' and outcome = 'counted' group by service"
            ).fetchall()
        )
        raw_schemas = {s for (s,) in con.execute("select distinct schema_name from duckdb_tables()").fetchall()}
    assert {f"raw_{name}" for name in SOURCES} <= raw_schemas  # every source was enabled and loaded
    # The sources are extracted side by side: Gearset's reports wait while the others fetch.
    windows = extraction_windows(settings, outcome.run_id)
    assert set(windows) == set(SOURCES)
    assert all(
        max(windows[a][0], windows[b][0]) < min(windows[a][1], windows[b][1]) for a in windows for b in windows
    ), windows
    truth = Counter(d.service for d in view.deployments if is_counted(d))
    assert counted == dict(truth)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        measured = {
            (r[0], r[1], r[2]): r[3:]
            for r in con.execute(
                "select scope_level, scope, metric, value, previous_value, sample_size, previous_sample_size "
                "from marts.performance_levels"
            ).fetchall()
        }
    # The window, the window before it (the report's change arrows) and what each is computed from.
    columns = [
        performance_measures(view),
        performance_measures(view, windows_back=1),
        performance_sample_sizes(view),
        performance_sample_sizes(view, windows_back=1),
    ]
    expected = {key: tuple(column[key] for column in columns) for key in columns[0]}
    assert set(measured) == set(expected)
    for key, values in expected.items():
        assert measured[key] == tuple(None if v is None else pytest.approx(v) for v in values), key
    assert any(previous != value for value, previous, *_ in measured.values() if previous is not None)

    # Backlog changes keep their plain durations beside the reason they are left out (Gearset lists
    # every change of a deployment with its timestamps; GitLab and GitClear only those in the window).
    pipelines = [s.name for s in view.services_in("gearset")]
    first_of_env: dict[tuple, object] = {}
    for d in sorted((d for d in view.deployments if is_counted(d)), key=lambda d: d.deployed_at):
        first_of_env.setdefault((d.service, d.environment), d)
    backlog = [view.changes[c] for d in first_of_env.values() if d.service in pipelines for c in d.change_ids]
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        kept = con.execute(
            "select count(*), count(lead_time_seconds), count(merge_to_deploy_seconds), "
            "count(*) filter (where merge_to_deploy_exclusion_reason = 'first_deployment_backlog') "
            "from marts.changes where lead_time_exclusion_reason = 'first_deployment_backlog' "
            "and service in (select unnest(?))",
            [pipelines],
        ).fetchall()[0]
    with_commit = sum(c.first_commit_at is not None for c in backlog)
    assert kept == (len(backlog), with_commit, len(backlog), len(backlog)) and with_commit > 0

    # A service whose tools record no failures is `not_tracked`, never Elite at 0 %.
    tracked = failure_tracking(view)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        failure_levels = con.execute(
            "select scope, metric, level from marts.performance_levels "
            "where scope_level = 'service' and metric in ('change_failure_rate', 'recovery_time')"
        ).fetchall()
        not_tracked_rows = dict(
            con.execute(
                "select service, records from marts.data_quality where outcome = 'failures_not_tracked'"
            ).fetchall()
        )
    services = {scope for scope, _, _ in failure_levels}
    assert tracked and services - tracked  # the sandbox has both kinds
    for scope, metric, level in failure_levels:
        assert (level == "not_tracked") == (scope not in tracked), (scope, metric, level)
    assert set(not_tracked_rows) == services - tracked


def test_the_refresh_history_reads_back_from_a_fresh_dagster_instance(reference_refresh):
    """The run's events went through the pooled event log (event_log.py); a new instance on the
    same DAGSTER_HOME, as the UI opens it, reads back the run, every materialisation and check."""
    from dagster import AssetCheckKey, DagsterEventType, DagsterInstance, DagsterRunStatus

    from dora_pipeline.event_log import PooledSqliteEventLogStorage

    outcome = reference_refresh.outcome
    with DagsterInstance.from_config(str(reference_refresh.dagster_home)) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert instance.get_run_by_id(outcome.run_id).status == DagsterRunStatus.SUCCESS
        materialized = instance.all_logs(outcome.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        keys = {event.dagster_event.asset_key for event in materialized}
        assert len(keys) == reference_refresh.materializable == outcome.materialized
        assert instance.get_latest_materialization_event(AssetKey(["marts", "deployments"])).run_id == outcome.run_id
        evaluations = [
            e
            for e in instance.all_logs(outcome.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
            if e.dagster_event.event_specific_data.passed
        ]
        assert len(evaluations) == reference_refresh.checks
        # the checks' own history, which the UI's asset pages read, has this run's result too
        for evaluation in evaluations[:5]:
            data = evaluation.dagster_event.event_specific_data
            (latest,) = instance.event_log_storage.get_asset_check_execution_history(
                AssetCheckKey(data.asset_key, data.check_name), limit=1
            )
            assert (latest.run_id, latest.status.value) == (outcome.run_id, "SUCCEEDED")


def test_vendor_reconciliations_match_the_vendors_definitions(reference_refresh):
    settings, view = reference_refresh.settings, reference_refresh.world
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        statuses = dict(
            con.execute("select status, count(*) from marts.gitlab_dora_reconciliation group by status").fetchall()
        )
        days_with_deployments = con.execute(
            "select count(*) from marts.gitlab_dora_reconciliation "
            "where metric = 'deployment_frequency' and gitlab_value > 0"
        ).fetchall()[0][0]
    expected_days = {
        (d.service, d.deployed_at.date())
        for d in view.deployments
        if "gitlab" in view.service(d.service).tools and d.is_production and not d.is_test and d.status != "failed"
    }
    assert statuses == {"match": statuses["match"]} and statuses["match"] > 0
    assert days_with_deployments == len(expected_days)

    # Gearset's dashboard way, recomputed here from the simulated world
    pipelines = {s.name for s in view.services_in("gearset")}
    severe = {f.caused_by for f in view.failures if f.severity <= 2}
    per_day: dict[tuple, list] = {}
    for d in view.deployments:
        if d.service in pipelines and is_counted(d):
            per_day.setdefault((d.service, d.deployed_at.date()), []).append(d)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        rows = {
            (r[0], r[1]): r[2:]
            for r in con.execute(
                "select service, metric_date, gearset_deployments, gearset_lead_time_mean_seconds, "
                "gearset_change_failure_rate from marts.gearset_dashboard_reconciliation"
            ).fetchall()
        }
    assert set(rows) == set(per_day)
    for key, deployments in per_day.items():
        leads = [
            (d.deployed_at - (c.first_commit_at or c.opened_at)).total_seconds()
            for d in deployments
            for c in (view.changes[i] for i in d.change_ids)
        ]
        count, lead_mean, cfr = rows[key]
        assert count == len(deployments)
        assert lead_mean == pytest.approx(sum(leads) / len(leads)) if leads else lead_mean is None
        assert cfr == pytest.approx(sum(d.deployment_id in severe for d in deployments) / len(deployments))


def test_a_deployment_reported_by_gitlab_and_multitudes_counts_once(reference_refresh):
    settings, view = reference_refresh.settings, reference_refresh.world
    shared = [s.name for s in view.services if {"gitlab", "multitudes"} <= set(s.tools)]
    truth = sum(
        1
        for d in view.deployments
        if d.service in shared and d.is_production and not d.is_test and d.status != "failed"
    )
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        by_source = dict(
            con.execute(
                "select source, count(*) filter (where is_counted) from marts.deployments "
                "where service in (select unnest(?)) group by source",
                [shared],
            ).fetchall()
        )
        duplicates = con.execute(
            "select count(*) from marts.deployments where exclusion_reason = 'duplicate' "
            "and source = 'multitudes' and service in (select unnest(?))",
            [shared],
        ).fetchall()[0][0]
    assert by_source == {"gitlab": truth, "multitudes": 0}
    assert duplicates >= truth


def test_a_second_run_with_nothing_new_changes_nothing(settings, sandbox, point_at_sandbox):
    """The sources write the build file side by side on the first refresh; the second finds
    nothing new and asks Gearset again only for its look-back. dbt builds into the warehouse's
    one target folder and reuses its parse."""
    outcome = run_refresh(settings)
    assert not outcome.failed_sources
    assert differences(settings.duckdb_path, sandbox.world.view(sandbox.as_of)) == []
    before = table_fingerprint(settings.duckdb_path)
    first_run_requests = len(sandbox.gearset.requests)
    project_target = set((DBT_PROJECT_DIR / "target").iterdir())
    first_build = json.loads((settings.dbt_target_dir / "run_results.json").read_text())["metadata"]

    loaded_since = build_horizon(settings.build_path, "int_refresh_loads")["loaded_through"]
    run_refresh(settings)

    assert table_fingerprint(settings.duckdb_path) == before
    # The look-backs read their last 30 days again, every record as the sandbox served it before:
    # none of them moves the horizon, so dbt rebuilds nothing.
    reloaded = records_loaded_since(settings.build_path, loaded_since)
    for relation in LOOK_BACK_RELATIONS:
        assert reloaded[relation] > 10, reloaded
    again = build_horizon(settings.build_path, "int_refresh_loads")
    assert (again["changed_records"], again["changed_relations"], again["earliest_new"]) == (0, None, None), again
    assert again["horizon"].year == 9999
    assert set((DBT_PROJECT_DIR / "target").iterdir()) == project_target  # no folder per build
    second_build = json.loads((settings.dbt_target_dir / "run_results.json").read_text())["metadata"]
    assert second_build["invocation_id"] != first_build["invocation_id"]
    logs = settings.dbt_target_dir.glob("dbt.log*")  # dbt rolls its log over at 10 MB
    events = [json.loads(line) for log in logs for line in log.read_text().splitlines()]
    parsing = {e["info"]["name"] for e in events if e["info"]["invocation_id"] == second_build["invocation_id"]}
    assert "PartialParsingSkipParsing" in parsing, "the second build parsed the project again"
    starts = [
        datetime.fromisoformat(r["params"]["StartDate"].replace("Z", "+00:00"))
        for r in sandbox.gearset.requests[first_run_requests:]
        if r["path"] == "/public/reporting/deployments"
    ]
    pipelines = {s.name for s in sandbox.world.services_in("gearset")}
    newest = max(d.deployed_at for d in sandbox.world.view(sandbox.as_of).deployments if d.service in pipelines)
    assert starts and min(starts) == newest - LOOKBACK


def test_incremental_run_fetches_only_the_look_back_window_and_matches_truth(settings, sandbox, point_at_sandbox):
    pipelines = {s.name for s in sandbox.world.services_in("gearset")}
    # Observe first while a bug is open; it is resolved by the second run (a changed record).
    bug = next(
        f
        for f in sandbox.world.failures
        if f.service in pipelines
        and f.resolved_at
        and datetime(2026, 9, 1, tzinfo=UTC) < f.detected_at < DEFAULT_AS_OF - LOOKBACK
    )
    first_as_of = bug.detected_at + timedelta(seconds=1)
    sandbox.set_as_of(first_as_of)
    run_refresh(settings)
    first_run_requests = len(sandbox.gearset.requests)
    served_before = sandbox.gearset.served["deployments"]
    marks = {name: len(state.requests) for name, state in sandbox.states.items()}
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        gitlab_cursor = con.execute("select max(updated_at) from raw_gitlab.deployments").fetchall()[0][0]
        multitudes_cursor = con.execute("select max(deployed_at) from raw_multitudes.deployments").fetchall()[0][0]

    sandbox.set_as_of(DEFAULT_AS_OF)
    point_at_sandbox()
    run_refresh(settings)

    second = [
        r
        for r in sandbox.gearset.requests[first_run_requests:]
        if r["method"] == "POST" and r["path"] == "/public/reporting/deployments"
    ]
    newest_first = max(d.deployed_at for d in sandbox.world.view(first_as_of).deployments if d.service in pipelines)
    window_start = min(datetime.fromisoformat(r["params"]["StartDate"].replace("Z", "+00:00")) for r in second)
    assert window_start == newest_first - LOOKBACK
    # Only deployments that carry bugs (production, in a pipeline that tracks failures) can change
    # once recorded: the look-back asks for those environments alone, every environment only from
    # a day before the newest deployment seen.
    recent_from = newest_first - RECENT_LOOKBACK
    bug_environments = {s.production.env_id for s in sandbox.world.services_in("gearset") if s.tracks_failures}
    for r in second:
        starts_at = datetime.fromisoformat(r["params"]["StartDate"].replace("Z", "+00:00"))
        narrowed = r["params"].get("EnvironmentIds")
        if narrowed is None:
            assert starts_at == recent_from, r
        else:
            assert starts_at == window_start and {narrowed} <= bug_environments, r
    assert sum("EnvironmentIds" in r["params"] for r in second) == len(bug_environments) > 0
    now_visible = [d for d in sandbox.world.view(DEFAULT_AS_OF).deployments if d.service in pipelines]
    looked_back = [d for d in now_visible if d.deployed_at >= window_start]
    refetched = [d for d in looked_back if d.deployed_at >= recent_from or d.env_id in bug_environments]
    assert sandbox.gearset.served["deployments"] - served_before == len(refetched) < len(looked_back)

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

    # the other sources also asked only for what is new (minus their look-back)
    gitlab = [r["params"] for r in sandbox.requests("gitlab")[marks["gitlab"] :] if r["path"].endswith("/deployments")]
    assert gitlab and {datetime.fromisoformat(p["updated_after"]) for p in gitlab} == {
        gitlab_cursor - timedelta(hours=1)
    }
    gitclear = [r["params"] for r in sandbox.requests("gitclear")[marks["gitclear"] :] if r["path"].endswith("/audits")]
    assert gitclear and all(
        p["start_date"] >= (first_as_of - LOOKBACK - timedelta(days=10)).date().isoformat() for p in gitclear
    )
    # Multitudes has no date filter: newest first, up to the page that reaches past the look-back
    multitudes_pages = [r for r in sandbox.requests("multitudes")[marks["multitudes"] :]]
    listed = sandbox.states["multitudes"].records()
    since = (multitudes_cursor if multitudes_cursor.tzinfo else multitudes_cursor.replace(tzinfo=UTC)) - LOOKBACK
    first_older = next(i for i, r in enumerate(listed) if datetime.fromisoformat(r["deployedAt"]) < since)
    assert len(multitudes_pages) == first_older // 100 + 1 < -(-len(listed) // 100)


def _count(path: Path, table: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"select count(*) from {table}").fetchall()[0][0]
