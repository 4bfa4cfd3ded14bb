"""Emulator of the GitClear API v1 reads: Audits and Reports (`docs/sources.md` §3).

`GET /api/v1/audits?resource_path&resource_type=pull_requests|commits|tags&start_date&end_date&page`
answers `{"<resource_type>": [...], "page", "per_page": 50, "total_count"}`; the date range
filters on the record's main date (PR opened, commit authored, tag created) (inferred). Record
fields of pull requests and tags are inferred by the contract. Timestamps come in both styles the
contract shows: `YYYY-MM-DD HH:MM:SS UTC` and ISO 8601 with milliseconds and `Z`.
`GET /api/v1/reports?segment_by=defect_detected_count|mean_hours_to_resolved` answers weekly
series whose `x` labels carry no year (the `url` carries the week's end date). Auth: Bearer.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from datetime import date, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dora_pipeline.sandbox.emulator import EmulatorState, iso_ms
from dora_pipeline.sandbox.world import FAILED, GITCLEAR, PRODUCTION, Change

RENDERED_KEPT = 64  # services' record lists kept rendered for their next pages

PER_PAGE = 50


def utc_words(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _envelope_error(status: int, detail: str) -> JSONResponse:
    return JSONResponse(
        {"action_em": "action_get_resource", "response_em": "response_error", "response_detail": detail},
        status_code=status,
    )


class GitclearState(EmulatorState):
    """GitClear's view. Changes, deployments and failures are indexed by service per as-of, and
    a service's rendered records kept for the pages that follow, so a page costs in proportion to
    its service's history, not to the world's."""

    def set_as_of(self, as_of: datetime) -> None:
        super().set_as_of(as_of)
        self.changes_of: dict[str, list[Change]] = defaultdict(list)
        for change in self.view.changes.values():
            self.changes_of[change.service].append(change)
        self.deployments_of: dict[str, list] = defaultdict(list)
        for deployment in self.view.deployments:
            self.deployments_of[deployment.service].append(deployment)
        self.failures_of: dict[str, list] = defaultdict(list)
        for failure in self.view.failures:
            self.failures_of[failure.service].append(failure)
        self._rendered: OrderedDict[tuple[str, str], list[tuple[date, dict]]] = OrderedDict()

    def repo(self, resource_path: str):
        return next(
            (
                s
                for s in self.world.services_in(GITCLEAR)
                if s.repository_path in resource_path or resource_path.endswith(s.repository_path)
            ),
            None,
        )

    def records(self, service, resource_type: str) -> list[tuple[date, dict]]:
        key = (service.name, resource_type)
        if key not in self._rendered:
            self._rendered[key] = self._render(service, resource_type)
            if len(self._rendered) > RENDERED_KEPT:
                self._rendered.popitem(last=False)
        return self._rendered[key]

    def _render(self, service, resource_type: str) -> list[tuple[date, dict]]:
        if resource_type == "pull_requests":
            return [(c.opened_at.date(), _pull_request(service, c)) for c in self.changes_of.get(service.name, [])]
        if resource_type == "commits":
            return [
                (c.first_commit_at.date(), _commit(service, c))
                for c in self.changes_of.get(service.name, [])
                if c.first_commit_at
            ]
        if resource_type == "tags":
            releases = [
                d
                for d in self.deployments_of.get(service.name, [])
                if d.environment == PRODUCTION and d.status != FAILED and not d.is_test
            ]
            return [
                (
                    d.deployed_at.date(),
                    {
                        "name": f"release-{i + 1}",
                        "sha": d.revision,
                        "repo": service.repository_path,
                        "tagged_at": utc_words(d.deployed_at),
                    },
                )
                for i, d in enumerate(releases)
            ]
        return []


def _pull_request(service, c: Change) -> dict:
    return {
        "number": c.number,
        "title": c.title,
        "repo": service.repository_path,
        "state": "merged",
        "created_at": iso_ms(c.opened_at),
        "merged_at": utc_words(c.merged_at),
        "closed_at": utc_words(c.merged_at),
        "first_commit_at": utc_words(c.first_commit_at),
        "merge_sha": c.merge_sha,
        "head_branch": c.feature_name,
        "contributor": {"full_name": c.author.title(), "username": c.author},
    }


def _commit(service, c: Change) -> dict:
    return {
        "authored_at": utc_words(c.first_commit_at),
        "child_shas": [c.merge_sha],
        "contributor": {"full_name": c.author.title(), "username": c.author},
        "diff_delta": 12.5,
        "entered_gitclear_at": iso_ms(c.opened_at),
        "message": c.title,
        "presence": "existent",
        "repo": service.repository_path,
        "sha": c.merge_sha[::-1],
        "sites": [],
        "state": "analysis_complete",
    }


def build_app(state: GitclearState) -> Starlette:
    def guard(request: Request) -> JSONResponse | None:
        state.record(request)
        if request.headers.get("authorization") != f"Bearer {state.token}":
            return _envelope_error(401, "Invalid or missing API token")
        if (limited := state.take_rate_limit()) is not None:
            return JSONResponse(
                {"response_em": "response_error", "response_detail": "Rate limited"}, status_code=429, headers=limited
            )
        return None

    def dates(params) -> tuple[date, date]:
        end = date.fromisoformat(params["end_date"]) if params.get("end_date") else state.as_of.date()
        start = date.fromisoformat(params["start_date"]) if params.get("start_date") else end - timedelta(days=90)
        return start, end

    async def audits(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        params = request.query_params
        resource_type = params.get("resource_type")
        if not params.get("resource_path") or resource_type not in ("commits", "issues", "pull_requests", "tags"):
            return _envelope_error(
                422, "resource_path and resource_type (commits, issues, pull_requests, tags) are required"
            )
        service = state.repo(params["resource_path"])
        if service is None:
            return _envelope_error(403, "You must be an admin of this resource to view its audits")
        try:
            start, end = dates(params)
            page = max(1, int(params.get("page", 1)))
        except ValueError:
            return _envelope_error(422, "start_date, end_date must be YYYY-MM-DD and page a number")
        rows = [r for day, r in state.records(service, resource_type) if start <= day <= end]
        if state.faults.broken_pagination:  # every page is page 1 under an impossible total
            return JSONResponse(
                {resource_type: rows[:PER_PAGE], "page": page, "per_page": PER_PAGE, "total_count": 10**9}
            )
        return JSONResponse(
            {
                resource_type: rows[(page - 1) * PER_PAGE : page * PER_PAGE],
                "page": page,
                "per_page": PER_PAGE,
                "total_count": len(rows),
            }
        )

    async def reports(request: Request) -> JSONResponse:
        if (denied := guard(request)) is not None:
            return denied
        params = request.query_params
        segment = params.get("segment_by", "none")
        service = state.repo(params.get("resource_path", ""))
        if service is None or not params.get("team_slug"):
            return _envelope_error(422, "resource_path of a repo you may see and team_slug are required")
        start, end = dates(params)
        weekly: dict[date, list[float]] = defaultdict(list)
        for f in state.failures_of.get(service.name, []):
            if segment == "defect_detected_count":
                weekly[_week_end(f.detected_at.date())].append(1)
            elif segment == "mean_hours_to_resolved" and f.resolved_at:
                weekly[_week_end(f.resolved_at.date())].append((f.resolved_at - f.detected_at).total_seconds() / 3600)
        points = []
        week = _week_end(start)
        while week <= _week_end(end):
            values = weekly.get(week, [])
            y = len(values) if segment == "defect_detected_count" else (sum(values) / len(values) if values else 0)
            points.append({"url": f"/reports?end_date={week.isoformat()}", "x": week.strftime("%B %-d"), "y": y})
            week += timedelta(days=7)
        return JSONResponse(
            {
                "context": {"entity": "acme", "organization": service.team},
                "interval_em": "weekly",
                "series_segments": {segment: points},
                "unit": "Diff Delta",
            }
        )

    return Starlette(routes=[Route("/api/v1/audits", audits), Route("/api/v1/reports", reports)])


def _week_end(day: date) -> date:
    return day + timedelta(days=6 - day.weekday())
