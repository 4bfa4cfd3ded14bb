"""Emulator of Gearset's Reporting API v3 and Automation API over the simulated history.

Implements `docs/sources.md` section 1: `Authorization: token <TOKEN>` and `Api-Version: 3`
on every request; pipelines and environments; the asynchronous deployments operation (POST with
query parameters and no body, optionally narrowed to repeated `EnvironmentIds` -> `Running` for
`running_polls` polls -> `Succeeded` or `Failed` -> result fetched by status id or result id).
Inferred field names (deployment `Id`, bug `Id` and `IdentifiedAt`, PR `Number`/`Title`/
`FeatureName`/`AuthorUsername`/`Url`, environment `Name`) follow the contract's inferred rows.
Contract quirks reproduced: `ReportedBugs` is `null` outside production or when a pipeline does not
track failures, `FirstCommitDate` may be null, empty and failed deployments are served, every other
bug `Severity` is a string.

Automation API (section 2): `GET /public/automation/continuous-integration-jobs/{id}/status`
answers `Idle` or `Running` (a run of the job spans `as_of`), and the run history comes from the
Reporting API v2 CI-job-runs report, an async operation like the v3 deployments report
(`Api-Version: 2`). Run-request endpoints are not served: extraction never starts runs.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dora_pipeline.sandbox.emulator import EmulatorState, iso_ms, parse_iso
from dora_pipeline.sandbox.world import CI_JOBS, FAILED, GEARSET, PARTIAL, SUCCEEDED, Change, Deployment, World

STATUS_NAMES = {SUCCEEDED: "Successful", PARTIAL: "PartiallySuccessful", FAILED: "Failed"}
RUN_DURATION = timedelta(minutes=12)


@dataclass
class Operation:
    kind: str  # deployments | ci_runs
    subject_id: str  # pipeline id or CI job id
    start: datetime
    end: datetime
    environment_ids: frozenset[str] = frozenset()  # `EnvironmentIds`: only these; none = every one
    polls: int = 0
    failed: bool = False
    result_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    last_poll: float | None = None


class GearsetState(EmulatorState):
    """Gearset's view: pipelines, environments, async operations. Deployments are indexed by
    service, so a report costs in proportion to its pipeline's history, not to the world's."""

    def __init__(self, world: World, as_of: datetime, token: str):
        self.operations: dict[str, Operation] = {}
        self.results: dict[str, Operation] = {}  # the same operations, by result id
        self.served: dict[str, int] = {"deployments": 0, "ci_runs": 0}
        self.pipelines = {s.service_id: s for s in world.services_in(GEARSET)}
        self.ci_jobs = {s.service_id: s for s in world.services_in(CI_JOBS)}
        self.all_deployments_of = _by_service(world.deployments)  # what a CI job's status looks at
        super().__init__(world, as_of, token)

    def set_as_of(self, as_of: datetime) -> None:
        super().set_as_of(as_of)
        self.deployments_of = _by_service(self.view.deployments)


def _by_service(deployments: list[Deployment]) -> dict[str, list[Deployment]]:
    index: dict[str, list[Deployment]] = {}
    for d in deployments:
        index.setdefault(d.service, []).append(d)
    return index


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"Message": message}, status_code=status, headers=headers)


def build_app(state: GearsetState) -> Starlette:
    def guard(request: Request, versions: tuple[str | None, ...] = ("3",)) -> JSONResponse | None:
        state.record(request)
        if request.headers.get("authorization") != f"token {state.token}":
            return _error(401, "Authorization has been denied for this request.")
        if request.headers.get("api-version") not in versions:
            return _error(400, f"This endpoint requires the header 'Api-Version: {versions[0]}'.")
        if (limited := state.take_rate_limit()) is not None:
            return _error(429, "Too many requests.", limited)
        return None

    async def pipelines(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        return JSONResponse([{"Id": s.service_id, "Name": s.name} for s in state.pipelines.values()])

    async def environments(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        service = state.pipelines.get(request.query_params.get("PipelineId", ""))
        if service is None:
            return _error(404, "Pipeline not found.")
        return JSONResponse([_environment(e) for e in service.environments])

    def start_operation(request: Request, kind: str, subject_id: str | None, known: dict) -> JSONResponse:
        params = request.query_params
        missing = [p for p in ("StartDate", "EndDate") if not params.get(p)] + ([] if subject_id else ["PipelineId"])
        if missing:
            return _error(400, f"Missing required query parameter(s): {', '.join(missing)}.")
        if subject_id not in known:
            return _error(404, "Pipeline not found." if kind == "deployments" else "Job not found.")
        try:
            start, end = parse_iso(params["StartDate"]), parse_iso(params["EndDate"])
        except ValueError:
            return _error(400, "StartDate and EndDate must be ISO 8601 timestamps.")
        operation = Operation(kind, subject_id, start, end, frozenset(params.getlist("EnvironmentIds")))
        if state.faults.fail_next_operations > 0:
            state.faults.fail_next_operations -= 1
            operation.failed = True
        status_id = str(uuid.uuid4())
        state.operations[status_id] = operation
        state.results[operation.result_id] = operation
        return JSONResponse({"OperationStatusId": status_id, "Status": "Running"})

    async def start_deployments(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        return start_operation(request, "deployments", request.query_params.get("PipelineId"), state.pipelines)

    async def start_ci_runs(request: Request) -> JSONResponse:
        if (denied := guard(request, ("2",))) is not None:
            return denied
        return start_operation(request, "ci_runs", request.path_params["job_id"], state.ci_jobs)

    async def ci_job_status(request: Request) -> JSONResponse:
        if (denied := guard(request, ("1", None))) is not None:
            return denied
        job = state.ci_jobs.get(request.path_params["job_id"])
        if job is None:
            return _error(404, "Job not found.")
        runs = state.all_deployments_of.get(job.name, [])
        running = any(d.deployed_at - RUN_DURATION <= state.as_of < d.deployed_at for d in runs)
        return JSONResponse({"State": "Running" if running else "Idle"})

    async def operation_status(request: Request) -> JSONResponse:
        if (denied := guard(request, ("3", "2"))) is not None:
            return denied
        operation = state.operations.get(request.path_params["operation_id"])
        if operation is None:
            return _error(404, "Operation not found.")
        now = time.monotonic()
        too_soon = state.faults.min_poll_interval_seconds
        if operation.last_poll is not None and now - operation.last_poll < too_soon:
            return _error(429, "Polled too often.", {"Retry-After": str(too_soon)})
        operation.last_poll = now
        operation.polls += 1
        if operation.polls <= state.faults.running_polls:
            return JSONResponse({"Status": "Running"})
        if operation.failed:
            return JSONResponse({"Status": "Failed", "Error": "The report could not be generated."})
        return JSONResponse({"Status": "Succeeded", "OperationResultId": operation.result_id})

    async def operation_result(request: Request) -> JSONResponse:
        if (denied := guard(request, ("3", "2"))) is not None:
            return denied
        wanted = request.path_params["operation_id"]
        operation = state.operations.get(wanted) or state.results.get(wanted)
        if operation is None or operation.failed or operation.polls <= state.faults.running_polls:
            return _error(404, "Operation result not found.")
        service = (state.pipelines if operation.kind == "deployments" else state.ci_jobs)[operation.subject_id]
        wanted = operation.environment_ids
        deployments = [
            d
            for d in state.deployments_of.get(service.name, [])
            if operation.start <= d.deployed_at <= operation.end and (not wanted or d.env_id in wanted)
        ]
        state.served[operation.kind] += len(deployments)
        if operation.kind == "ci_runs":
            return JSONResponse({"Runs": [_ci_run(d) for d in deployments]})
        return JSONResponse({"Deployments": [_deployment(state, service, d) for d in deployments]})

    return Starlette(
        routes=[
            Route("/public/reporting/pipelines", pipelines),
            Route("/public/reporting/environments", environments),
            Route("/public/reporting/deployments", start_deployments, methods=["POST"]),
            Route("/public/operation/{operation_id}/status", operation_status),
            Route("/public/operation/{operation_id}/result", operation_result),
            Route("/public/reporting/continuous-integration/job/{job_id}/runs", start_ci_runs, methods=["POST"]),
            Route("/public/automation/continuous-integration-jobs/{job_id}/status", ci_job_status),
        ]
    )


def _environment(env) -> dict:
    location = "SalesforceProductionOrg" if env.is_production else "SalesforceSandboxOrg"
    return {
        "Id": env.env_id,
        "EnvironmentId": env.env_id,
        "Name": env.name,
        "OrgLocationType": location,
        "TargetOrgLocationType": location,
        "OrgUsername": f"deploy@{env.name}.example.com",
        "OrgId": env.env_id[:18],
    }


def _pull_request(change: Change, service_name: str) -> dict:
    return {
        "Number": change.number,
        "Title": change.title,
        "Url": f"https://git.example.com/{service_name}/pull/{change.number}",
        "AuthorUsername": change.author,
        "FeatureName": change.feature_name,
        "CreatedAt": iso_ms(change.opened_at),
        "MergedAt": iso_ms(change.merged_at),
        "FirstCommitDate": iso_ms(change.first_commit_at),
    }


def _deployment(state: GearsetState, service, d: Deployment) -> dict:
    changes = [state.world.changes[c] for c in d.change_ids]
    promotion = {
        "Number": 10_000 + int(d.deployment_id[:6], 16) % 90_000,
        "Title": f"Promote to {d.environment}",
        "FeatureName": None,
    }
    bugs = None
    if d.is_production and service.tracks_failures:
        bugs = [
            {
                "Id": f.failure_id,
                "Title": f.title,
                "Severity": str(f.severity) if i % 2 else f.severity,
                "IdentifiedAt": iso_ms(f.detected_at),
                "ResolvedAt": iso_ms(f.resolved_at),
            }
            for i, f in enumerate(state.failures_by_cause.get(d.deployment_id, []))
        ]
    return {
        "Id": d.deployment_id,
        "Date": iso_ms(d.deployed_at),
        "Status": STATUS_NAMES[d.status],
        "PipelineEnvironmentId": d.env_id,
        "TargetOrg": {"OrgId": d.env_id[:18], "Name": d.environment},
        "MetadataItemsInDeploymentCount": d.item_count,
        "VlocityItemsInDeploymentCount": 0,
        "ConfigDataItemsInDeploymentCount": 0,
        "DeploymentPullRequests": [
            {"PullRequest": promotion, "FeaturePullRequests": [_pull_request(c, d.service) for c in changes]}
        ]
        if changes
        else [],
        "ReportedBugs": bugs,
    }


def _ci_run(d: Deployment) -> dict:
    """A CI job run: validation runs check a release, deployment runs ship it to production."""
    succeeded = d.status != FAILED
    return {
        "Id": d.deployment_id,
        "StartTimeUtc": iso_ms(d.deployed_at - RUN_DURATION),
        "EndTimeUtc": iso_ms(d.deployed_at),
        "DeploymentSucceeded": succeeded,
        "JobType": "Deployment" if d.is_production else "Validation",
        "Trigger": "WebHook",
        "TriggeredBy": "ci-bot",
        "RunOutcome": "Succeeded" if succeeded else "Failed",
        "ErrorMessage": None if succeeded else "Component failures during deployment.",
        "HeadCommitHash": d.revision,
        "Failures": [] if succeeded else [{"ComponentType": "ApexClass", "Problem": "Compile error"}],
    }
