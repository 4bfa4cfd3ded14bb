"""The refresh job and its schedule.

Steps run in one process, one after the other: the sources' extraction (the sources side by side
in threads, see `ingestion/assets.py`), dbt's build, publishing, the report, the health check.
Each depends on the one before, so processes of their own would only add their start-up.
"""

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job, in_process_executor

dora_refresh = define_asset_job(
    "dora_refresh",
    selection=AssetSelection.all(),
    executor_def=in_process_executor,
    description="Extract every configured source, then build and test the warehouse.",
)

daily_refresh = ScheduleDefinition(
    name="dora_refresh_daily",
    job=dora_refresh,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    # Off until someone turns it on (UI toggle or `dagster schedule start dora_refresh_daily`):
    # `dagster dev` on a laptop with no source configured should not start failing runs at 05:00.
    default_status=DefaultScheduleStatus.STOPPED,
)
