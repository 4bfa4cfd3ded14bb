"""Emulator of the Multitudes Deployments API, `GET /deployments` (`docs/sources.md` §5).

Multitudes has one record per deployment POSTed by CI: the merge SHAs of its pull requests plus
the released revision, the environment name, `deployedAt`, `tags` and `isTest`. It keeps no
status: CI posts only successful deployments. Documented dedupe: a POST with the same commits and
environment replaces the earlier record (latest received wins); here CI re-posts a deployment
with `is_failure` and `sevN` tags once a failure it caused is detected, so the record gets a new
`id` and `createdAt` while older extractions still hold the first one. Fix and rollback
deployments carry `is_fix` / `is_rollback`. Inferred (contract marks the GET body as inferred):
the envelope `{deployments, page, pageSize, total}`, newest `deployedAt` first, a `repository`
field naming the repo, 400 for `pageSize` > 100, and the raw token in `Authorization`.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dora_pipeline.sandbox.emulator import EmulatorState, iso_ms
from dora_pipeline.sandbox.world import FAILED, MULTITUDES, Deployment


def _id(*parts: str) -> str:
    return str(uuid.UUID(hashlib.md5("|".join(parts).encode()).hexdigest()))


class MultitudesState(EmulatorState):
    def set_as_of(self, as_of: datetime) -> None:
        super().set_as_of(as_of)
        self._records: list[dict] | None = None  # rendered on the first request at this `as_of`

    def warm(self) -> None:
        self.records()

    def records(self) -> list[dict]:
        """Every record at `as_of`, newest first, rendered once per `as_of` so a page costs in
        proportion to the page rather than to the world."""
        if self._records is None:
            services = {s.name: s for s in self.world.services_in(MULTITUDES)}
            rows = [
                self._record(services[d.service], d)
                for d in self.view.deployments
                if d.service in services and d.status != FAILED
            ]
            rows.sort(key=lambda r: (r["deployedAt"], r["id"]), reverse=True)
            self._records = rows
        return self._records

    def _record(self, service, d: Deployment) -> dict:
        commits = [self.view.changes[c].merge_sha for c in d.change_ids if c in self.view.changes] + [d.revision]
        tags = (["is_fix"] if d.is_fix else []) + (["is_rollback"] if d.is_rollback else [])
        received, version = d.deployed_at, "1"
        caused = self.failures_by_cause.get(d.deployment_id)
        if caused:
            tags += ["is_failure", f"sev{min(f.severity for f in caused)}"]
            received, version = min(f.detected_at for f in caused), "2"
        return {
            "id": _id(d.deployment_id, version),
            "commitSha": commits,
            "environmentName": d.environment,
            "deployedAt": iso_ms(d.deployed_at),
            "title": f"Release {d.revision[:7]}",
            "tags": tags,
            "isTest": d.is_test,
            "createdAt": iso_ms(received),
            "repository": service.repository_path,
        }


def build_app(state: MultitudesState) -> Starlette:
    async def deployments(request: Request) -> JSONResponse:
        state.record(request)
        if request.headers.get("authorization") != state.token:
            return JSONResponse({"message": "Invalid API key"}, status_code=401)
        if (limited := state.take_rate_limit()) is not None:
            return JSONResponse({"message": "Rate limited"}, status_code=429, headers=limited)
        params = request.query_params
        try:
            page, size = int(params.get("page", 1)), int(params.get("pageSize", 20))
        except ValueError:
            return JSONResponse({"errors": [{"field": "page", "message": "must be a number"}]}, status_code=400)
        if size > 100 or size < 1 or page < 1:
            return JSONResponse({"errors": [{"field": "pageSize", "message": "must be 1 to 100"}]}, status_code=400)
        rows = state.records()
        if params.get("includeTests", "false").lower() != "true":
            rows = [r for r in rows if not r["isTest"]]
        if state.faults.broken_pagination:  # every page is page 1 under an impossible total
            return JSONResponse({"deployments": rows[:size], "page": page, "pageSize": size, "total": 10**9})
        chunk = rows[(page - 1) * size : page * size]
        return JSONResponse({"deployments": chunk, "page": page, "pageSize": size, "total": len(rows)})

    return Starlette(routes=[Route("/deployments", deployments)])
