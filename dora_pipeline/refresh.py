"""Run the `dora_refresh` Dagster job in this process and turn a failure into one clear line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dagster import DagsterEventType, DagsterInstance, ExecuteInProcessResult
from dagster._utils.error import SerializableErrorInfo

from dora_pipeline import source_runs, warehouse
from dora_pipeline.defs import build_definitions
from dora_pipeline.refresh_lock import refresh_lock
from dora_pipeline.settings import Settings
from dora_pipeline.source_runs import SourceFailure

# The last step of the job: it fails only when a source could not be extracted, after publishing.
HEALTH_STEP = "extraction_health"

# Exceptions whose own message is the clearest thing to show a user.
USER_FACING = {
    "RefreshRunning",
    "SourceError",
    "SourceHTTPError",
    "SourceRecordError",
    "ConfigFieldMissingException",
    "DbtCliError",
    "WarehouseConfigError",
    "ExtractionProcessDied",
}


class RefreshFailed(Exception):
    def __init__(self, message: str, hint: str, result: ExecuteInProcessResult):
        super().__init__(message)
        self.hint = hint
        self.result = result


@dataclass
class RefreshOutcome:
    run_id: str
    materialized: int
    checks_passed: int
    # Sources that could not be extracted: the warehouse was still built and published from their
    # last good data, but the refresh as a whole failed.
    failed_sources: list[SourceFailure] = field(default_factory=list)
    # Records the sources sent that could not be loaded as they were (marts.rejected_records).
    rejected_records: int = 0


def run_refresh(settings: Settings, log_level: str = "WARNING", progress: bool = False) -> RefreshOutcome:
    """Materialise every asset of `dora_refresh` against the configured sources; with `progress`,
    print a line to stderr as each step ends."""
    if settings.is_postgres:
        with warehouse.connect(settings):  # an unreachable server fails here, in one line, not in every step
            pass
    with refresh_lock(settings):
        defs = build_definitions(settings)
        job = defs.resolve_job_def("dora_refresh")
        loggers: dict = {"console": {"config": {"log_level": log_level}}}
        if progress:
            loggers["progress"] = {}
        run_config = {"loggers": loggers}
        with DagsterInstance.get() as instance:
            result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
    failed_steps = {e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE}
    if not result.success and failed_steps != {HEALTH_STEP}:
        message, hint = explain_failure(result)
        raise RefreshFailed(message, hint, result)
    materialized = len(result.get_asset_materialization_events())
    checks = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    passed = sum(1 for e in checks if e.event_specific_data.passed)
    failed_sources = source_runs.failures(settings, result.run_id) if failed_steps else []
    rejected = source_runs.rejected_in(settings, result.run_id)
    return RefreshOutcome(result.run_id, materialized, passed, failed_sources, rejected)


def explain_failure(result: ExecuteInProcessResult) -> tuple[str, str]:
    for event in result.all_events:
        if event.event_type != DagsterEventType.STEP_FAILURE:
            continue
        error = event.step_failure_data.error
        cause = _user_facing(error)
        if cause is not None:
            first_line = re.sub(rf"^[\w.]*{cause.cls_name}: ", "", cause.message.strip().splitlines()[0])
            return first_line, _hint(cause.cls_name, first_line)
        return f"step {event.step_key} failed: {error.message.strip().splitlines()[0]}", "run with --debug for details"
    return "the refresh failed", "run with --debug for details"


def _user_facing(error: SerializableErrorInfo | None) -> SerializableErrorInfo | None:
    """The innermost error in the cause/context chain worth showing as it is."""
    found = None
    while error is not None:
        if error.cls_name in USER_FACING:
            found = error
        error = error.cause or error.context
    return found


def _hint(cls_name: str, message: str) -> str:
    if cls_name == "ConfigFieldMissingException":
        return "set the missing keys in .dlt/config.toml / .dlt/secrets.toml or as SOURCES__<SOURCE>__<KEY>"
    if cls_name == "WarehouseConfigError":
        return "check [destination.postgres.credentials] (README: 'A server warehouse (PostgreSQL)')"
    if cls_name == "DbtCliError":
        return "see the dbt output above, or run `dbt build` in dbt_project/"
    if cls_name == "ExtractionProcessDied":
        return "run again: the sources loaded before it ended are merged, not duplicated (the system log says why)"
    if "HTTP 401" in message:
        return "check the source's api token"
    if "HTTP 404" in message:
        return "check the configured ids and base_url"
    return "run with --debug for the full traceback"
