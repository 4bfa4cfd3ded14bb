"""The refresh job and its schedule.

Steps run in one process, one after the other: DuckDB allows a single writer per file, and dlt
(in the step's process) and dbt (a subprocess) both write the warehouse. With a server warehouse
that rule no longer binds, and the command line may run the job with each step in its own process,
the sources' extractions side by side (`refresh_job(parallel=True)`, see refresh.py).
"""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
    in_process_executor,
    multiprocess_executor,
)


def refresh_job(parallel: bool = False):
    return define_asset_job(
        "dora_refresh",
        selection=AssetSelection.all(),
        executor_def=multiprocess_executor if parallel else in_process_executor,
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
