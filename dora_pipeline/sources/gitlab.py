"""dlt source for GitLab REST API v4 and, for merged MRs' commits, its GraphQL API (`docs/sources.md`,
section 4), dataset `raw_gitlab`.

Tables: `projects`, `environments` (the only place a tier is exposed), `deployments` (incremental
on `updated_at` with `order_by=updated_at`, so status changes running -> success are re-read;
finish time from `deployable.finished_at`), `deployment_merge_requests` (the MRs GitLab links to
each successful deployment: explicit change links), `merge_requests` (incremental on `updated_at`;
first commit time = earliest authored date of its commits, where GitLab still lists them, read once
per MR, 100 MRs a GraphQL request: a touched MR takes the time already loaded), `incidents` (issues
of type incident, incremental on `updated_at`, severity from the `severity::N` label or the
`severity` field) and `dora_metrics` (GitLab's own daily values of the four metrics, for
reconciliation: per project from its first activity, then from the last day read minus
`dora_lookback_days`).

Pagination follows `X-Next-Page` (empty string on the last page). Projects are ids or full paths
(URL-encoded in the request). Groups expand to their projects. Incremental cursors are per
resource across projects: a project added later is read from the cursor on, not from
`start_date`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import dlt
import pyarrow as pa
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.sources import DltResource

from dora_pipeline.sources import fields
from dora_pipeline.sources.batches import TypedBatches, batch, schema_marker
from dora_pipeline.sources.http import (
    ApiClient,
    PageGuard,
    SourceError,
    SourceRecordError,
    concurrently,
    require_safe_transport,
    stream_concurrently,
)
from dora_pipeline.sources.rejections import convert_each

SOURCE = "gitlab"
T = TypeVar("T")
DEFAULT_BASE_URL = "https://gitlab.com/api/v4"
DORA_METRICS = ("deployment_frequency", "lead_time_for_changes", "time_to_restore_service", "change_failure_rate")
SEVERITY_BY_NAME = {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 3, "LOW": 4}
MAX_DORA_RANGE_DAYS = 180
_SHARED_CLIENT_LOCK = threading.Lock()


def _ts(value: Any, record: str, field: str) -> datetime | None:
    return fields.parse_timestamp(SOURCE, value, record, field)


class GitlabClient:
    """GitLab's REST API and its GraphQL API (same host, same token, same rate limit); at most
    `max_in_flight` requests at once, whichever threads send them."""

    def __init__(self, base_url: str, private_token: str, max_in_flight: int = 8, graphql_url: str | None = None):
        self.api = ApiClient(SOURCE, base_url, {"PRIVATE-TOKEN": private_token}, max_in_flight=max_in_flight)
        self.graphql_url = graphql_url
        self._graphql_auth = {"Authorization": f"Bearer {private_token}"}  # GraphQL's documented form
        if graphql_url:
            require_safe_transport(SOURCE, graphql_url)

    def pages(self, path: str, params: dict | None = None) -> Iterator[list[dict]]:
        """Every page of an offset-paginated list, following `X-Next-Page`. A next page that does
        not move forward, goes past `X-Total-Pages` or repeats an earlier page ends in an error."""
        page, guard = 1, PageGuard(SOURCE, f"GET {path}")
        while True:
            body, headers = self.api.exchange("GET", path, {**(params or {}), "page": page, "per_page": 100})
            if not isinstance(body, list):
                raise SourceError(SOURCE, f"GET {path} answered {type(body).__name__}, not a list")
            guard.check(page, body)
            yield body
            following = headers.get("x-next-page", "")
            if not following:
                return
            total = headers.get("x-total-pages", "")
            if not following.isdigit() or int(following) <= page or (total.isdigit() and int(following) > int(total)):
                raise SourceError(
                    SOURCE,
                    f"GET {path}: page {page} names {following!r} as the next page; the pagination does not advance",
                )
            page = int(following)

    def all_pages(self, path: str, params: dict | None = None) -> list[list[dict]]:
        return list(self.pages(path, params))

    def get(self, path: str, params: dict | None = None) -> Any:
        return self.api.request("GET", path, params)

    def graphql(self, query: str, variables: dict) -> dict:
        """One GraphQL query's `data`. GitLab answers a failed query with HTTP 200 and an `errors`
        list: that is a `GraphqlError` carrying GitLab's messages."""
        body = self.api.request(
            "POST", self.graphql_url, headers=self._graphql_auth, json_body={"query": query, "variables": variables}
        )
        if not isinstance(body, dict):
            raise SourceError(SOURCE, f"POST {self.graphql_url} answered {type(body).__name__}, not an object")
        if body.get("errors"):
            messages = [str(e.get("message") if isinstance(e, dict) else e) for e in body["errors"]]
            raise GraphqlError(messages)
        return body.get("data") or {}

    def close(self) -> None:
        self.api.close()


class GraphqlError(SourceError):
    """GitLab's GraphQL API refused or failed a query; `messages` are GitLab's own."""

    def __init__(self, messages: list[str]):
        self.detail = "GraphQL query answered: " + "; ".join(m[:200] for m in messages)
        super().__init__(
            SOURCE, self.detail, hint="sources.gitlab.graphql = false reads each merge request's commits through REST"
        )
        self.messages = messages

    @property
    def too_complex(self) -> bool:
        return any("exceeds max complexity" in m for m in self.messages)


def graphql_endpoint(base_url: str) -> str | None:
    """GitLab's GraphQL endpoint beside its REST one: `https://host/api/v4` -> `https://host/api/graphql`."""
    root = base_url.rstrip("/")
    return root.removesuffix("/api/v4") + "/api/graphql" if root.endswith("/api/v4") else None


def segment(value: int | str) -> str:
    """One URL path segment from a value that came from an API or the configuration: a project
    path like `acme/api` becomes `acme%2Fapi`, and nothing can step into another path."""
    return quote(str(value), safe="")


def incident_severity(issue: dict, record: str) -> int | None:
    for label in issue.get("labels") or []:
        if isinstance(label, str) and label.lower().startswith("severity::"):
            return fields.parse_int(SOURCE, label.split("::", 1)[1], record, "labels[severity::]")
    name = issue.get("severity")
    return SEVERITY_BY_NAME.get(str(name).upper()) if name else None


@dlt.source(name=SOURCE, max_table_nesting=0)
def gitlab_source(
    projects: list = dlt.config.value,
    private_token: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    groups: list | None = None,
    environment_tiers: list | None = None,
    start_date: str | None = None,
    lookback_hours: float = 1.0,
    dora_lookback_days: int = 30,
    max_concurrent_requests: int = 8,
    graphql: bool = True,
    graphql_url: str | None = None,
) -> list[DltResource]:
    """Deployments, merge requests, incidents and DORA metrics of the configured projects.

    `graphql` (on by default) reads merged MRs' commits through GitLab's GraphQL API, up to 100
    MRs a request, instead of one REST request per MR: at hundreds of thousands of MRs that is the
    difference between minutes and hours within GitLab's rate limit. `graphql_url` defaults to
    `/api/graphql` beside `base_url`'s `/api/v4`."""
    start = fields.parse_timestamp(SOURCE, start_date, "configuration", "sources.gitlab.start_date") or (
        datetime.now(UTC) - timedelta(days=365)
    )
    settings = GitlabSettings(
        base_url,
        private_token,
        fields.as_list(projects),
        fields.as_list(groups),
        fields.as_list(environment_tiers) or ["production"],
        max(1, int(max_concurrent_requests)),
        (graphql_url or graphql_endpoint(base_url) or "") if graphql else None,
    )
    lag = lookback_hours * 3600
    deployment_rows = deployments(settings, dlt.sources.incremental("updated_at", initial_value=start, lag=lag))
    return [
        project_records(settings),
        environments(settings),
        deployment_rows,
        deployment_rows | deployment_merge_requests(settings),
        merge_requests(settings, dlt.sources.incremental("updated_at", initial_value=start, lag=lag)),
        incidents(settings, dlt.sources.incremental("updated_at", initial_value=start, lag=lag)),
        dora_metrics(settings, start.date(), dora_lookback_days),
    ]


class GitlabSettings:
    def __init__(
        self,
        base_url: str,
        token: str,
        projects: list,
        groups: list,
        tiers: list[str],
        max_concurrent: int = 8,
        graphql_url: str | None = None,
    ):
        self.base_url, self.token, self.projects, self.groups, self.tiers = base_url, token, projects, groups, tiers
        # GraphQL for MRs' commits: its endpoint, "" when it cannot be derived, None when off
        self.graphql_url = graphql_url
        # requests in flight together: one project's list beside another's, and the requests of
        # one record each (a deployment's MRs, an MR's commits)
        self.max_concurrent = max_concurrent
        self._resolved: list[dict] | None = None
        self._tiers: dict[int, dict[int, str | None]] = {}
        self._shared: GitlabClient | None = None

    def environment_tiers(self, client: GitlabClient, project_id: int) -> dict[int, str | None]:
        """Environment id -> tier of one project (read once per run)."""
        if project_id not in self._tiers:
            self._tiers[project_id] = {
                e["id"]: e.get("tier")
                for page in client.pages(f"/projects/{segment(project_id)}/environments")
                for e in page
            }
        return self._tiers[project_id]

    def client(self) -> GitlabClient:
        if not self.projects and not self.groups:
            raise SourceError(SOURCE, "no projects or groups configured", hint="set sources.gitlab.projects")
        if not self.token:
            raise SourceError(SOURCE, "no private token configured", hint="set sources.gitlab.private_token")
        if self.graphql_url == "":
            raise SourceError(
                SOURCE,
                f"no GraphQL endpoint beside base_url {self.base_url}, which does not end in /api/v4",
                hint="set sources.gitlab.graphql_url, or sources.gitlab.graphql = false",
            )
        return GitlabClient(self.base_url, self.token, self.max_concurrent, self.graphql_url)

    def shared_client(self) -> GitlabClient:
        """One client for every call of a transformer (one call per page of deployments) in a run:
        a client per page paid for a TLS context and new connections each time. It is closed
        when these settings go."""
        with _SHARED_CLIENT_LOCK:
            if self._shared is None:
                self._shared = self.client()
                weakref.finalize(self, self._shared.close)
            return self._shared

    def resolved_projects(self, client: GitlabClient) -> list[dict]:
        """Every configured project (and every project of the configured groups), once."""
        if self._resolved is None:
            found: dict[int, dict] = {}
            read = partial(_project, client)
            for body in concurrently(read, self.projects, self.max_concurrent):
                found[body["id"]] = body
            for group in self.groups:
                for page in client.pages(f"/groups/{segment(group)}/projects", {"include_subgroups": "true"}):
                    found.update({p["id"]: p for p in page})
            self._resolved = list(found.values())
        return self._resolved


def _project(client: GitlabClient, project: int | str) -> dict:
    return client.get(f"/projects/{segment(project)}")


def per_project(settings: GitlabSettings, projects: list[dict], read: Callable[[dict], T]) -> Iterator[tuple[dict, T]]:
    """`read` of every project, several projects side by side (the client bounds the requests in
    flight), each handed back in the projects' order as soon as it is read: with hundreds of
    projects, one list after another costs a round trip per page."""
    yield from zip(projects, stream_concurrently(read, projects, settings.max_concurrent), strict=True)


@contextmanager
def _client_for(settings: GitlabSettings) -> Iterator[tuple[GitlabClient, list[dict]]]:
    """A client and the resolved projects, closed when the resource is done."""
    client = settings.client()
    try:
        yield client, settings.resolved_projects(client)
    finally:
        client.close()


@dlt.resource(
    name="projects",
    primary_key="id",
    write_disposition="merge",
    columns={
        "id": {"data_type": "bigint"},
        "name": {"data_type": "text"},
        "path_with_namespace": {"data_type": "text"},
        "web_url": {"data_type": "text"},
    },
)
def project_records(settings: GitlabSettings) -> Iterator[list[dict]]:
    yield schema_marker()
    with _client_for(settings) as (_, projects):
        yield [{k: p.get(k) for k in ("id", "name", "path_with_namespace", "web_url")} for p in projects]


@dlt.resource(
    primary_key="id",
    write_disposition="merge",
    columns={
        "id": {"data_type": "bigint"},
        "project_id": {"data_type": "bigint"},
        "name": {"data_type": "text"},
        "tier": {"data_type": "text"},
        "state": {"data_type": "text"},
    },
)
def environments(settings: GitlabSettings) -> Iterator[list[dict]]:
    yield schema_marker()
    with _client_for(settings) as (client, projects):

        def listed(project: dict) -> list[list[dict]]:
            return client.all_pages(f"/projects/{segment(project['id'])}/environments")

        for project, pages in per_project(settings, projects, listed):
            for page in pages:
                convert = partial(_environment_row, project["id"])
                yield convert_each(SOURCE, "environments", page, convert, "id", service_key=project["id"])


def _environment_row(project_id: int, e: dict) -> dict:
    record = f"environment {e.get('name') or e.get('id')} of project {project_id}"
    return {
        "id": _id(e.get("id"), record, "id"),
        "project_id": project_id,
        "name": e.get("name"),
        "tier": e.get("tier"),
        "state": e.get("state"),
    }


DEPLOYMENT_COLUMNS = {
    "id": {"data_type": "bigint", "nullable": False},
    "iid": {"data_type": "bigint"},
    "project_id": {"data_type": "bigint"},
    "environment_id": {"data_type": "bigint"},
    "environment_name": {"data_type": "text"},
    "status": {"data_type": "text"},
    "sha": {"data_type": "text"},
    "ref": {"data_type": "text"},
    "created_at": {"data_type": "timestamp"},
    "updated_at": {"data_type": "timestamp"},
    "finished_at": {"data_type": "timestamp"},
}


@dlt.resource(primary_key="id", write_disposition="merge", columns=DEPLOYMENT_COLUMNS)
def deployments(
    settings: GitlabSettings,
    cursor: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at"),  # noqa: B008 - dlt idiom
) -> Iterator[list[dict]]:
    yield schema_marker()
    with _client_for(settings) as (client, projects):
        after = cursor.start_value or datetime(1970, 1, 1, tzinfo=UTC)
        params = {"order_by": "updated_at", "sort": "asc", "updated_after": after.isoformat()}

        def listed(project: dict) -> list[list[dict]]:
            return client.all_pages(f"/projects/{segment(project['id'])}/deployments", params)

        yield from _DEPLOYMENT_BATCHES.regroup(
            convert_each(SOURCE, "deployments", page, partial(_deployment_row, project["id"]), "id", project["id"])
            for project, pages in per_project(settings, projects, listed)
            for page in pages
        )


def _deployment_row(project_id: int, d: dict) -> dict:
    record = f"deployment {d.get('id')} of project {project_id}"
    deployable = _object(d.get("deployable"), record, "deployable")
    environment = _object(d.get("environment"), record, "environment")
    finished = _ts(deployable.get("finished_at"), record, "deployable.finished_at")
    updated = _ts(d.get("updated_at"), record, "updated_at")
    if finished is None and d.get("status") == "success":  # created through the API: no job
        finished = updated
    return {
        "id": _id(d.get("id"), record, "id"),
        "iid": fields.parse_int(SOURCE, d.get("iid"), record, "iid"),
        "project_id": project_id,
        "environment_id": fields.parse_int(SOURCE, environment.get("id"), record, "environment.id"),
        "environment_name": environment.get("name"),
        "status": d.get("status"),
        "sha": d.get("sha"),
        "ref": d.get("ref"),
        "created_at": _ts(d.get("created_at"), record, "created_at"),
        "updated_at": updated,
        "finished_at": finished,
    }


def _id(value: Any, record: str, field: str) -> int:
    """GitLab ids are whole numbers; a missing or non-numeric one cannot be loaded."""
    return fields.parse_int(SOURCE, fields.require(SOURCE, value, record, field), record, field)


def _object(value: Any, record: str, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SourceRecordError(SOURCE, record, field, f"is not an object: {value!r}"[:200])
    return value


MR_COLUMNS = {
    "id": {"data_type": "bigint", "nullable": False},
    "iid": {"data_type": "bigint"},
    "project_id": {"data_type": "bigint"},
    "title": {"data_type": "text"},
    "state": {"data_type": "text"},
    "created_at": {"data_type": "timestamp"},
    "updated_at": {"data_type": "timestamp"},
    "merged_at": {"data_type": "timestamp"},
    "source_branch": {"data_type": "text"},
    "target_branch": {"data_type": "text"},
    "sha": {"data_type": "text"},
    "merge_commit_sha": {"data_type": "text"},
    "squash_commit_sha": {"data_type": "text"},
}
DEPLOYMENT_MR_COLUMNS = {
    "deployment_id": {"data_type": "bigint"},
    "merge_request_id": {"data_type": "bigint"},
    **{k: v for k, v in MR_COLUMNS.items() if k != "id"},
}
MERGED_MR_COLUMNS = {**MR_COLUMNS, "first_commit_at": {"data_type": "timestamp"}}
_DEPLOYMENT_BATCHES = TypedBatches(DEPLOYMENT_COLUMNS, "id")
_DEPLOYMENT_MR_BATCHES = TypedBatches(DEPLOYMENT_MR_COLUMNS, ("deployment_id", "merge_request_id"))
_MERGED_MR_BATCHES = TypedBatches(MERGED_MR_COLUMNS, "id")


def _merge_request_row(project_id: int, mr: dict) -> dict:
    record = f"merge request !{mr.get('iid')} of project {project_id}"
    return {
        "id": _id(mr.get("id"), record, "id"),
        "iid": _id(mr.get("iid"), record, "iid"),
        "project_id": project_id,
        "title": mr.get("title"),
        "state": mr.get("state"),
        "created_at": _ts(mr.get("created_at"), record, "created_at"),
        "updated_at": _ts(mr.get("updated_at"), record, "updated_at"),
        "merged_at": _ts(mr.get("merged_at"), record, "merged_at"),
        "source_branch": mr.get("source_branch"),
        "target_branch": mr.get("target_branch"),
        "sha": mr.get("sha"),
        "merge_commit_sha": mr.get("merge_commit_sha"),
        "squash_commit_sha": mr.get("squash_commit_sha"),
    }


@dlt.transformer(
    primary_key=("deployment_id", "merge_request_id"),
    write_disposition="merge",
    columns=DEPLOYMENT_MR_COLUMNS,
)
def deployment_merge_requests(rows: pa.Table | list[dict], settings: GitlabSettings) -> Iterator[pa.Table | list]:
    """The MRs GitLab links to each successful deployment to a production (or configured) tier:
    one request per such deployment. Other deployments never count, so their MRs are not read."""
    if isinstance(rows, pa.Table):
        rows = rows.select(["id", "project_id", "environment_id", "status"]).to_pylist()
    successful = [r for r in rows if r["status"] == "success"]
    if not successful:
        yield batch([])
        return
    wanted = {"production", *settings.tiers}
    client = settings.shared_client()
    counting = [
        r
        for r in successful
        if settings.environment_tiers(client, r["project_id"]).get(r["environment_id"], "production") in wanted
    ]
    if not counting:
        yield batch([])

    def linked(row: dict) -> list[list]:
        path = f"/projects/{segment(row['project_id'])}/deployments/{segment(row['id'])}/merge_requests"
        return list(client.pages(path))

    yield from _DEPLOYMENT_MR_BATCHES.regroup(
        convert_each(
            SOURCE,
            "deployment_merge_requests",
            page,
            partial(_deployment_merge_request_row, row["id"], row["project_id"]),
            "id",
            service_key=row["project_id"],
        )
        for row, pages in zip(counting, concurrently(linked, counting, settings.max_concurrent), strict=True)
        for page in pages
    )


def _deployment_merge_request_row(deployment_id: int, project_id: int, mr: dict) -> dict:
    row = _merge_request_row(project_id, mr)
    return {"deployment_id": deployment_id, "merge_request_id": row.pop("id"), **row}


@dlt.resource(primary_key="id", write_disposition="merge", columns=MERGED_MR_COLUMNS)
def merge_requests(
    settings: GitlabSettings,
    cursor: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at"),  # noqa: B008 - dlt idiom
) -> Iterator[list[dict]]:
    """Merged MRs changed since the cursor, each with its first commit time: its commits are read
    the first time the MR is seen merged (through GraphQL, one request for a page of up to 100
    MRs; through REST, one per MR), never when it is touched again later (a comment, a label),
    because a merged MR's commits no longer change and the warehouse holds the time."""
    yield schema_marker()
    with _client_for(settings) as (client, projects):
        after = cursor.start_value or datetime(1970, 1, 1, tzinfo=UTC)
        params = {"state": "merged", "order_by": "updated_at", "sort": "asc", "updated_after": after.isoformat()}

        def listed(project: dict) -> list[list[dict]]:
            return client.all_pages(f"/projects/{segment(project['id'])}/merge_requests", params)

        read_commits = _commit_dates_graphql if settings.graphql_url else _commit_dates_rest
        pipeline = dlt.current.pipeline()  # once: each call resolves dlt's configuration again

        def pages_to_complete() -> Iterator[tuple[dict, list, dict, list[int]]]:
            """Each listed page with what the warehouse already holds of it (read in this thread)."""
            with _LoadedFirstCommits(pipeline) as loaded:
                for project, pages in per_project(settings, projects, listed):
                    for page in pages:
                        iids = sorted({mr["iid"] for mr in page if isinstance(mr, dict) and _is_int(mr.get("iid"))})
                        known = loaded.of(project["id"], iids)
                        yield project, page, known, [iid for iid in iids if iid not in known]

        def completed(item: tuple[dict, list, dict, list[int]]) -> tuple[tuple, CommitDates]:
            project, _, _, unknown = item
            return item, read_commits(client, settings, project, unknown) if unknown else {}

        def converted(item: tuple[tuple, CommitDates]) -> list[dict]:
            (project, page, known, _), fetched = item
            convert = partial(_merged_request_row, fetched, known, project["id"])
            return convert_each(SOURCE, "merge_requests", page, convert, "id", service_key=project["id"])

        # several pages' commits asked at once (the client bounds the requests in flight)
        fetched_pages = stream_concurrently(completed, pages_to_complete(), settings.max_concurrent)
        yield from _MERGED_MR_BATCHES.regroup(map(converted, fetched_pages))


CommitDates = dict[int, tuple[list[Any], str]]  # MR iid -> its commits' authored dates, as sent, and their field


def _commit_dates_rest(client: GitlabClient, settings: GitlabSettings, project: dict, iids: list[int]) -> CommitDates:
    """Each MR's commits through REST: one request per MR (more for an MR of over 100 commits)."""

    def commits(iid: int) -> tuple[list[Any], str]:
        path = f"/projects/{segment(project['id'])}/merge_requests/{segment(iid)}/commits"
        dates = [c.get("authored_date") if isinstance(c, dict) else None for page in client.pages(path) for c in page]
        return dates, "commits[].authored_date"

    return dict(zip(iids, concurrently(commits, iids, settings.max_concurrent), strict=True))


MR_COMMITS_QUERY = """
query($fullPath: ID!, $iids: [String!], $first: Int) {
  project(fullPath: $fullPath) {
    mergeRequests(iids: $iids, first: $first) {
      nodes { iid commits(first: 100) { pageInfo { hasNextPage } nodes { authoredDate } } }
    }
  }
}
"""


def _commit_dates_graphql(
    client: GitlabClient, settings: GitlabSettings, project: dict, iids: list[int]
) -> CommitDates:
    """The commits of up to 100 MRs in one GraphQL request. A query GitLab finds too complex is
    split in halves until it passes; an MR GraphQL does not return, or with more than 100
    commits, is read through REST, so every MR gets its earliest commit."""
    path = project.get("path_with_namespace") or str(project["id"])
    found: CommitDates = {}

    def read(batch: list[int]) -> list:
        try:
            data = client.graphql(
                MR_COMMITS_QUERY, {"fullPath": path, "iids": [str(i) for i in batch], "first": len(batch)}
            )
        except GraphqlError as exc:
            if exc.too_complex and len(batch) > 1:
                half = len(batch) // 2
                return read(batch[:half]) + read(batch[half:])
            raise SourceError(SOURCE, f"merge requests' commits of project {path}: {exc.detail}", exc.hint) from None
        if not isinstance(data.get("project"), dict):
            raise SourceError(
                SOURCE, f"GraphQL does not find project {path}", hint="check the token's access to the project"
            )
        nodes = (data["project"].get("mergeRequests") or {}).get("nodes") or []
        return [node for node in nodes if isinstance(node, dict)]

    batches = [iids[i : i + 100] for i in range(0, len(iids), 100)]
    for nodes in concurrently(read, batches, settings.max_concurrent):
        for node in nodes:
            commits = node.get("commits") if isinstance(node.get("commits"), dict) else {}
            iid = node.get("iid")
            if not str(iid).isdigit() or (commits.get("pageInfo") or {}).get("hasNextPage"):
                continue
            dates = [c.get("authoredDate") if isinstance(c, dict) else None for c in commits.get("nodes") or []]
            found[int(iid)] = (dates, "commits.nodes[].authoredDate")
    rest = [iid for iid in iids if iid not in found]
    return found | (_commit_dates_rest(client, settings, project, rest) if rest else {})


class _LoadedFirstCommits:
    """The first commit times the destination already holds for merged MRs, read through one
    connection kept open for a whole listing. Why: dlt opens a DuckDB connection for every
    `sql_client` and closes it after, and with a page of MRs per look-up that was about 6 s of an
    incremental refresh at a million deployments (1.9 GB file), against milliseconds of queries."""

    def __init__(self, pipeline: dlt.Pipeline):
        self._pipeline = pipeline
        self._connection = ExitStack()
        self._client: Any = None
        self._table = ""

    def __enter__(self) -> _LoadedFirstCommits:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._connection.close()

    def of(self, project_id: int, iids: list[int]) -> dict[int, datetime | None]:
        """Those of these MRs of the project (none on a first run, before the table exists)."""
        # Nothing loaded yet (a first run, or a source read without a run): leave the destination
        # alone rather than connect to it, which would create a DuckDB file.
        pipeline = self._pipeline
        if not iids or pipeline.default_schema_name is None or "merge_requests" not in pipeline.default_schema.tables:
            return {}
        try:
            if self._client is None:
                self._client = self._connection.enter_context(pipeline.sql_client())
                self._table = self._client.make_qualified_table_name("merge_requests")
            rows = self._client.execute_sql(
                f"select iid, first_commit_at from {self._table} where project_id = %s and iid in (select unnest(%s))",
                project_id,
                iids,
            )
        except (DatabaseUndefinedRelation, DestinationUndefinedEntity):
            return {}
        return {iid: first_commit_at for iid, first_commit_at in rows or []}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _merged_request_row(fetched: CommitDates, known: dict[int, datetime | None], project_id: int, mr: dict) -> dict:
    """A merged MR with its first commit time: the earliest authored date of its commits, or the
    time already loaded for it."""
    row = _merge_request_row(project_id, mr)
    if row["iid"] in known:
        row["first_commit_at"] = known[row["iid"]]
        return row
    record = f"merge request !{row['iid']} of project {project_id}"
    dates, field = fetched.get(row["iid"], ([], ""))
    authored = [_ts(value, record, field) for value in dates]
    row["first_commit_at"] = min((a for a in authored if a), default=None)
    return row


INCIDENT_COLUMNS = {
    "id": {"data_type": "bigint", "nullable": False},
    "iid": {"data_type": "bigint"},
    "project_id": {"data_type": "bigint"},
    "title": {"data_type": "text"},
    "state": {"data_type": "text"},
    "severity": {"data_type": "bigint"},
    "created_at": {"data_type": "timestamp"},
    "updated_at": {"data_type": "timestamp"},
    "closed_at": {"data_type": "timestamp"},
}
_INCIDENT_BATCHES = TypedBatches(INCIDENT_COLUMNS, "id")


@dlt.resource(primary_key="id", write_disposition="merge", columns=INCIDENT_COLUMNS)
def incidents(
    settings: GitlabSettings,
    cursor: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at"),  # noqa: B008 - dlt idiom
) -> Iterator[list[dict]]:
    yield schema_marker()
    with _client_for(settings) as (client, projects):
        after = cursor.start_value or datetime(1970, 1, 1, tzinfo=UTC)
        params = {"issue_type": "incident", "order_by": "updated_at", "sort": "asc", "updated_after": after.isoformat()}

        def listed(project: dict) -> list[list[dict]]:
            return client.all_pages(f"/projects/{segment(project['id'])}/issues", params)

        yield from _INCIDENT_BATCHES.regroup(
            convert_each(SOURCE, "incidents", page, partial(_incident_row, project["id"]), "id", project["id"])
            for project, pages in per_project(settings, projects, listed)
            for page in pages
        )


def _incident_row(project_id: int, issue: dict) -> dict:
    record = f"incident #{issue.get('iid')} of project {project_id}"
    return {
        "id": _id(issue.get("id"), record, "id"),
        "iid": fields.parse_int(SOURCE, issue.get("iid"), record, "iid"),
        "project_id": project_id,
        "title": issue.get("title"),
        "state": issue.get("state"),
        "severity": incident_severity(issue, record),
        "created_at": _ts(issue.get("created_at"), record, "created_at"),
        "updated_at": _ts(issue.get("updated_at"), record, "updated_at"),
        "closed_at": _ts(issue.get("closed_at"), record, "closed_at"),
    }


@dlt.resource(
    primary_key=("project_id", "metric", "date"),
    write_disposition="merge",
    columns={
        "project_id": {"data_type": "bigint"},
        "metric": {"data_type": "text"},
        "date": {"data_type": "text"},
        "value": {"data_type": "double"},
    },
)
def dora_metrics(settings: GitlabSettings, start: date, lookback_days: int) -> Iterator[list[dict]]:
    """GitLab's daily DORA values, only over the days the warehouse needs.

    Per project: on its first read, from its first activity (earliest deployment or incident, two
    one-row requests) rather than from `start_date`; afterwards from the latest day GitLab gave a
    value for minus `lookback_days`, because recent days change as deployments finish and
    incidents close. The position follows GitLab's data, never this machine's clock: a clock
    ahead of GitLab's (or data that lags) would otherwise move the window past days still to be
    read. Each request spans at most 180 days (the API's limit). A project with no activity yet
    is probed again on the next run.
    """
    yield schema_marker()
    read_until: dict[str, str] = dlt.current.resource_state().setdefault("read_until", {})
    last_read = dict(read_until)  # the workers read this copy; the state changes as projects load
    today = datetime.now(UTC).date()
    with _client_for(settings) as (client, projects):

        def read(project: dict) -> tuple[date, list[tuple[str, list]]] | None:
            key = str(project["id"])
            if key in last_read:
                first = date.fromisoformat(last_read[key]) - timedelta(days=lookback_days)
            else:
                first = first_activity(client, project["id"])
                if first is None:
                    return None
            first = max(first, start)
            return first, _dora_values(client, project["id"], settings.tiers, first, today)

        for project, read_from in per_project(settings, projects, read):
            if read_from is None:
                continue
            first, values_of = read_from
            latest = date.fromisoformat(last_read.get(str(project["id"]), first.isoformat()))
            for metric, values in values_of:
                convert = partial(_dora_row, project["id"], metric)
                dated = [v for v in values if not isinstance(v, dict) or v.get("date") is not None]
                rows = convert_each(SOURCE, "dora_metrics", dated, convert, "date", service_key=project["id"])
                latest = max([latest, *(date.fromisoformat(r["date"]) for r in rows if isinstance(r, dict))])
                yield rows
            read_until[str(project["id"])] = latest.isoformat()


def _dora_values(
    client: GitlabClient, project_id: int, tiers: list[str], first: date, today: date
) -> list[tuple[str, list]]:
    """Every DORA metric of one project from `first` to today, in windows of the API's limit."""
    read = []
    for metric in DORA_METRICS:
        window_start = first
        while window_start <= today:
            window_end = min(window_start + timedelta(days=MAX_DORA_RANGE_DAYS - 1), today)
            params = {
                "metric": metric,
                "start_date": window_start.isoformat(),
                "end_date": window_end.isoformat(),
                "interval": "daily",
                "environment_tiers[]": tiers,
            }
            values = client.get(f"/projects/{segment(project_id)}/dora/metrics", params)
            if not isinstance(values, list):
                raise SourceError(SOURCE, f"DORA {metric} of project {project_id} is not a list")
            read.append((metric, values))
            window_start = window_end + timedelta(days=1)
    return read


def _dora_row(project_id: int, metric: str, v: dict) -> dict:
    record = f"DORA {metric} of project {project_id} on {v.get('date')}"
    if "value" not in v:
        raise SourceRecordError(SOURCE, record, "value", "is missing")
    day = fields.parse_timestamp(SOURCE, v.get("date"), record, "date", required=True)
    value = fields.parse_float(SOURCE, v["value"], record, "value")
    return {"project_id": project_id, "metric": metric, "date": day.date().isoformat(), "value": value}


def first_activity(client: GitlabClient, project_id: int) -> date | None:
    """The day of the project's earliest deployment or incident, whichever is first."""
    record = f"project {project_id}"
    found = []
    for path, params, field in (
        (f"/projects/{segment(project_id)}/deployments", {"order_by": "id", "sort": "asc"}, "created_at"),
        (
            f"/projects/{segment(project_id)}/issues",
            {"issue_type": "incident", "order_by": "created_at", "sort": "asc"},
            "created_at",
        ),
    ):
        first = client.get(path, {**params, "per_page": 1, "page": 1})
        if isinstance(first, list) and first:
            when = _ts(first[0].get(field), record, f"{path.rsplit('/', 1)[-1]}[0].{field}")
            if when is not None:
                found.append(when.date())
    return min(found, default=None)
