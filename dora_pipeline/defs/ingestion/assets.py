"""dlt sources as Dagster assets, keyed `[source, table]` like the dbt sources that read them.

dagster-dbt keys a dbt source table `[source_name, table_name]`; giving each dlt resource the same
key is what draws lineage from a raw table to the staging model that reads it.

All the sources are extracted in one step, side by side (`raw_assets`). A source that cannot be
extracted (a revoked token, an outage) does not stop the refresh or the other sources: its thread
records the failure (`dora_ops.source_runs`), makes sure its raw tables exist (typed and
empty on a first run), and reports its tables with `extraction: failed`, so the warehouse is
built from the last good data of that source and the others. The job's last step then fails the
run, naming the source (see `publishing/assets.py`).

The step extracts in a child process of its own that exits before dbt's build starts, so the
memory an extraction takes is not held beside dbt (see `child_process.py`).
"""

import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dlt
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, build_dlt_asset_specs
from dagster_dlt.translator import DltResourceTranslatorData
from dlt.sources import DltSource

from dora_pipeline import source_runs, warehouse
from dora_pipeline.defs.ingestion.child_process import run_in_child
from dora_pipeline.defs.ingestion.freed_memory import release_freed_memory, share_allocator_arenas
from dora_pipeline.defs.locking import WarehouseLock
from dora_pipeline.settings import Settings
from dora_pipeline.sources import rejections
from dora_pipeline.sources.batches import load_as_arrow, schema_marker
from dora_pipeline.sources.http import requests_sent, user_message
from dora_pipeline.sources.registry import SOURCES

# dlt writes DuckDB's load packages as Parquet (through pyarrow) rather than its default SQL INSERT
# statements: at ten times the demo's size Gearset's load took 3.6 GB and 28 s with the default,
# 0.4 GB and 7 s with Parquet (bench/load_format.py). dlt loads Parquet into PostgreSQL only
# through the ADBC driver; without it, PostgreSQL takes dlt's own default, INSERT statements.
LOADER_FILE_FORMAT = {"duckdb": "parquet", "postgres": "insert_values"}


class RawTableTranslator(DagsterDltTranslator):
    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        spec = super().get_asset_spec(data)
        return spec.replace_attributes(
            key=AssetKey([data.resource.source_name, data.resource.name]),
            deps=[],
            group_name=f"raw_{data.resource.source_name}",
        )


TRANSLATOR = RawTableTranslator()
# The one step that extracts every source.
EXTRACTION_STEP = "extract_sources"


def described_pipeline(source: str, settings: Settings) -> dlt.Pipeline:
    """The pipeline the asset definitions name; it is never run.

    Dagster builds the definitions in every process that loads them (the UI's code server, a run
    the daemon launches) while a refresh may be extracting, and dlt wipes a pipeline's working
    folder when a pipeline is built there without saved state: on a first run, and between dlt's
    `drop()` and its state's restore from the warehouse. Built in the shared folder, loading the
    definitions would wipe the folder of a source being extracted. So the definitions name one
    built in a folder of their own, removed at once (they read only its name and destination), and
    a source's extraction builds the real one."""
    with tempfile.TemporaryDirectory(prefix="dora-dlt-") as folder:
        return dlt.pipeline(
            pipeline_name=f"dora_{source}",
            destination=warehouse.dlt_destination(settings),
            dataset_name=f"raw_{source}",
            pipelines_dir=folder,
        )


def raw_pipeline(source: str, settings: Settings) -> dlt.Pipeline:
    """The dlt pipeline that loads one source into its own `raw_<source>` schema; its writes take
    turns with other processes' (see `warehouse.serialize_writes`)."""
    pipeline = dlt.pipeline(
        pipeline_name=f"dora_{source}",
        destination=warehouse.dlt_destination(settings),
        dataset_name=f"raw_{source}",
        pipelines_dir=str(settings.dlt_pipelines_dir),
    )
    return warehouse.serialize_writes(pipeline, settings)


def empty_tables(source: DltSource) -> DltSource:
    """A source of the same name whose resources load nothing but their typed tables."""
    resources = []
    for resource in source.selected_resources.values():
        table = resource.compute_table_schema()
        resources.append(
            dlt.resource(
                [schema_marker()],
                name=resource.name,
                table_name=table["name"],
                columns=list(table["columns"].values()),
                write_disposition=table.get("write_disposition", "append"),
            )
        )

    def tables_only() -> list:
        return resources

    return dlt.source(tables_only, name=source.name, max_table_nesting=0)()


def raw_assets(sources: list[str], settings: Settings) -> AssetsDefinition:
    """One multi-asset for every enabled source: each selected dlt resource is an asset, and the
    step extracts the sources side by side, each in a thread of its own.

    A refresh spends most of its extraction waiting on the APIs: at a million deployments one new
    day's Gearset reports and CI-job-runs reports each wait two 5 s polls, while GitLab's step
    sends a thousand requests. One after another, the waits added up (about 20 s of a 50 s
    extraction); side by side they overlap each other and the other sources' work. dlt runs a
    pipeline per thread (each thread builds and runs its own), and a source's failure stays its
    own: the others load and the warehouse is built from its last good data."""
    # Placeholder sources describe the resources; a run builds each source again so dlt injects
    # the real configuration and secrets.
    described = {name: (SOURCES[name].describe(), described_pipeline(name, settings)) for name in sources}
    specs = {
        name: build_dlt_asset_specs(source, pipeline, TRANSLATOR) for name, (source, pipeline) in described.items()
    }

    @multi_asset(
        name=EXTRACTION_STEP,
        specs=[spec for name in sources for spec in specs[name]],
        can_subset=True,
        description="Extracts every enabled source with dlt and loads its raw tables, the sources side by side.",
    )
    def extract_sources(context: AssetExecutionContext, dlt: DagsterDltResource, warehouse_lock: WarehouseLock):
        chosen = [name for name in sources if {spec.key for spec in specs[name]} & context.selected_asset_keys]
        source_runs.ensure_table(settings)  # created once, before the sources' threads record into it

        def extract_side_by_side() -> Iterator[Extracted]:
            share_allocator_arenas()
            load_as_arrow(LOADER_FILE_FORMAT[settings.warehouse] == "parquet")
            with ThreadPoolExecutor(max_workers=max(len(chosen), 1), thread_name_prefix="extract") as pool:
                running = [pool.submit(_load_source, context, dlt, name, settings) for name in chosen]
                for done in as_completed(running):
                    yield done.result()

        for extracted in run_in_child(extract_side_by_side):
            for level, line in extracted.log_lines:
                getattr(context.log, level)(line)
            yield from extracted.results

    return extract_sources


@dataclass
class Extracted:
    """One source's outcome, as the extraction's process hands it to the step: the
    materializations of its tables and the lines for the run's log."""

    results: list[MaterializeResult]
    log_lines: list[tuple[str, str]] = field(default_factory=list)  # (level, line)


def _load_source(context: AssetExecutionContext, dlt: DagsterDltResource, name: str, settings: Settings) -> Extracted:
    """Extract and load one source, in its own thread: the materializations of its tables, each
    with the source's requests, rows loaded and seconds (the progress line reads them)."""
    spec = SOURCES[name]
    started, clock = datetime.now(UTC), time.monotonic()
    rejections.drain(name)  # nothing left from an earlier attempt in this process
    rejections.watch_for(name, source_runs.still_rejected(settings, name))
    sent_before = requests_sent(name)
    file_format = LOADER_FILE_FORMAT[settings.warehouse]
    try:
        results = list(
            dlt.run(
                context=context,
                dlt_source=spec.build(),
                dlt_pipeline=raw_pipeline(name, settings),
                dagster_dlt_translator=TRANSLATOR,
                loader_file_format=file_format,
            )
        )
    except Exception as exc:  # noqa: BLE001 - any failure of one source leaves the others to load
        rejections.drain(name)  # nothing of this attempt was loaded; its rejections come again
        rejections.loaded_again(name)
        error = user_message(exc)
        log_line = ("error", f"{name} could not be extracted; the warehouse keeps its last good data: {error}")
        pipeline = raw_pipeline(name, settings)  # afresh: nothing of the failed attempt in memory
        pipeline.drop_pending_packages()
        pipeline.run(empty_tables(spec.describe()), loader_file_format=file_format)
        source_runs.record(settings, context.run_id, name, started, error)
        release_freed_memory()
        summary = _summary(name, requests_sent(name) - sent_before, 0, time.monotonic() - clock)
        keys = [key for key in context.selected_asset_keys if key.path[0] == name]
        failed = [
            MaterializeResult(asset_key=key, metadata={"extraction": "failed", "error": error, **summary})
            for key in keys
        ]
        return Extracted(failed, [log_line])
    release_freed_memory()  # what this source freed, while the others go on
    source_runs.record(settings, context.run_id, name, started, None)
    source_runs.clear_rejections(settings, name, rejections.loaded_again(name))
    rejected = rejections.drain(name)
    source_runs.record_rejections(settings, context.run_id, rejected)
    log_lines = []
    if rejected:
        log_lines.append(("warning", f"{name}: {len(rejected)} records could not be loaded and were set aside"))
    loaded = [(r.metadata or {}).get("rows_loaded") for r in results]
    rows = sum(int(getattr(value, "value", value) or 0) for value in loaded)
    summary = _summary(name, requests_sent(name) - sent_before, rows, time.monotonic() - clock)
    loaded_tables = [
        MaterializeResult(asset_key=result.asset_key, metadata={**(result.metadata or {}), **summary})
        for result in results
    ]
    return Extracted(loaded_tables, log_lines)


def _summary(name: str, requests: int, rows: int, seconds: float) -> dict:
    """What every table of a source carries about the source's whole extraction."""
    return {
        "source": name,
        "source_requests": MetadataValue.int(requests),
        "source_rows": MetadataValue.int(rows),
        "source_seconds": MetadataValue.float(round(seconds, 2)),
    }
