"""dlt source for the Gearset Reporting API v3 (`docs/sources.md`, section 1).

Resources and tables (dataset `raw_gearset`):
- `pipelines`, `environments`: merged on `id` every run (small).
- `deployments`, `deployment_pull_requests`, `reported_bugs`: three transformers over one
  hidden resource, `deployment_reports`, that runs the asynchronous deployments report per pipeline
  and time window. One report feeds all three tables, so each record is fetched once; each table is
  its own Dagster asset with its own lineage.

Incremental: `deployment_reports` keeps a `dlt.sources.incremental` cursor on the deployment
`Date`, with a `lag` of `lookback_days` (default 30): every run asks again for the last 30 days
before the newest deployment seen, so bugs reported or resolved after a deployment are picked up,
and rows merge on their primary keys so nothing is duplicated. Only the environments whose
deployments carry bugs (`ReportedBugs` not null: production, with change failure management on)
can change after the fact, so the look-back asks for those alone (`EnvironmentIds`); every
environment is read again from `recent_lookback_hours` (24) before the newest deployment, for
deployments recorded late. The environments that carry bugs are remembered in the resource's state
as the reports show them; a pipeline not yet seen, or with a deployment still rejected
(`rejections.py`), gets the whole look-back. A bug change on a deployment older than the look-back
is not seen: widen `lookback_days` if bugs stay open longer.

Field names the contract marks as inferred (deployment `Id`, bug `Id`/`IdentifiedAt`, PR
`Number`/`FeatureName`/`AuthorUsername`/`Url`, `TargetOrg`) are read through `FIELDS` so a
correction is one edit; a deployment without an id is keyed on (`PipelineEnvironmentId`, `Date`),
the contract's fallback.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any
from urllib.parse import quote

import dlt
from dlt.sources import DltResource

from dora_pipeline.sources import fields
from dora_pipeline.sources.batches import TypedBatches, schema_marker
from dora_pipeline.sources.http import ApiClient, SourceError, SourceRecordError, concurrently, stream_concurrently
from dora_pipeline.sources.rejections import convert_each, still_rejected

SOURCE = "gearset"
DEFAULT_BASE_URL = "https://api.gearset.com"

FIELDS = {
    "deployment_id": ("Id", "DeploymentId"),
    "environment_id": ("Id", "EnvironmentId"),
    "org_location": ("OrgLocationType", "TargetOrgLocationType"),
    "bug_identified_at": ("IdentifiedAt", "ReportedAt", "CreatedAt"),
}


# The deployment statuses of the contract; anything else is rejected at the door.
KNOWN_STATUSES = {"Successful", "PartiallySuccessful", "Failed"}


def _first(record: dict, names: tuple[str, ...]) -> Any:
    return next((record[n] for n in names if record.get(n) is not None), None)


def format_timestamp(value: datetime) -> str:
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def parse_timestamp(value: Any, record: str, field: str, required: bool = False) -> datetime | None:
    return fields.parse_timestamp(SOURCE, value, record, field, required)


def parse_int(value: Any, record: str, field: str) -> int | None:
    return fields.parse_int(SOURCE, value, record, field)


@dataclass(frozen=True)
class ReportRequest:
    """One asynchronous report to run: where, with which parameters, and how to name it in errors."""

    path: str
    params: dict
    result_key: str
    what: str
    api_version: str
    tag: Any = None  # the caller's own reference (which pipeline or job), handed back with the rows


@dataclass
class _Operation:
    request: ReportRequest
    status_id: str
    next_poll: float
    deadline: float
    result_id: str | None = None  # set once the operation has succeeded


class GearsetReportingClient:
    """The three-step asynchronous report of the Reporting API v3, many operations at a time.

    Independent reports (one per pipeline and window) are started together, up to
    `max_concurrent_operations` in flight, and polled together; each operation is polled no more
    often than every `poll_interval_seconds` (Gearset's minimum is 5 s), and a finished one frees
    its place for the next. Waiting is shared, so N reports cost about one poll interval, not N.
    The first poll comes `first_poll_seconds` (1 s) after the start: Gearset's limit spaces polls,
    not a start and its first poll, and a small report may be done by then; waiting a whole
    interval first cost every refresh 5 s more whenever a report was still running at its first
    poll (the official v3 sample polls every 2 s).
    The HTTP requests themselves (starts, polls, results) go `max_concurrent_requests` at a time:
    against the real service each costs a round trip, and 500 pipelines' starts one after the
    other would take longer than the polling.
    """

    def __init__(
        self,
        base_url: str,
        api_token: str,
        poll_interval_seconds: float = 5.0,
        operation_timeout_seconds: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
        source: str = SOURCE,
        max_concurrent_operations: int = 500,
        max_concurrent_requests: int = 8,
        first_poll_seconds: float = 1.0,
    ):
        headers = {"Authorization": f"token {api_token}", "Api-Version": "3", "Accept": "application/json"}
        self.source = source
        self.api = ApiClient(source, base_url, headers)
        self.poll_interval_seconds = poll_interval_seconds
        self.first_poll_seconds = min(first_poll_seconds, poll_interval_seconds)
        self.operation_timeout_seconds = operation_timeout_seconds
        self.max_concurrent_operations = max(1, max_concurrent_operations)
        self.max_concurrent_requests = max(1, max_concurrent_requests)
        self._sleep = sleep

    def pipelines(self) -> list[dict]:
        return self.api.request("GET", "/public/reporting/pipelines")

    def environments(self, pipeline_id: str) -> list[dict]:
        return self.api.request("GET", "/public/reporting/environments", {"PipelineId": pipeline_id})

    def deployments_request(
        self, pipeline_id: str, start: datetime, end: datetime, environment_ids: Iterable[str] = ()
    ) -> ReportRequest:
        """The v3 deployments report of one pipeline and window, of some of its environments
        (`EnvironmentIds`, repeated) or, given none, of all."""
        params: dict[str, Any] = {
            "StartDate": format_timestamp(start),
            "EndDate": format_timestamp(end),
            "PipelineId": pipeline_id,
        }
        what = f"deployments report for pipeline {pipeline_id} from {params['StartDate']} to {params['EndDate']}"
        if environment_ids := sorted(environment_ids):
            params["EnvironmentIds"] = environment_ids
            what += f" (environments {', '.join(environment_ids)})"
        return ReportRequest("/public/reporting/deployments", params, "Deployments", what, "3", pipeline_id)

    def deployments(self, pipeline_id: str, start: datetime, end: datetime) -> list[dict]:
        """The v3 deployments report of one pipeline and window, on its own."""
        return next(self.run_reports([self.deployments_request(pipeline_id, start, end)]))[1]

    def async_report(self, path: str, params: dict, result_key: str, what: str, api_version: str) -> list[dict]:
        """One report on its own: start it, poll its status, fetch its result."""
        return next(self.run_reports([ReportRequest(path, params, result_key, what, api_version)]))[1]

    def run_reports(self, requests: Iterable[ReportRequest]) -> Iterator[tuple[ReportRequest, list[dict]]]:
        """Run every report, many at a time; yield each request with its rows as it completes."""
        pending = iter(requests)
        running: list[_Operation] = []
        parallel = self.max_concurrent_requests
        while True:
            starting = list(islice(pending, self.max_concurrent_operations - len(running)))
            running += concurrently(self._start, starting, parallel)
            if not running:
                return
            wait = min(op.next_poll for op in running) - time.monotonic()
            if wait > 0:
                self._sleep(wait)
            now = time.monotonic()
            due = [op for op in running if op.next_poll <= now]
            finished = [op for op, done in zip(due, concurrently(self._poll, due, parallel), strict=True) if done]
            for op in finished:
                running.remove(op)
            for op, rows in zip(finished, stream_concurrently(self._result, finished, parallel), strict=True):
                yield op.request, rows

    def _start(self, request: ReportRequest) -> _Operation:
        version = {"Api-Version": request.api_version}
        started = self.api.request("POST", request.path, request.params, version)
        status_id = started.get("OperationStatusId") if isinstance(started, dict) else None
        if not status_id:
            raise SourceError(self.source, f"{request.what}: the start response carried no OperationStatusId")
        now = time.monotonic()
        return _Operation(request, status_id, now + self.first_poll_seconds, now + self.operation_timeout_seconds)

    def _poll(self, op: _Operation) -> bool:
        """Poll once: True when the operation succeeded (its result can be fetched), False while it runs."""
        request, version = op.request, {"Api-Version": op.request.api_version}
        status = self.api.request(
            "GET", f"/public/operation/{quote(str(op.status_id), safe='')}/status", headers=version
        )
        state = status.get("Status") if isinstance(status, dict) else None
        if state == "Running":
            if time.monotonic() > op.deadline:
                raise SourceError(
                    self.source,
                    f"{request.what} still running after {self.operation_timeout_seconds:.0f} s",
                    hint=f"raise sources.{self.source}.operation_timeout_seconds",
                )
            op.next_poll = time.monotonic() + self.poll_interval_seconds
            return False
        if state == "Failed":
            reason = status.get("Error") or "no reason given"
            raise SourceError(self.source, f"{request.what} failed on Gearset's side: {reason}")
        if state != "Succeeded":
            raise SourceError(self.source, f"{request.what}: unexpected operation status {state!r}")
        op.result_id = status.get("OperationResultId") or op.status_id
        return True

    def _result(self, op: _Operation) -> list[dict]:
        request, version = op.request, {"Api-Version": op.request.api_version}
        result = self.api.request(
            "GET", f"/public/operation/{quote(str(op.result_id), safe='')}/result", headers=version
        )
        rows = result.get(request.result_key) if isinstance(result, dict) else None
        if not isinstance(rows, list):
            raise SourceError(self.source, f"{request.what}: the result has no {request.result_key!r} list")
        return rows

    def close(self) -> None:
        self.api.close()


def report_windows(start: datetime, end: datetime, window_days: int) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive inclusive windows, so no single report has to hold the whole history."""
    step = timedelta(days=window_days)
    while start <= end:
        stop = min(start + step - timedelta(milliseconds=1), end)
        yield start, stop
        start = stop + timedelta(milliseconds=1)


def normalize_deployment(raw: dict, pipeline_id: str) -> dict:
    """One report deployment -> its rows for the three tables, typed and validated."""
    env_id = raw.get("PipelineEnvironmentId")
    date_value = raw.get("Date")
    deployment_id = _first(raw, FIELDS["deployment_id"])
    record = f"deployment {deployment_id or '(no id)'} of pipeline {pipeline_id}"
    deployed_at = parse_timestamp(date_value, record, "Date", required=True)
    if not env_id:
        raise SourceRecordError(SOURCE, record, "PipelineEnvironmentId", "is missing")
    if raw.get("Status") not in KNOWN_STATUSES:
        raise SourceRecordError(SOURCE, record, "Status", f"is not a known deployment status: {raw.get('Status')!r}")
    if not deployment_id:
        deployment_id = hashlib.sha1(f"{env_id}|{date_value}".encode()).hexdigest()
    counts = {
        column: parse_int(raw.get(name), record, name) or 0
        for column, name in (
            ("metadata_items_count", "MetadataItemsInDeploymentCount"),
            ("vlocity_items_count", "VlocityItemsInDeploymentCount"),
            ("config_data_items_count", "ConfigDataItemsInDeploymentCount"),
        )
    }
    target = raw.get("TargetOrg")
    bugs = raw.get("ReportedBugs")
    deployment = {
        "id": str(deployment_id),
        "pipeline_id": pipeline_id,
        "environment_id": env_id,
        "date": deployed_at,
        "status": raw.get("Status"),
        **counts,
        "target_org": (target.get("Name") or target.get("OrgId")) if isinstance(target, dict) else target,
        "bugs_tracked": bugs is not None,
    }
    pull_requests = []
    for item in raw.get("DeploymentPullRequests") or []:
        promotion = item.get("PullRequest") or {}
        for pr in item.get("FeaturePullRequests") or [promotion]:
            number = parse_int(pr.get("Number"), record, "FeaturePullRequests[].Number")
            if number is None:
                raise SourceRecordError(SOURCE, record, "FeaturePullRequests[].Number", "is missing")
            pr_record = f"{record}, pull request {number}"
            pull_requests.append(
                {
                    "deployment_id": deployment["id"],
                    "number": number,
                    "promotion_number": parse_int(promotion.get("Number"), record, "PullRequest.Number"),
                    "title": pr.get("Title"),
                    "feature_name": pr.get("FeatureName"),
                    "author_username": pr.get("AuthorUsername"),
                    "url": pr.get("Url"),
                    "created_at": parse_timestamp(pr.get("CreatedAt"), pr_record, "CreatedAt"),
                    "merged_at": parse_timestamp(pr.get("MergedAt"), pr_record, "MergedAt"),
                    "first_commit_date": parse_timestamp(pr.get("FirstCommitDate"), pr_record, "FirstCommitDate"),
                }
            )
    reported_bugs = []
    for bug in bugs or []:
        bug_id = bug.get("Id")
        identified = bug.get(next((n for n in FIELDS["bug_identified_at"] if n in bug), "IdentifiedAt"))
        if not bug_id:
            bug_id = hashlib.sha1(f"{deployment['id']}|{identified}|{bug.get('Title')}".encode()).hexdigest()
        bug_record = f"{record}, reported bug {bug_id}"
        reported_bugs.append(
            {
                "id": str(bug_id),
                "deployment_id": deployment["id"],
                "title": bug.get("Title"),
                "severity": parse_int(bug.get("Severity"), bug_record, "Severity"),
                "identified_at": parse_timestamp(identified, bug_record, "IdentifiedAt"),
                "resolved_at": parse_timestamp(bug.get("ResolvedAt"), bug_record, "ResolvedAt"),
            }
        )
    return {"date": deployed_at, "deployment": deployment, "pull_requests": pull_requests, "bugs": reported_bugs}


DEPLOYMENT_COLUMNS = {
    "id": {"data_type": "text", "nullable": False},
    "pipeline_id": {"data_type": "text"},
    "environment_id": {"data_type": "text"},
    "date": {"data_type": "timestamp"},
    "status": {"data_type": "text"},
    "metadata_items_count": {"data_type": "bigint"},
    "vlocity_items_count": {"data_type": "bigint"},
    "config_data_items_count": {"data_type": "bigint"},
    "target_org": {"data_type": "text"},
    "bugs_tracked": {"data_type": "bool"},
}
PULL_REQUEST_COLUMNS = {
    "deployment_id": {"data_type": "text", "nullable": False},
    "number": {"data_type": "bigint", "nullable": False},
    "promotion_number": {"data_type": "bigint"},
    "title": {"data_type": "text"},
    "feature_name": {"data_type": "text"},
    "author_username": {"data_type": "text"},
    "url": {"data_type": "text"},
    "created_at": {"data_type": "timestamp"},
    "merged_at": {"data_type": "timestamp"},
    "first_commit_date": {"data_type": "timestamp"},
}
BUG_COLUMNS = {
    "id": {"data_type": "text", "nullable": False},
    "deployment_id": {"data_type": "text"},
    "title": {"data_type": "text"},
    "severity": {"data_type": "bigint"},
    "identified_at": {"data_type": "timestamp"},
    "resolved_at": {"data_type": "timestamp"},
}
_DEPLOYMENT_BATCHES = TypedBatches(DEPLOYMENT_COLUMNS, "id")
_PULL_REQUEST_BATCHES = TypedBatches(PULL_REQUEST_COLUMNS, ("deployment_id", "number"))
_BUG_BATCHES = TypedBatches(BUG_COLUMNS, "id")


@dataclass(frozen=True)
class GearsetSettings:
    base_url: str
    api_token: str
    pipeline_ids: tuple[str, ...]
    start_date: datetime
    end_date: datetime | None
    lookback_days: float
    recent_lookback_hours: float
    window_days: int
    poll_interval_seconds: float
    operation_timeout_seconds: float
    max_concurrent_operations: int
    max_concurrent_requests: int
    first_poll_seconds: float = 1.0

    def client(self) -> GearsetReportingClient:
        if not self.pipeline_ids:
            raise SourceError(SOURCE, "no pipeline ids configured", hint="set sources.gearset.pipeline_ids")
        if not self.api_token:
            raise SourceError(SOURCE, "no api token configured", hint="set sources.gearset.api_token")
        return GearsetReportingClient(
            self.base_url,
            self.api_token,
            self.poll_interval_seconds,
            self.operation_timeout_seconds,
            max_concurrent_operations=self.max_concurrent_operations,
            max_concurrent_requests=self.max_concurrent_requests,
            first_poll_seconds=self.first_poll_seconds,
        )


@dlt.source(name=SOURCE, max_table_nesting=0)
def gearset_source(
    pipeline_ids: list[str] = dlt.config.value,
    api_token: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    start_date: str | None = None,
    end_date: str | None = None,
    lookback_days: float = 30.0,
    recent_lookback_hours: float = 24.0,
    window_days: int = 366,
    poll_interval_seconds: float = 5.0,
    first_poll_seconds: float = 1.0,
    operation_timeout_seconds: float = 900.0,
    max_concurrent_operations: int = 500,
    max_concurrent_requests: int = 8,
) -> list[DltResource]:
    """Pipelines, environments and deployments (with their pull requests and reported bugs)."""
    if isinstance(pipeline_ids, str):
        pipeline_ids = [p.strip() for p in pipeline_ids.split(",") if p.strip()]
    start = parse_timestamp(start_date, "configuration", "sources.gearset.start_date") or (
        datetime.now(UTC) - timedelta(days=365)
    )
    settings = GearsetSettings(
        base_url=base_url,
        api_token=api_token,
        pipeline_ids=tuple(pipeline_ids),
        start_date=start,
        end_date=parse_timestamp(end_date, "configuration", "sources.gearset.end_date"),
        lookback_days=lookback_days,
        recent_lookback_hours=recent_lookback_hours,
        window_days=window_days,
        poll_interval_seconds=poll_interval_seconds,
        first_poll_seconds=first_poll_seconds,
        operation_timeout_seconds=operation_timeout_seconds,
        max_concurrent_operations=max_concurrent_operations,
        max_concurrent_requests=max_concurrent_requests,
    )
    reports = deployment_reports(
        settings, dlt.sources.incremental("date", initial_value=start, lag=lookback_days * 86400)
    )
    return [
        pipelines(settings),
        environments(settings),
        reports,
        reports | deployments,
        reports | deployment_pull_requests,
        reports | reported_bugs,
    ]


@dlt.resource(primary_key="id", write_disposition="merge", columns={c: {"data_type": "text"} for c in ("id", "name")})
def pipelines(settings: GearsetSettings) -> Iterator[list[dict]]:
    yield schema_marker()
    client = settings.client()
    try:
        wanted = set(settings.pipeline_ids)
        rows = [{"id": p.get("Id"), "name": p.get("Name")} for p in client.pipelines()]
        missing = wanted - {r["id"] for r in rows}
        if missing:
            raise SourceError(
                SOURCE,
                f"pipeline ids not found in the account: {', '.join(sorted(missing))}",
                hint="check sources.gearset.pipeline_ids",
            )
        yield [r for r in rows if r["id"] in wanted]
    finally:
        client.close()


@dlt.resource(
    primary_key="id",
    write_disposition="merge",
    columns={
        c: {"data_type": "text"} for c in ("id", "pipeline_id", "name", "org_location_type", "org_username", "org_id")
    },
)
def environments(settings: GearsetSettings) -> Iterator[list[dict]]:
    yield schema_marker()
    client = settings.client()
    try:
        for pipeline_id in settings.pipeline_ids:
            rows = []
            for env in client.environments(pipeline_id):
                env_id = _first(env, FIELDS["environment_id"])
                if not env_id:
                    raise SourceRecordError(SOURCE, f"an environment of pipeline {pipeline_id}", "Id", "is missing")
                rows.append(
                    {
                        "id": env_id,
                        "pipeline_id": pipeline_id,
                        "name": env.get("Name"),
                        "org_location_type": _first(env, FIELDS["org_location"]),
                        "org_username": env.get("OrgUsername"),
                        "org_id": env.get("OrgId"),
                    }
                )
            yield rows
    finally:
        client.close()


@dlt.resource(selected=False)
def deployment_reports(
    settings: GearsetSettings,
    cursor: dlt.sources.incremental[datetime] = dlt.sources.incremental("date"),  # noqa: B008 - dlt's idiom
) -> Iterator[list[dict]]:
    """One report per pipeline and window, from the (lagged) cursor to the end date, all run
    together (`max_concurrent_operations` at a time): the look-back of the environments that carry
    bugs, and every environment's recent deployments (`plan_reports`).

    The cursor has a default so dlt recognises it (annotations are strings in this module); the
    source passes the configured one with its initial value and look-back lag.
    """
    yield schema_marker()
    client = settings.client()
    # pipeline id -> the environments whose deployments carry bugs, as the reports showed them
    bug_environments: dict[str, list[str]] = dlt.current.resource_state().setdefault("bug_environments", {})
    # The plan reads a copy (the state grows as reports come in) without the pipelines that have a
    # record still rejected: those are read whole, so the record loads once it is fixed.
    rejected_in = {service for _, _, service in still_rejected(SOURCE)}
    seen = {} if None in rejected_in else {p: e for p, e in bug_environments.items() if p not in rejected_in}
    newest = parse_timestamp(cursor.get_state().get("last_value"), "the cursor's state", "last_value")
    start = cursor.start_value or settings.start_date
    end = settings.end_date or datetime.now(UTC)
    requests = (
        client.deployments_request(pipeline_id, window_start, window_end, environment_ids)
        for pipeline_id, window_start, window_end, environment_ids in plan_reports(settings, start, end, newest, seen)
    )
    try:
        for request, rows in client.run_reports(requests):
            converted = convert_each(
                SOURCE,
                "deployments",
                rows,
                lambda raw, pipeline_id=request.tag: normalize_deployment(raw, pipeline_id),
                key_field=FIELDS["deployment_id"][0],
                service_key=request.tag,
            )
            tracked = set(bug_environments.get(request.tag, []))
            tracked.update(r["deployment"]["environment_id"] for r in converted if r["deployment"]["bugs_tracked"])
            bug_environments[request.tag] = sorted(tracked)
            yield converted
    finally:
        client.close()


def plan_reports(
    settings: GearsetSettings,
    start: datetime,
    end: datetime,
    newest: datetime | None,
    bug_environments: dict[str, list[str]],
) -> Iterator[tuple[str, datetime, datetime, tuple[str, ...]]]:
    """(pipeline, window start, window end, environment ids or none for all) of every report a run
    needs. A first run, or a pipeline not in `bug_environments` (no report has shown it yet, or it
    has a record still rejected), reads every environment from `start`. Otherwise every environment
    is read from `recent_lookback_hours` before the newest deployment seen, and the look-back before
    that only for the environments whose deployments carry bugs (none when the pipeline has none):
    the other deployments do not change once recorded."""
    for pipeline_id in settings.pipeline_ids:
        recent_from = start
        if newest is not None and pipeline_id in bug_environments:
            recent_from = min(max(start, newest - timedelta(hours=settings.recent_lookback_hours)), end)
            tracked = tuple(bug_environments[pipeline_id])
            if tracked and recent_from > start:
                for window in report_windows(start, recent_from - timedelta(milliseconds=1), settings.window_days):
                    yield pipeline_id, *window, tracked
        for window in report_windows(recent_from, end, settings.window_days):
            yield pipeline_id, *window, ()


@dlt.transformer(primary_key="id", write_disposition="merge", columns=DEPLOYMENT_COLUMNS)
def deployments(reports: list[dict]) -> Iterator[list[dict]]:
    yield _DEPLOYMENT_BATCHES([r["deployment"] for r in reports])


@dlt.transformer(primary_key=("deployment_id", "number"), write_disposition="merge", columns=PULL_REQUEST_COLUMNS)
def deployment_pull_requests(reports: list[dict]) -> Iterator[list[dict]]:
    yield _PULL_REQUEST_BATCHES([pr for r in reports for pr in r["pull_requests"]])


@dlt.transformer(primary_key="id", write_disposition="merge", columns=BUG_COLUMNS)
def reported_bugs(reports: list[dict]) -> Iterator[list[dict]]:
    yield _BUG_BATCHES([bug for r in reports for bug in r["bugs"]])
