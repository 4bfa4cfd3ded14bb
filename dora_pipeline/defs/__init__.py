"""Dagster definitions for one warehouse, one folder per domain; built by a function so the CLI and
the tests can build them for their own paths and configuration."""

from __future__ import annotations

from dagster import Definitions, colored_console_logger
from dagster_dlt import DagsterDltResource

from dora_pipeline.defs.ingestion.assets import raw_assets
from dora_pipeline.defs.jobs import daily_refresh, dora_refresh
from dora_pipeline.defs.locking import WarehouseLock
from dora_pipeline.defs.progress import step_progress
from dora_pipeline.defs.publishing.assets import publication_assets
from dora_pipeline.defs.warehouse.assets import warehouse_assets
from dora_pipeline.defs.warehouse.project import dbt_cli, prepared_project
from dora_pipeline.settings import Settings
from dora_pipeline.sources.registry import enabled_sources


def build_definitions(settings: Settings | None = None) -> Definitions:
    settings = settings or Settings.from_env()
    settings.export()
    sources = enabled_sources()
    project = prepared_project(sources)
    warehouse = warehouse_assets(project, sources, settings)
    marts = [key for key in warehouse.keys if key.path[0] == "marts"]
    return Definitions(
        assets=[
            raw_assets(sources, settings),
            warehouse,
            *publication_assets(settings, marts),
        ],
        jobs=[dora_refresh],
        loggers={"console": colored_console_logger, "progress": step_progress},
        schedules=[daily_refresh],
        resources={
            "dlt": DagsterDltResource(),
            "dbt": dbt_cli(project),
            "warehouse_lock": WarehouseLock(duckdb_path=str(settings.duckdb_path)),
        },
    )
