"""The refresh job and its schedule.

Steps run in one process, one after the other, unless the command line asks for them side by side
(`refresh_job(parallel=True)`, `parallel_steps`, see refresh.py): then each step runs in a process
of its own and the sources' extractions overlap. DuckDB allows one writer per file, so on DuckDB
the steps' processes take turns at the build file (`warehouse.build_file_lock`); PostgreSQL takes
their writes at once.
"""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
    in_process_executor,
    multiprocess_executor,
)

# Side by side, every source's step at once: they wait on the APIs far more than they compute. Step
# processes fork from a server that has imported Dagster, dlt and dbt once (`forkserver`), instead
# of each importing them again (about 5 s a process on two cores).
PARALLEL_EXECUTOR = multiprocess_executor.configured(
    {"max_concurrent": 8, "start_method": {"forkserver": {"preload_modules": ["dora_pipeline.defs"]}}},
    name="parallel_steps",
)


def refresh_job(parallel: bool = False):
    return define_asset_job(
        "dora_refresh",
        selection=AssetSelection.all(),
        executor_def=PARALLEL_EXECUTOR if parallel else in_process_executor,
        description="Extract every configured source, then build and test the warehouse.",
    )


dora_refresh = refresh_job()

daily_refresh = ScheduleDefinition(
    name="dora_refresh_daily",
    job=dora_refresh,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    # Off until someone turns it on (UI toggle or `dagster schedule start dora_refresh_daily`):
    # `dagster dev` on a laptop with no source configured should not start failing runs at 05:00.
    default_status=DefaultScheduleStatus.STOPPED,
)
