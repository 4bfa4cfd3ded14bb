"""dbt models as Dagster assets; dbt tests (raw source tests too) as asset checks."""

import json
from pathlib import Path

import dlt
from dagster import AssetExecutionContext, AssetsDefinition
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from dora_pipeline import source_runs
from dora_pipeline.catalog import load_catalog
from dora_pipeline.settings import Settings

TRANSLATOR = DagsterDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True))


def dbt_vars(sources: list[str]) -> dict:
    """Metric settings from dlt's configuration (`[dora]` in .dlt/config.toml or `DORA__*`)."""
    return {
        "dora_sources": sources,
        **load_catalog().dbt_vars(),
        "failure_window_days": dlt.config.get("dora.failure_window_days", int) or 7,
        "failure_severity_threshold": dlt.config.get("dora.failure_severity_threshold", int),
    }


def warehouse_assets(project: DbtProject, sources: list[str], settings: Settings) -> AssetsDefinition:
    """The manifest was parsed for `sources`; the build passes the same set."""

    # The manifest as a dict: dagster-dbt caches manifests read by path for the whole process,
    # and it changes with the enabled sources.
    manifest = json.loads(Path(project.manifest_path).read_text())

    @dbt_assets(manifest=manifest, project=project, dagster_dbt_translator=TRANSLATOR)
    def dora_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource):
        source_runs.ensure_table(settings.build_path)  # read by the freshness models, even before any run
        yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars(sources))], context=context).stream()

    return dora_dbt_models
