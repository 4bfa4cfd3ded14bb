"""Emulator of the GitLab REST API v4 endpoints dora-pipeline reads (`docs/sources.md` §4).

Served: `/projects/:id` (numeric or URL-encoded path), `/environments` (the only place with a
`tier`), `/deployments` (no top-level `finished_at`: it is `deployable.finished_at`; status
moves from `running` to `success`/`failed` and `updated_at` with it; `updated_after` needs
`order_by=updated_at`), `/deployments/:id/merge_requests`, `/merge_requests` and their
`/commits` (the same commits also through GraphQL: `gitlab_graphql.py`), incidents through
`/issues?issue_type=incident` (severity as a `severity::N` label and the inferred `severity`
field), and `/dora/metrics` computed the way GitLab computes it (daily rows only where a day has
data, CFR = incidents / max(deployments, 1), medians per day, at most 180 days). Offset
pagination with `X-Page`, `X-Next-Page` (empty on the last page), `X-Total`, `X-Total-Pages` and
`Link`. Auth: `PRIVATE-TOKEN` or `Authorization: Bearer`.
"""

from __future__ import annotations

import re
import statistics
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import TypeVar
from urllib.parse import unquote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dora_pipeline.sandbox import gitlab_graphql
from dora_pipeline.sandbox.emulator import EmulatorState, iso_ms, parse_iso
from dora_pipeline.sandbox.world import FAILED, GITLAB, Change, Deployment, Failure, Service, World

SEVERITY_NAMES = {1: "CRITICAL", 2: "HIGH", 3: "MEDIUM", 4: "LOW"}
T = TypeVar("T")
LISTS_KEPT = 64  # lists kept rendered, filtered and sorted for their following pages
CREATION_LEAD = timedelta(minutes=5)  # a deployment is created (running) this long before it finishes
DORA_METRICS = ("deployment_frequency", "lead_time_for_changes", "time_to_restore_service", "change_failure_rate")


class GitlabState(EmulatorState):
    """GitLab's view: integer ids for projects, deployments, merge requests and incidents."""

    def __init__(self, world: World, as_of: datetime, token: str):
        self.projects = {s.project_id: s for s in world.services_in(GITLAB)}
        services = set(s.name for s in self.projects.values())
        ours = [d for d in world.deployments if d.service in services and not d.is_test]
        self.deployment_ids = {d.deployment_id: 10_000 + i for i, d in enumerate(ours)}
        changes = sorted((c for c in world.changes.values() if c.service in services), key=lambda c: c.change_id)
        self.mr_ids = {c.change_id: 50_000 + i for i, c in enumerate(changes)}
        self.incident_ids = {
            f.failure_id: 90_000 + i for i, f in enumerate(f for f in world.failures if f.service in services)
        }
        super().__init__(world, as_of, token)

    def project(self, raw: str) -> Service | None:
        key = unquote(raw)
        if key.isdigit():
            return self.projects.get(int(key))
        return next((s for s in self.projects.values() if s.project_path == key), None)

    def set_as_of(self, as_of: datetime) -> None:
        super().set_as_of(as_of)
        self._index: _Index | None = None  # built on the first request at this `as_of`
        self._lists: OrderedDict[tuple, list] = OrderedDict()
        self._daily_dora: dict[tuple, dict[str, dict[date, float | None]]] = {}

    def daily_dora(self, service: Service, metric: str, tiers: tuple[str, ...]) -> dict[date, float | None]:
        """A project's daily values of one metric at this `as_of`, every metric computed in one
        pass and kept: GitLab serves stored daily rows, so a request for 180 days costs no more
        than its rows."""
        key = (service.name, tiers)
        if key not in self._daily_dora:
            self._daily_dora[key] = gitlab_daily_dora(self, service, list(tiers))
        return self._daily_dora[key][metric]

    def warm(self) -> None:
        self._indexed()
        for service in self.projects.values():  # GitLab's stored daily rows, as the API reads them
            self.daily_dora(service, DORA_METRICS[0], ("production",))

    def listing(self, request: Request, build: Callable[[], list]) -> list:
        """The list a request pages through, built (rendered, filtered, sorted) once per path and
        query at this `as_of` and kept for the pages that follow: a page then costs in proportion
        to itself, not to the project's whole history."""
        params = request.query_params
        query = sorted((k, v) for k, v in params.multi_items() if k not in ("page", "per_page"))
        key = (request.url.path, tuple(query))
        if key not in self._lists:
            self._lists[key] = build()
            if len(self._lists) > LISTS_KEPT:
                self._lists.popitem(last=False)
        self._lists.move_to_end(key)
        return self._lists[key]

    def _indexed(self) -> _Index:
        """Each service's records at `as_of`, so a request costs in proportion to its service's
        data rather than to the whole world's."""
        if self._index is None:
            names = {s.name for s in self.projects.values()}
            index = _Index(defaultdict(list), defaultdict(dict), defaultdict(list), {}, defaultdict(list))
            for d in self.world.deployments:
                if d.service in names and not d.is_test and d.deployed_at - CREATION_LEAD <= self.as_of:
                    index.deployments[d.service].append(d)
                    index.deployment_by_id[d.service][self.deployment_ids[d.deployment_id]] = d
            for c in self.view.changes.values():
                if c.service in names:
                    index.changes[c.service].append(c)
                    index.change_by_number[(c.service, c.number)] = c
            for f in self.view.failures:
                if f.service in names:
                    index.incidents[f.service].append(f)
            self._index = index
        return self._index

    def deployments(self, service: Service) -> list[Deployment]:
        """Deployments created by `as_of`: finished ones as in the view, one still running if any."""
        return self._indexed().deployments[service.name]

    def deployment(self, service: Service, gitlab_id: int) -> Deployment | None:
        return self._indexed().deployment_by_id[service.name].get(gitlab_id)

    def changes(self, service: Service) -> list[Change]:
        return self._indexed().changes[service.name]

    def change(self, service: Service, number: int) -> Change | None:
        return self._indexed().change_by_number.get((service.name, number))

    def incidents(self, service: Service) -> list[Failure]:
        return self._indexed().incidents[service.name]

    @staticmethod
    def commits(change: Change) -> list[dict]:
        """The MR's commits as GitLab lists them (newest first), REST's field names; none when its
        history was rewritten (GitLab no longer lists them). The GraphQL API serves the same."""
        if change.first_commit_at is None:
            return []
        times = [change.first_commit_at + (change.opened_at - change.first_commit_at) * k / 3 for k in range(3)]
        return [
            {
                "id": f"{change.merge_sha[:-2]}{k:02d}",
                "short_id": change.merge_sha[:8],
                "title": change.title,
                "created_at": iso_ms(t),
                "authored_date": iso_ms(t),
                "committed_date": iso_ms(t),
                "author_name": change.author,
            }
            for k, t in enumerate(reversed(times))
        ]


@dataclass
class _Index:
    deployments: dict[str, list[Deployment]]
    deployment_by_id: dict[str, dict[int, Deployment]]
    changes: dict[str, list[Change]]
    change_by_number: dict[tuple[str, int], Change]
    incidents: dict[str, list[Failure]]


def _authorized(request: Request, state: GitlabState) -> bool:
    """`PRIVATE-TOKEN` or `Authorization: Bearer`, as GitLab accepts both."""
    token = request.headers.get("private-token") or request.headers.get("authorization", "").removeprefix("Bearer ")
    return token == state.token


def _error(status: int, message: str, key: str = "message", headers: dict | None = None) -> JSONResponse:
    return JSONResponse({key: message}, status_code=status, headers=headers)


def _paginate(request: Request, items: list, state: GitlabState) -> JSONResponse:
    params = request.query_params
    try:
        page = max(1, int(params.get("page", 1)))
        per_page = min(100, max(1, int(params.get("per_page", 20))))
    except ValueError:
        return _error(400, "page and per_page must be integers", "error")
    total = len(items)
    pages = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    next_page = str(page + 1) if page < pages else ""
    if state.faults.broken_pagination:  # the next page never moves past 2
        next_page = "2"
    headers = {
        "X-Page": str(page),
        "X-Per-Page": str(per_page),
        "X-Next-Page": next_page,
        "X-Prev-Page": str(page - 1) if page > 1 else "",
        "X-Total": str(total),
        "X-Total-Pages": str(pages),
    }
    base = str(request.url).split("?")[0]
    other = {k: v for k, v in params.items() if k != "page"}
    links = [f'<{base}?{urlencode({**other, "page": page + 1})}>; rel="next"'] if next_page else []
    links.append(f'<{base}?{urlencode({**other, "page": 1})}>; rel="first"')
    links.append(f'<{base}?{urlencode({**other, "page": pages})}>; rel="last"')
    headers["Link"] = ", ".join(links)
    return JSONResponse(chunk, headers=headers)


def build_app(state: GitlabState) -> Starlette:
    routes: list[tuple[re.Pattern, callable]] = []

    def route(pattern: str):
        def register(handler):
            routes.append((re.compile(f"^{pattern}$"), handler))
            return handler

        return register

    @route(r"")
    def project(request: Request, service: Service) -> JSONResponse:
        return JSONResponse(_project(service))

    @route(r"/environments")
    def environments(request: Request, service: Service) -> JSONResponse:
        return _paginate(request, [_environment(service, i, e) for i, e in enumerate(service.environments)], state)

    @route(r"/deployments")
    def deployments(request: Request, service: Service) -> JSONResponse:
        params = request.query_params
        order_by = params.get("order_by", "id")
        if ("updated_after" in params or "updated_before" in params) and order_by != "updated_at":
            return _error(400, "`updated_at` filter requires `updated_at` sort", "error")
        if ("finished_after" in params or "finished_before" in params) and (
            order_by != "finished_at" or params.get("status") != "success"
        ):
            return _error(400, "`finished_at` filter and `finished_at` sorting must be paired", "error")

        def listed() -> list[dict]:
            updated = partial(_deployment_updated_at, state)
            deployed = _updated_within(state.deployments(service), params, updated)
            rows = [_deployment(state, service, d) for d in deployed]
            if "environment" in params:
                rows = [r for r in rows if r["environment"]["name"] == params["environment"]]
            if "status" in params:
                rows = [r for r in rows if r["status"] == params["status"]]
            sort_key = {"updated_at": "updated_at", "finished_at": "updated_at"}.get(order_by, "id")
            rows.sort(key=lambda r: (r[sort_key], r["id"]), reverse=params.get("sort", "asc") == "desc")
            return rows

        return _paginate(request, state.listing(request, listed), state)

    @route(r"/deployments/(?P<deployment_id>\d+)/merge_requests")
    def deployment_merge_requests(request: Request, service: Service, deployment_id: str) -> JSONResponse:
        deployment = state.deployment(service, int(deployment_id))
        if deployment is None:
            return _error(404, "404 Deployment Not Found")
        linked = (
            []
            if deployment.status == FAILED or deployment.deployed_at > state.as_of
            else [state.view.changes[c] for c in deployment.change_ids if c in state.view.changes]
        )
        return _paginate(request, [_merge_request(state, service, c) for c in linked], state)

    @route(r"/merge_requests")
    def merge_requests(request: Request, service: Service) -> JSONResponse:
        params = request.query_params

        def listed() -> list[dict]:
            changes = _updated_within(state.changes(service), params, lambda c: c.merged_at)
            rows = [_merge_request(state, service, c) for c in changes]
            if params.get("state") not in (None, "merged", "all"):
                rows = []
            key = params.get("order_by", "created_at")
            rows.sort(key=lambda r: (r.get(key) or "", r["id"]), reverse=params.get("sort", "desc") == "desc")
            return rows

        return _paginate(request, state.listing(request, listed), state)

    @route(r"/merge_requests/(?P<iid>\d+)/commits")
    def merge_request_commits(request: Request, service: Service, iid: str) -> JSONResponse:
        change = state.change(service, int(iid))
        if change is None:
            return _error(404, "404 Merge Request Not Found")
        return _paginate(request, state.commits(change), state)

    @route(r"/issues")
    def issues(request: Request, service: Service) -> JSONResponse:
        params = request.query_params
        if params.get("issue_type", "incident") != "incident":
            return _paginate(request, [], state)

        def listed() -> list[dict]:
            failures = _updated_within(state.incidents(service), params, lambda f: f.resolved_at or f.detected_at)
            rows = [_incident(state, service, f) for f in failures]
            if params.get("state") in ("opened", "closed"):
                rows = [r for r in rows if r["state"] == params["state"]]
            key = params.get("order_by", "created_at")
            rows.sort(key=lambda r: (r[key], r["id"]), reverse=params.get("sort", "desc") == "desc")
            return rows

        return _paginate(request, state.listing(request, listed), state)

    @route(r"/dora/metrics")
    def dora_metrics(request: Request, service: Service) -> JSONResponse:
        params = request.query_params
        metric = params.get("metric")
        if metric not in DORA_METRICS:
            return _error(400, "metric does not have a valid value", "error")
        try:
            end = date.fromisoformat(params.get("end_date", state.as_of.date().isoformat()))
            start = date.fromisoformat(params.get("start_date", (end - timedelta(days=90)).isoformat()))
        except ValueError:
            return _error(400, "start_date and end_date must be dates", "error")
        if start > end or (end - start).days > 180:
            return _error(400, "Date range must be in the past 180 days and start before end", "message")
        tiers = request.query_params.getlist("environment_tiers[]") or ["production"]
        daily = state.daily_dora(service, metric, tuple(tiers))
        rows = [{"date": d.isoformat(), "value": v} for d, v in sorted(daily.items()) if start <= d <= end]
        if params.get("interval", "daily") == "all":
            values = [r["value"] for r in rows if r["value"] is not None]
            return JSONResponse([{"date": None, "value": statistics.median(values) if values else None}])
        return JSONResponse(rows)

    async def dispatch(request: Request) -> JSONResponse:
        state.record(request)
        if not _authorized(request, state):
            return _error(401, "401 Unauthorized")
        if (limited := state.take_rate_limit()) is not None:
            return JSONResponse(
                {"message": {"error": "This endpoint has been requested too many times. Try again later."}},
                status_code=429,
                headers=limited,
            )
        raw_path = request.scope.get("raw_path", b"").decode().split("?")[0]
        match = re.match(r"^/api/v4/projects/([^/]+)(.*)$", raw_path)
        service = state.project(match.group(1)) if match else None
        if service is None:
            return _error(404, "404 Project Not Found")
        for pattern, handler in routes:
            found = pattern.match(match.group(2))
            if found:
                return handler(request, service, **found.groupdict())
        return _error(404, "404 Not Found")

    async def group_projects(request: Request) -> JSONResponse:
        state.record(request)
        if not _authorized(request, state):
            return _error(401, "401 Unauthorized")
        raw_path = request.scope.get("raw_path", b"").decode().split("?")[0]
        match = re.match(r"^/api/v4/groups/([^/]+)/projects$", raw_path)
        group = unquote(match.group(1)) if match else ""
        members = [s for s in state.projects.values() if s.project_path.startswith(group + "/")]
        if not members:
            return _error(404, "404 Group Not Found")
        return _paginate(request, [_project(s) for s in members], state)

    async def graphql(request: Request) -> JSONResponse:
        payload = await gitlab_graphql.read_payload(request)
        state.record(request, body=payload)
        if request.headers.get("authorization") != f"Bearer {state.token}":  # GraphQL's documented form
            return _error(401, "401 Unauthorized")
        if (limited := state.take_rate_limit()) is not None:
            return _error(429, "This endpoint has been requested too many times. Try again later.", headers=limited)
        return gitlab_graphql.answer(payload, state)

    return Starlette(
        routes=[
            Route("/api/graphql", graphql, methods=["POST"]),
            Route("/api/v4/projects/{rest:path}", dispatch),
            Route("/api/v4/groups/{rest:path}", group_projects),
        ]
    )


def _updated_within(records: list[T], params, updated_at: Callable[[T], datetime]) -> list[T]:
    """The records whose `updated_at` falls in the request's `updated_after`/`updated_before`,
    chosen before any is rendered: a day's changes then cost a day's rendering, not the project's
    whole history. Times compare to the second, as they are served."""
    after, before = params.get("updated_after"), params.get("updated_before")
    if after:
        since = parse_iso(after)
        records = [r for r in records if updated_at(r).replace(microsecond=0) >= since]
    if before:
        until = parse_iso(before)
        records = [r for r in records if updated_at(r).replace(microsecond=0) < until]
    return records


def _deployment_updated_at(state: GitlabState, d: Deployment) -> datetime:
    """When GitLab last touched a deployment: its finish, or its creation while it still runs."""
    return d.deployed_at if d.deployed_at <= state.as_of else d.deployed_at - CREATION_LEAD


def _project(service: Service) -> dict:
    return {
        "id": service.project_id,
        "name": service.project_name,
        "path": service.project_name,
        "path_with_namespace": service.project_path,
        "web_url": f"https://gitlab.example.com/{service.project_path}",
    }


def _environment(service: Service, index: int, env) -> dict:
    return {
        "id": service.project_id * 10 + index,
        "name": env.name,
        "slug": env.name,
        "external_url": f"https://{env.name}.{service.name}.example.com",
        "state": "available",
        "tier": "production" if env.is_production else "staging",
    }


def _deployment(state: GitlabState, service: Service, d: Deployment) -> dict:
    finished = d.deployed_at <= state.as_of
    status = ("failed" if d.status == FAILED else "success") if finished else "running"
    index = next(i for i, e in enumerate(service.environments) if e.name == d.environment)
    env = _environment(service, index, service.environments[index])
    created = d.deployed_at - CREATION_LEAD
    return {
        "id": state.deployment_ids[d.deployment_id],
        "iid": state.deployment_ids[d.deployment_id] - 9_999,
        "ref": "main",
        "sha": d.revision,
        "created_at": iso_ms(created),
        "updated_at": iso_ms(_deployment_updated_at(state, d)),
        "status": status,
        "user": {"username": "deploy-bot"},
        "environment": {k: env[k] for k in ("id", "name", "slug", "external_url")},
        "deployable": {
            "id": state.deployment_ids[d.deployment_id] * 7,
            "status": status,
            "stage": "deploy",
            "name": f"deploy:{d.environment}",
            "ref": "main",
            "tag": False,
            "created_at": iso_ms(created),
            "started_at": iso_ms(created),
            "finished_at": iso_ms(d.deployed_at) if finished else None,
            "commit": {"id": d.revision, "short_id": d.revision[:8], "title": "Release"},
        },
    }


def _merge_request(state: GitlabState, service: Service, c: Change) -> dict:
    return {
        "id": state.mr_ids[c.change_id],
        "iid": c.number,
        "project_id": service.project_id,
        "title": c.title,
        "state": "merged",
        "created_at": iso_ms(c.opened_at),
        "updated_at": iso_ms(c.merged_at),
        "merged_at": iso_ms(c.merged_at),
        "closed_at": None,
        "target_branch": "main",
        "source_branch": c.feature_name,
        "author": {"username": c.author},
        "merge_user": {"username": c.author},
        "sha": c.merge_sha[::-1],
        "merge_commit_sha": c.merge_sha,
        "squash_commit_sha": None,
        "squash": False,
        "labels": [],
        "draft": False,
        "web_url": f"https://gitlab.example.com/{service.project_path}/-/merge_requests/{c.number}",
    }


def _incident(state: GitlabState, service: Service, f: Failure) -> dict:
    return {
        "id": state.incident_ids[f.failure_id],
        "iid": state.incident_ids[f.failure_id] - 89_999,
        "project_id": service.project_id,
        "title": f.title,
        "state": "closed" if f.resolved_at else "opened",
        "created_at": iso_ms(f.detected_at),
        "updated_at": iso_ms(f.resolved_at or f.detected_at),
        "closed_at": iso_ms(f.resolved_at),
        "labels": ["incident", f"severity::{f.severity}"],
        "issue_type": "incident",
        "type": "INCIDENT",
        "severity": SEVERITY_NAMES[f.severity],
    }


def gitlab_daily_dora(state: GitlabState, service: Service, tiers: list[str]) -> dict[str, dict[date, float | None]]:
    """GitLab's own daily values of each DORA metric, computed as GitLab does (not as our
    definitions do)."""
    tier_envs = {e.name for i, e in enumerate(service.environments) if _environment(service, i, e)["tier"] in tiers}
    deployed = [
        d
        for d in state.deployments(service)
        if d.deployed_at <= state.as_of and d.environment in tier_envs and d.status != FAILED
    ]
    incidents = state.incidents(service)
    per_day: dict[date, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for d in deployed:
        day = per_day[d.deployed_at.date()]
        day["deployments"].append(d)
        for change_id in d.change_ids:
            change = state.view.changes.get(change_id)
            if change:
                day["lead"].append(max(0.0, (d.deployed_at - change.merged_at).total_seconds()))
    for f in incidents:
        per_day[f.detected_at.date()]["opened"].append(f)
        if f.resolved_at:
            per_day[f.resolved_at.date()]["restore"].append((f.resolved_at - f.detected_at).total_seconds())
    return {
        "deployment_frequency": {day: len(data["deployments"]) for day, data in per_day.items()},
        "lead_time_for_changes": {
            day: statistics.median(data["lead"]) if data["lead"] else None for day, data in per_day.items()
        },
        "time_to_restore_service": {
            day: statistics.median(data["restore"]) if data["restore"] else None for day, data in per_day.items()
        },
        "change_failure_rate": {
            day: len(data["opened"]) / max(len(data["deployments"]), 1) for day, data in per_day.items()
        },
    }
