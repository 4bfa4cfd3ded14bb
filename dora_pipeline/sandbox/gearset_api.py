"""Emulator of the Gearset Reporting API v3 over the simulated history.

Implements `shared/api-contracts.md` section 1: `Authorization: token <TOKEN>` and `Api-Version: 3`
on every request; pipelines and environments; the asynchronous deployments operation (POST with
query parameters and no body -> `Running` for `running_polls` polls -> `Succeeded` or `Failed`
-> result fetched by status id or result id). Inferred field names (deployment `Id`, bug `Id` and
`IdentifiedAt`, PR `Number`/`Title`/`FeatureName`/`AuthorUsername`/`Url`, environment `Name`)
follow the contract's inferred rows. Contract quirks reproduced: `ReportedBugs` is `null` outside
production or when a pipeline does not track failures, `FirstCommitDate` may be null, empty and
failed deployments are served, every other bug `Severity` is a string.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dora_pipeline.sandbox.world import FAILED, PARTIAL, SUCCEEDED, Change, Deployment, World

STATUS_NAMES = {SUCCEEDED: "Successful", PARTIAL: "PartiallySuccessful", FAILED: "Failed"}


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Faults:
    """Knobs tests turn to exercise the client's error paths."""

    running_polls: int = 1
    fail_next_operations: int = 0
    rate_limit_next_requests: int = 0
    retry_after_seconds: float = 0.1
    min_poll_interval_seconds: float = 0.0


@dataclass
class Operation:
    pipeline_id: str
    start: datetime
    end: datetime
    polls: int = 0
    failed: bool = False
    result_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    last_poll: float | None = None


class GearsetState:
    """The emulator's mutable state: the world, the observation moment and the request log."""

    def __init__(self, world: World, as_of: datetime, token: str):
        self.world = world
        self.token = token
        self.faults = Faults()
        self.operations: dict[str, Operation] = {}
        self.requests: list[dict] = []
        self.deployments_served = 0
        self.set_as_of(as_of)

    def set_as_of(self, as_of: datetime) -> None:
        self.as_of = as_of
        self.view = self.world.view(as_of)
        self.bugs_by_deployment: dict[str, list] = {}
        for failure in self.view.failures:
            self.bugs_by_deployment.setdefault(failure.caused_by, []).append(failure)

    @property
    def pipelines(self) -> dict[str, object]:
        return {s.service_id: s for s in self.world.services}


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"Message": message}, status_code=status, headers=headers)


def build_app(state: GearsetState) -> Starlette:
    def guard(request: Request) -> JSONResponse | None:
        state.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "params": dict(request.query_params),
                "multi_params": request.query_params.multi_items(),
                "at": time.monotonic(),
            }
        )
        if request.headers.get("authorization") != f"token {state.token}":
            return _error(401, "Authorization has been denied for this request.")
        if request.headers.get("api-version") != "3":
            return _error(400, "This endpoint requires the header 'Api-Version: 3'.")
        if state.faults.rate_limit_next_requests > 0:
            state.faults.rate_limit_next_requests -= 1
            return _error(429, "Too many requests.", {"Retry-After": str(state.faults.retry_after_seconds)})
        return None

    async def pipelines(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        return JSONResponse([{"Id": s.service_id, "Name": s.name} for s in state.world.services])

    async def environments(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        service = state.pipelines.get(request.query_params.get("PipelineId", ""))
        if service is None:
            return _error(404, "Pipeline not found.")
        return JSONResponse([_environment(e) for e in service.environments])

    async def start_deployments(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        params = request.query_params
        missing = [p for p in ("StartDate", "EndDate", "PipelineId") if not params.get(p)]
        if missing:
            return _error(400, f"Missing required query parameter(s): {', '.join(missing)}.")
        if params["PipelineId"] not in state.pipelines:
            return _error(404, "Pipeline not found.")
        try:
            start, end = parse_iso(params["StartDate"]), parse_iso(params["EndDate"])
        except ValueError:
            return _error(400, "StartDate and EndDate must be ISO 8601 timestamps.")
        operation = Operation(params["PipelineId"], start, end)
        if state.faults.fail_next_operations > 0:
            state.faults.fail_next_operations -= 1
            operation.failed = True
        status_id = str(uuid.uuid4())
        state.operations[status_id] = operation
        return JSONResponse({"OperationStatusId": status_id, "Status": "Running"})

    async def operation_status(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
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
        if (denied := guard(request)) is not None:
            return denied
        wanted = request.path_params["operation_id"]
        operation = state.operations.get(wanted) or next(
            (o for o in state.operations.values() if o.result_id == wanted), None
        )
        if operation is None or operation.failed or operation.polls <= state.faults.running_polls:
            return _error(404, "Operation result not found.")
        deployments = [
            d
            for d in state.view.deployments
            if d.service == state.pipelines[operation.pipeline_id].name
            and operation.start <= d.deployed_at <= operation.end
        ]
        service = state.pipelines[operation.pipeline_id]
        state.deployments_served += len(deployments)
        return JSONResponse({"Deployments": [_deployment(state, service, d) for d in deployments]})

    return Starlette(
        routes=[
            Route("/public/reporting/pipelines", pipelines),
            Route("/public/reporting/environments", environments),
            Route("/public/reporting/deployments", start_deployments, methods=["POST"]),
            Route("/public/operation/{operation_id}/status", operation_status),
            Route("/public/operation/{operation_id}/result", operation_result),
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
        "CreatedAt": iso(change.opened_at),
        "MergedAt": iso(change.merged_at),
        "FirstCommitDate": iso(change.first_commit_at),
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
                "IdentifiedAt": iso(f.detected_at),
                "ResolvedAt": iso(f.resolved_at),
            }
            for i, f in enumerate(state.bugs_by_deployment.get(d.deployment_id, []))
        ]
    return {
        "Id": d.deployment_id,
        "Date": iso(d.deployed_at),
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
