"""Emulator of the part of GitLab's GraphQL API (`POST /api/graphql`) dora-pipeline reads: a
project's merge requests by `iids`, each with its `commits` (`docs/sources.md` §4).

The schema is a subset of GitLab's own names and types: `project(fullPath: ID!)`,
`Project.mergeRequests(iids, state, first, after)` -> `MergeRequestConnection` (`count`,
`pageInfo`, `nodes`), `MergeRequest.iid` (a String, as in GitLab), `MergeRequest.commits(first,
after)` -> `CommitConnection` with `Commit.authoredDate`. Connections page by opaque cursors,
at most 100 nodes a page (GitLab's maximum page size). A project that does not exist is `null`,
not an error. Errors come back as GitLab sends them: HTTP 200 with an `errors` list. A query
asking for more merge requests than the test knob `Faults.graphql_max_merge_requests` answers
GitLab's complexity error, so a client's way of splitting its query can be tested. Auth only as GitLab
documents it for GraphQL, `Authorization: Bearer`.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, build_schema, graphql_sync
from starlette.requests import Request
from starlette.responses import JSONResponse

from dora_pipeline.sandbox.emulator import iso_ms

if TYPE_CHECKING:
    from dora_pipeline.sandbox.gitlab_api import GitlabState
    from dora_pipeline.sandbox.world import Change, Service

MAX_PAGE_SIZE = 100

SCHEMA = build_schema(
    """
    scalar Time

    enum MergeRequestState { merged opened closed locked all }

    type Query {
      project(fullPath: ID!): Project
    }

    type PageInfo {
      hasNextPage: Boolean!
      hasPreviousPage: Boolean!
      startCursor: String
      endCursor: String
    }

    type Project {
      id: ID!
      fullPath: ID!
      mergeRequests(iids: [String!], state: MergeRequestState, first: Int, after: String): MergeRequestConnection
    }

    type MergeRequestConnection {
      count: Int!
      pageInfo: PageInfo!
      nodes: [MergeRequest]
    }

    type MergeRequest {
      id: ID!
      iid: String!
      title: String!
      createdAt: Time!
      updatedAt: Time!
      mergedAt: Time
      commits(first: Int, after: String): CommitConnection
    }

    type CommitConnection {
      pageInfo: PageInfo!
      nodes: [Commit]
    }

    type Commit {
      sha: String!
      title: String
      authoredDate: Time
      committedDate: Time
      authorName: String
    }
    """
)


def _cursor(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(json.loads(base64.b64decode(cursor))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor: {cursor!r}") from exc


def _page(items: list, first: int | None, after: str | None) -> dict:
    """One page of a connection: `first` nodes (at most GitLab's 100) after the cursor."""
    start = _offset(after)
    size = min(MAX_PAGE_SIZE, first if first is not None else MAX_PAGE_SIZE)
    if size < 0:
        raise GraphQLError("Argument 'first' on Field must be a non-negative integer")
    chunk = items[start : start + size]
    end = start + len(chunk)
    return {
        "count": len(items),
        "pageInfo": {
            "hasNextPage": end < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": _cursor(start) if chunk else None,
            "endCursor": _cursor(end) if chunk else None,
        },
        "nodes": chunk,
    }


class _Root:
    def __init__(self, state: GitlabState):
        self.state = state

    def project(self, info, fullPath: str) -> _Project | None:  # noqa: N803 - GraphQL's argument name
        service = self.state.project(fullPath)
        return None if service is None else _Project(self.state, service)


class _Project:
    def __init__(self, state: GitlabState, service: Service):
        self.state, self.service = state, service
        self.id = f"gid://gitlab/Project/{service.project_id}"
        self.fullPath = service.project_path

    def mergeRequests(  # noqa: N802 - GraphQL's field name
        self, info, iids: list[str] | None = None, state: str | None = None, first=None, after=None
    ) -> dict:
        limit = self.state.faults.graphql_max_merge_requests
        asked = min(MAX_PAGE_SIZE, first if first is not None else MAX_PAGE_SIZE)
        if iids is not None:
            asked = min(asked, len(iids))
        if limit is not None and asked > limit:
            raise GraphQLError(f"Query has complexity of {asked * 3 + 10}, which exceeds max complexity of {limit * 3}")
        if iids is None:
            changes = self.state.changes(self.service)
        else:  # looked up by number, so a query costs what it asks for, not the project's history
            found = (self.state.change(self.service, int(i)) for i in dict.fromkeys(iids) if i.isdigit())
            changes = [c for c in found if c is not None]
        if state not in (None, "merged", "all"):
            changes = []
        changes = sorted(changes, key=lambda c: c.opened_at, reverse=True)  # GitLab's default: created_desc
        page = _page(changes, first, after)
        page["nodes"] = [_MergeRequest(self.state, self.service, c) for c in page["nodes"]]
        return page


class _MergeRequest:
    def __init__(self, state: GitlabState, service: Service, change: Change):
        self.state, self.change = state, change
        self.id = f"gid://gitlab/MergeRequest/{state.mr_ids[change.change_id]}"
        self.iid = str(change.number)
        self.title = change.title
        self.createdAt = iso_ms(change.opened_at)
        self.updatedAt = self.mergedAt = iso_ms(change.merged_at)

    def commits(self, info, first=None, after=None) -> dict:
        page = _page(self.state.commits(self.change), first, after)
        page["nodes"] = [
            {
                "sha": c["id"],
                "title": c["title"],
                "authoredDate": c["authored_date"],
                "committedDate": c["committed_date"],
                "authorName": c["author_name"],
            }
            for c in page["nodes"]
        ]
        return page


async def read_payload(request: Request) -> Any:
    """The request's JSON body, or None when it is not JSON."""
    try:
        return json.loads(await request.body() or b"{}")
    except ValueError:
        return None


def answer(payload: Any, state: GitlabState) -> JSONResponse:
    """One GraphQL request: `{"query", "variables"}` in, `{"data", "errors"}` out (HTTP 200)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return JSONResponse({"errors": [{"message": "No query string was present"}]}, status_code=400)
    result = graphql_sync(
        SCHEMA, payload["query"], root_value=_Root(state), variable_values=payload.get("variables") or None
    )
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    return JSONResponse(body)
