"""The Dagster definitions: lineage from raw tables to staging, checks, job and schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DefaultScheduleStatus

from dora_pipeline.defs import build_definitions
from dora_pipeline.defs.warehouse.project import dbt_executable
from dora_pipeline.settings import DBT_PROJECT_DIR

RAW_TO_STAGING = {
    ("gearset", "pipelines"): "stg_gearset__pipelines",
    ("gearset", "environments"): "stg_gearset__environments",
    ("gearset", "deployments"): "stg_gearset__deployments",
    ("gearset", "deployment_pull_requests"): "stg_gearset__deployment_pull_requests",
    ("gearset", "reported_bugs"): "stg_gearset__reported_bugs",
    ("gitlab", "projects"): "stg_gitlab__projects",
    ("gitlab", "environments"): "stg_gitlab__environments",
    ("gitlab", "deployments"): "stg_gitlab__deployments",
    ("gitlab", "deployment_merge_requests"): "stg_gitlab__deployment_merge_requests",
    ("gitlab", "merge_requests"): "stg_gitlab__merge_requests",
    ("gitlab", "incidents"): "stg_gitlab__incidents",
    ("gitlab", "dora_metrics"): "stg_gitlab__dora_metrics",
    ("multitudes", "deployments"): "stg_multitudes__deployments",
    ("gitclear", "pull_requests"): "stg_gitclear__pull_requests",
    ("gitclear", "report_points"): "stg_gitclear__report_points",
    ("gearset_automation", "ci_job_runs"): "stg_gearset_automation__ci_job_runs",
}


def test_each_raw_table_feeds_the_staging_model_that_reads_it(settings):
    graph = build_definitions(settings).resolve_asset_graph()
    for raw, model in RAW_TO_STAGING.items():
        staging = AssetKey(["staging", model])
        assert graph.get(staging).parent_keys == {AssetKey(list(raw))}


def test_building_the_definitions_leaves_the_sources_working_folders_alone(settings):
    """The UI's code server or a daemon's run builds the definitions while a refresh extracts: a
    source's dlt working folder, mid-run and without saved state yet, survives it."""
    from dora_pipeline.sources.registry import enabled_sources

    folders = [settings.dlt_pipelines_dir / f"dora_{source}" for source in enabled_sources()]
    for folder in folders:
        (folder / "normalize").mkdir(parents=True)
        (folder / "normalize" / "in_progress.parquet").write_bytes(b"rows")
    build_definitions(settings)
    assert [(f / "normalize" / "in_progress.parquet").exists() for f in folders] == [True] * len(folders)


def test_only_configured_sources_are_built(settings, monkeypatch):
    monkeypatch.setenv("SOURCES__GITLAB__PRIVATE_TOKEN", "t")
    graph = build_definitions(settings).resolve_asset_graph()
    raw_sources = {k.path[0] for k in graph.get_all_asset_keys() if len(k.path) == 2} - {
        "staging",
        "intermediate",
        "marts",
        "dora_ops",
    }
    assert raw_sources == {"gitlab"}
    assert AssetKey(["staging", "stg_gearset__deployments"]) not in graph.get_all_asset_keys()
    assert AssetKey(["marts", "dora_metrics_daily"]) in graph.get_all_asset_keys()


def test_dbt_tests_are_asset_checks_and_the_refresh_is_scheduled(settings):
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    checked = {key.asset_key for key in graph.asset_check_keys}
    assert AssetKey(["marts", "dora_metrics_daily"]) in checked
    assert AssetKey(["gearset", "deployments"]) in checked  # source tests too
    job = defs.resolve_job_def("dora_refresh")
    assert job.executor_def.name == "in_process"
    assert [s.job_name for s in defs.schedules] == ["dora_refresh"]
    assert defs.schedules[0].default_status == DefaultScheduleStatus.STOPPED  # as the README says


def test_dbt_docs_generate_offline_and_every_model_and_column_is_described(settings, tmp_path):
    settings.export()
    project = str(DBT_PROJECT_DIR)
    done = subprocess.run(
        [
            dbt_executable(),
            "docs",
            "generate",
            "--empty-catalog",
            "--project-dir",
            project,
            "--profiles-dir",
            project,
            "--target-path",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "index.html").exists()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")]
    assert len(models) > 40
    assert [m["name"] for m in models if not m["description"].strip()] == []
    undescribed = [
        f"{m['name']}.{c}" for m in models for c, col in m["columns"].items() if not col["description"].strip()
    ]
    assert undescribed == []


def test_dbt_assets_are_grouped_by_layer(settings):
    graph = build_definitions(settings).resolve_asset_graph()
    groups = {
        ("staging", "stg_gitlab__deployments"): "staging_gitlab",
        ("staging", "stg_gearset__deployments"): "staging_gearset",
        ("intermediate", "int_deployments"): "intermediate",
        ("marts", "dora_metrics_daily"): "marts",
        ("marts", "dora_benchmarks"): "marts",
        ("marts", "gitlab_dora_reconciliation"): "reconciliation",
        ("gitlab", "deployments"): "raw_gitlab",
    }
    assert {key: graph.get(AssetKey(list(key))).group_name for key in groups} == groups
    assert "default" not in {graph.get(k).group_name for k in graph.materializable_asset_keys}


def test_dg_loads_the_same_definitions(tmp_path):
    """The modern `dg` workflow (pyproject's [tool.dg]) beside workspace.yaml: `dg check defs` loads
    dora_pipeline.definitions, and `dg list defs` shows the job and its schedule."""
    dg = Path(sys.executable).parent / "dg"
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    checked = subprocess.run([str(dg), "check", "defs"], cwd=root, env=env, capture_output=True, text=True)
    assert checked.returncode == 0 and "All definitions loaded successfully" in checked.stdout, checked.stderr[-2000:]
    listed = subprocess.run([str(dg), "list", "defs", "--json"], cwd=root, env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "dora_refresh_daily" in listed.stdout and "dora_refresh" in listed.stdout
