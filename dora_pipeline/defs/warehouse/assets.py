"""dbt models as Dagster assets; dbt tests (raw source tests too) as asset checks."""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetsDefinition, AssetSpec
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from dora_pipeline import source_runs, warehouse
from dora_pipeline.defs.locking import WarehouseLock
from dora_pipeline.defs.warehouse.project import dbt_vars, vars_argument
from dora_pipeline.settings import Settings


class LayeredTranslator(DagsterDbtTranslator):
    """dbt assets grouped by layer, as the project is laid out: `staging_<source>`, `intermediate`,
    `marts` and `reconciliation`, so the Dagster graph reads like the dbt project."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props.get("resource_type") not in ("model", "seed"):
            return spec
        folders = props.get("fqn", [])[1:-1]  # [project, *folders, name]
        if not folders or folders[0] == "marts":
            group = "reconciliation" if folders[1:2] == ["reconciliation"] else "marts"
        elif folders[0] == "staging":
            group = f"staging_{folders[1]}" if len(folders) > 1 else "staging"
        else:
            group = folders[0]
        return spec.replace_attributes(group_name=group)


TRANSLATOR = LayeredTranslator(settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True))


def warehouse_assets(project: DbtProject, sources: list[str], settings: Settings) -> AssetsDefinition:
    """The manifest was parsed for `sources`; the build passes the same set."""

    # The manifest as a dict: dagster-dbt caches manifests read by path for the whole process,
    # and it changes with the enabled sources.
    manifest = json.loads(Path(project.manifest_path).read_text())

    @dbt_assets(manifest=manifest, project=project, dagster_dbt_translator=TRANSLATOR)
    def dora_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse_lock: WarehouseLock):
        source_runs.ensure_table(settings)  # read by the freshness models, even before any run
        # dbt's unit tests check the models' logic, not the data: they run in CI (tests/), not in
        # every scheduled refresh
        dbt_args = ["build", "--exclude-resource-type", "unit_test", "--vars", vars_argument(dbt_vars(sources))]
        with warehouse.build_file_lock(settings):  # dbt writes the build file from its own process
            yield from dbt.cli(dbt_args, context=context, target_path=settings.dbt_target_dir).stream()

    return dora_dbt_models
