"""dlt sources as Dagster assets, keyed `[source, table]` like the dbt sources that read them.

dagster-dbt keys a dbt source table `[source_name, table_name]`; giving each dlt resource the same
key is what draws lineage from a raw table to the staging model that reads it.
"""

import dlt
from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, AssetSpec
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData

from dora_pipeline.settings import Settings
from dora_pipeline.sources.registry import SOURCES


class RawTableTranslator(DagsterDltTranslator):
    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        spec = super().get_asset_spec(data)
        return spec.replace_attributes(
            key=AssetKey([data.resource.source_name, data.resource.name]),
            deps=[],
            group_name=f"raw_{data.resource.source_name}",
        )


def raw_pipeline(source: str, settings: Settings) -> dlt.Pipeline:
    """The dlt pipeline that loads one source into its own `raw_<source>` schema."""
    return dlt.pipeline(
        pipeline_name=f"dora_{source}",
        destination=dlt.destinations.duckdb(str(settings.build_path)),
        dataset_name=f"raw_{source}",
        pipelines_dir=str(settings.dlt_pipelines_dir),
    )


def raw_assets(name: str, settings: Settings) -> AssetsDefinition:
    """One multi-asset per source: every selected dlt resource is an asset."""
    spec = SOURCES[name]

    # The placeholder source describes the resources; the run builds the source again so dlt
    # injects the real configuration and secrets.
    @dlt_assets(
        dlt_source=spec.describe(),
        dlt_pipeline=raw_pipeline(name, settings),
        name=f"{name}_raw",
        dagster_dlt_translator=RawTableTranslator(),
    )
    def load_raw(context: AssetExecutionContext, dlt: DagsterDltResource):
        yield from dlt.run(context=context, dlt_source=spec.build())

    return load_raw
