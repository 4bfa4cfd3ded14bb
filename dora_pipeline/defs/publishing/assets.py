"""The published warehouse: the DuckDB file analysts open and the Parquet exports BI tools read."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from dora_pipeline import source_runs
from dora_pipeline.defs.locking import WarehouseLock
from dora_pipeline.publish import publish
from dora_pipeline.report import build_report
from dora_pipeline.settings import Settings


def publication_assets(settings: Settings, marts: list[AssetKey]) -> list[AssetsDefinition]:
    @asset(
        name="published_warehouse",
        group_name="publishing",
        deps=marts,
        description="Checkpoints the build warehouse, exports every mart to Parquet and publishes both atomically.",
    )
    def published_warehouse(context: AssetExecutionContext, warehouse_lock: WarehouseLock) -> MaterializeResult:
        publication = publish(settings)
        context.log.info(f"published {publication.warehouse} and {publication.exports}")
        return MaterializeResult(
            metadata={
                "warehouse": MetadataValue.path(str(publication.warehouse)),
                "exports": MetadataValue.path(str(publication.exports)),
                "tables": MetadataValue.json(publication.tables),
            }
        )

    @asset(
        name="dora_report",
        group_name="publishing",
        deps=[published_warehouse],
        description="The self-contained HTML report with charts, built from the published warehouse.",
    )
    def dora_report(warehouse_lock: WarehouseLock) -> MaterializeResult:
        report = build_report(settings, settings.report_path)
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(str(report.path)),
                "charts": report.charts,
                "size_bytes": report.size_bytes,
            }
        )

    @asset(
        name="extraction_health",
        group_name="publishing",
        deps=[dora_report],
        description="Fails the refresh, after publishing, when a source could not be extracted, naming it and "
        "how old the data the warehouse keeps for it is, so a scheduler notices.",
    )
    def extraction_health(context: AssetExecutionContext, warehouse_lock: WarehouseLock) -> MaterializeResult:
        failed = source_runs.failures(settings, context.run_id)
        if failed:
            raise Failure(
                description="; ".join(f.describe() for f in failed),
                metadata={"failed_sources": MetadataValue.json([f.source for f in failed])},
            )
        return MaterializeResult(metadata={"failed_sources": MetadataValue.json([])})

    return [published_warehouse, dora_report, extraction_health]
