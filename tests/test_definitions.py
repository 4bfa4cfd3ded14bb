"""The Dagster definitions: lineage from raw tables to staging, checks, job and schedule."""

from __future__ import annotations

from dagster import AssetKey

from dora_pipeline.defs import build_definitions

RAW_TO_STAGING = {
    "pipelines": "stg_gearset__pipelines",
    "environments": "stg_gearset__environments",
    "deployments": "stg_gearset__deployments",
    "deployment_pull_requests": "stg_gearset__deployment_pull_requests",
    "reported_bugs": "stg_gearset__reported_bugs",
}


def test_each_raw_table_feeds_the_staging_model_that_reads_it(settings):
    graph = build_definitions(settings).resolve_asset_graph()
    for table, model in RAW_TO_STAGING.items():
        staging = AssetKey(["staging", model])
        assert graph.get(staging).parent_keys == {AssetKey(["gearset", table])}


def test_dbt_tests_are_asset_checks_and_the_refresh_is_scheduled(settings):
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    checked = {key.asset_key for key in graph.asset_check_keys}
    assert AssetKey(["marts", "dora_metrics_daily"]) in checked
    assert AssetKey(["gearset", "deployments"]) in checked  # source tests too
    job = defs.resolve_job_def("dora_refresh")
    assert job.executor_def.name == "in_process"
    assert [s.job_name for s in defs.schedules] == ["dora_refresh"]
