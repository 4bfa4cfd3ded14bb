"""dlt source for the Gearset Automation API's CI jobs (`docs/sources.md`, section 2).

What the API can tell: a job's current `State` (`Idle`/`Running`), snapshotted each refresh into
`ci_job_status_history`, and, through the Reporting API v2 CI-job-runs report (async,
`Api-Version: 2`), each run's start and end, `JobType` (`Deployment` or `Validation`), whether
the deployment succeeded and the head commit. What it cannot tell: the target org and the
service, so `job_services` (job id -> service name, default the job id) and `job_environments`
(job id -> environment, default `production`) come from configuration; and pull requests or
failures, so a CI-job service has deployment frequency only. Validation runs are kept as test
deployments (they deploy nothing). The client never POSTs run requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import quote

import dlt
from dlt.sources import DltResource

from dora_pipeline.sources import fields
from dora_pipeline.sources.batches import TypedBatches, schema_marker
from dora_pipeline.sources.gearset import (
    DEFAULT_BASE_URL,
    GearsetReportingClient,
    ReportRequest,
    format_timestamp,
    report_windows,
)
from dora_pipeline.sources.http import SourceError, concurrently
from dora_pipeline.sources.rejections import convert_each

SOURCE = "gearset_automation"


@dlt.source(name=SOURCE, max_table_nesting=0)
def gearset_automation_source(
    ci_job_ids: list = dlt.config.value,
    api_token: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    job_services: dict | None = None,
    job_environments: dict | None = None,
    start_date: str | None = None,
    lookback_days: float = 30.0,
    window_days: int = 366,
    poll_interval_seconds: float = 5.0,
    first_poll_seconds: float = 1.0,
    operation_timeout_seconds: float = 900.0,
    max_concurrent_operations: int = 500,
    max_concurrent_requests: int = 8,
) -> list[DltResource]:
    start = fields.parse_timestamp(SOURCE, start_date, "configuration", f"sources.{SOURCE}.start_date") or (
        datetime.now(UTC) - timedelta(days=365)
    )
    jobs = [str(j) for j in fields.as_list(ci_job_ids)]

    def client() -> GearsetReportingClient:
        if not jobs:
            raise SourceError(SOURCE, "no CI job ids configured", hint=f"set sources.{SOURCE}.ci_job_ids")
        if not api_token:
            raise SourceError(SOURCE, "no api token configured", hint=f"set sources.{SOURCE}.api_token")
        return GearsetReportingClient(
            base_url,
            api_token,
            poll_interval_seconds,
            operation_timeout_seconds,
            source=SOURCE,
            max_concurrent_operations=max_concurrent_operations,
            max_concurrent_requests=max_concurrent_requests,
            first_poll_seconds=first_poll_seconds,
        )

    cursor = dlt.sources.incremental("end_time", initial_value=start, lag=lookback_days * 86400)
    placement = (job_services or {}, job_environments or {})
    return [ci_job_status_history(client, jobs), ci_job_runs(client, jobs, placement, window_days, cursor)]


@dlt.resource(
    primary_key=("job_id", "observed_at"),
    write_disposition="append",
    columns={
        "job_id": {"data_type": "text"},
        "observed_at": {"data_type": "timestamp"},
        "state": {"data_type": "text"},
    },
)
def ci_job_status_history(client, jobs: list[str]) -> Iterator[list[dict]]:
    yield schema_marker()
    api = client()
    try:
        observed = datetime.now(UTC)

        def state_of(job: str) -> dict:
            body = api.api.request(
                "GET",
                f"/public/automation/continuous-integration-jobs/{quote(job, safe='')}/status",
                headers={"Api-Version": "1"},
            )
            return {"job_id": job, "observed_at": observed, "state": body.get("State")}

        # one request a job, independent of each other: side by side, as many as the client allows
        yield concurrently(state_of, jobs, api.max_concurrent_requests)
    finally:
        api.close()


RUN_COLUMNS = {
    "id": {"data_type": "text"},
    "job_id": {"data_type": "text"},
    "service": {"data_type": "text"},
    "environment": {"data_type": "text"},
    "start_time": {"data_type": "timestamp"},
    "end_time": {"data_type": "timestamp"},
    "deployment_succeeded": {"data_type": "bool"},
    "job_type": {"data_type": "text"},
    "trigger": {"data_type": "text"},
    "run_outcome": {"data_type": "text"},
    "error_message": {"data_type": "text"},
    "head_commit_hash": {"data_type": "text"},
}
_RUN_BATCHES = TypedBatches(RUN_COLUMNS, "id")


@dlt.resource(primary_key="id", write_disposition="merge", columns=RUN_COLUMNS)
def ci_job_runs(
    client,
    jobs: list[str],
    placement: tuple[dict, dict],
    window_days: int,
    cursor: dlt.sources.incremental[datetime] = dlt.sources.incremental("end_time"),  # noqa: B008 - dlt idiom
) -> Iterator[list[dict]]:
    yield schema_marker()
    services, environments = placement
    api = client()
    requests = (
        ReportRequest(
            f"/public/reporting/continuous-integration/job/{quote(job, safe='')}/runs",
            params,
            "Runs",
            f"CI job runs report for job {job} from {params['StartDate']} to {params['EndDate']}",
            "2",
            job,
        )
        for job in jobs
        for start, end in report_windows(cursor.start_value, datetime.now(UTC), window_days)
        for params in ({"StartDate": format_timestamp(start), "EndDate": format_timestamp(end)},)
    )

    def converted(request: ReportRequest, runs: list) -> list[dict]:
        job = request.tag
        place = {"service": services.get(job, job), "environment": environments.get(job, "production")}
        return convert_each(SOURCE, "ci_job_runs", runs, partial(_run_row, job, **place), "Id", service_key=job)

    try:  # every job and window at once, `max_concurrent_operations` at a time
        yield from _RUN_BATCHES.regroup(converted(request, runs) for request, runs in api.run_reports(requests))
    finally:
        api.close()


def _run_row(job: str, run: dict, *, service: str, environment: str) -> dict:
    record = f"run {run.get('Id')} of CI job {job}"
    return {
        "id": str(fields.require(SOURCE, run.get("Id"), record, "Id")),
        "job_id": job,
        "service": service,
        "environment": environment,
        "start_time": fields.parse_timestamp(SOURCE, run.get("StartTimeUtc"), record, "StartTimeUtc"),
        "end_time": fields.parse_timestamp(SOURCE, run.get("EndTimeUtc"), record, "EndTimeUtc", required=True),
        "deployment_succeeded": bool(run.get("DeploymentSucceeded")),
        "job_type": run.get("JobType"),
        "trigger": run.get("Trigger"),
        "run_outcome": run.get("RunOutcome"),
        "error_message": run.get("ErrorMessage"),
        "head_commit_hash": run.get("HeadCommitHash"),
    }
