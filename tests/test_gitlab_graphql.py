"""GitLab's merged MRs' commits through its GraphQL API: up to 100 MRs a request instead of one
REST request each, the same rows, and every way GraphQL can fall short (a query too complex, an
MR left out or with more than 100 commits, an error) handled in the open. Real HTTP on loopback
against the emulator; first-commit times checked against the simulated world."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from math import ceil

import pytest
from sandbox_sources import gitlab, rows_in

from dora_pipeline.sources.gitlab import graphql_endpoint
from dora_pipeline.sources.http import SourceError, user_message

pytestmark = pytest.mark.usefixtures("fresh_pipeline")


def merge_requests(sandbox, **overrides) -> tuple[list[dict], list[dict]]:
    """Every merged MR row the source yields, and the requests it sent for them."""
    state = sandbox.states["gitlab"]
    mark = len(state.requests)
    rows = rows_in(gitlab(sandbox, **overrides).with_resources("merge_requests"))
    return rows, state.requests[mark:]


def first_commits_in_world(sandbox) -> dict[tuple[int, int], object]:
    """(project id, MR iid) -> the first commit time the simulated world gave each change merged
    since the configured start (a merged MR's `updated_at` is its merge)."""
    state = sandbox.states["gitlab"]
    start = datetime.fromisoformat(sandbox.source_environment()["SOURCES__GITLAB__START_DATE"].replace("Z", "+00:00"))
    return {
        (service.project_id, change.number): change.first_commit_at
        for service in state.projects.values()
        for change in state.changes(service)
        if change.merged_at >= start
    }


def rest_commit_reads(requests: list[dict]) -> list[str]:
    return [r["path"] for r in requests if r["path"].endswith("/commits")]


def graphql_reads(requests: list[dict]) -> list[dict]:
    return [r for r in requests if r["path"] == "/api/graphql"]


@pytest.fixture
def rest_rows(sandbox):
    rows, _ = merge_requests(sandbox, graphql=False)
    return sorted(map(repr, rows))


def test_graphql_reads_the_same_first_commits_as_rest_in_a_request_per_hundred_mrs(sandbox, rest_rows, figures):
    rows, requests = merge_requests(sandbox)

    truth = first_commits_in_world(sandbox)
    assert {(r["project_id"], r["iid"]): r["first_commit_at"] for r in rows} == truth
    assert any(v is None for v in truth.values()) and any(truth.values())  # rewritten histories too
    assert sorted(map(repr, rows)) == rest_rows
    assert rest_commit_reads(requests) == []
    per_project = Counter(project for project, _ in truth)
    queries = graphql_reads(requests)
    assert len(queries) == sum(ceil(n / 100) for n in per_project.values())
    assert all(len(q["body"]["variables"]["iids"]) <= 100 for q in queries)
    figures.append(f"GitLab MRs' commits: {len(truth)} MRs in {len(queries)} GraphQL requests (REST: {len(truth)})")


def test_a_query_too_complex_for_gitlab_is_split_until_it_passes(sandbox, rest_rows):
    state = sandbox.states["gitlab"]
    state.faults.graphql_max_merge_requests = 30

    rows, requests = merge_requests(sandbox)

    assert sorted(map(repr, rows)) == rest_rows
    sizes = [len(q["body"]["variables"]["iids"]) for q in graphql_reads(requests)]
    assert max(sizes) == 100 and sorted(sizes)[0] <= 30  # refused at 100, split, then answered
    assert sum(s for s in sizes if s <= 30) == len(rows)  # every MR read once by a query that passed
    assert rest_commit_reads(requests) == []


def test_an_mr_graphql_leaves_out_or_cuts_short_is_read_through_rest(sandbox, rest_rows):
    """An MR with more than 100 commits (GraphQL's page says there are more) and an MR missing
    from GraphQL's answer are both read through REST, and nothing else is."""
    touched: list[str] = []

    def cut(path: str, body: object) -> object:
        if touched or path != "/api/graphql":
            return body
        nodes = body["data"]["project"]["mergeRequests"]["nodes"]
        nodes[0]["commits"]["pageInfo"]["hasNextPage"] = True
        touched.extend([nodes[0]["iid"], nodes.pop(1)["iid"]])
        return body

    sandbox.states["gitlab"].faults.mutate = cut

    rows, requests = merge_requests(sandbox)

    assert sorted(map(repr, rows)) == rest_rows
    assert sorted(path.split("/")[-2] for path in rest_commit_reads(requests)) == sorted(touched)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (
            {"data": None, "errors": [{"message": "Field 'commits' doesn't exist on type 'MergeRequest'"}]},
            "GraphQL query answered: Field 'commits' doesn't exist on type 'MergeRequest'",
        ),
        ({"data": {"project": None}}, "GraphQL does not find project"),
    ],
    ids=["error", "no-project"],
)
def test_a_graphql_failure_names_the_source_the_project_and_gitlabs_words(answer, says, sandbox):
    sandbox.states["gitlab"].faults.mutate = lambda path, body: answer if path == "/api/graphql" else body

    with pytest.raises(Exception) as raised:
        merge_requests(sandbox)

    message = user_message(raised.value)
    assert message.startswith("gitlab: ") and message.count("gitlab:") == 1 and says in message
    assert sandbox.states["gitlab"].token not in message


def test_the_graphql_endpoint_sits_beside_the_rest_one_or_is_configured(sandbox, rest_rows):
    assert graphql_endpoint("https://gitlab.example.com/api/v4/") == "https://gitlab.example.com/api/graphql"
    assert (
        graphql_endpoint("https://gitlab.example.com/gitlab/api/v4") == "https://gitlab.example.com/gitlab/api/graphql"
    )
    assert graphql_endpoint("https://proxy.example.com/gitlab") is None

    base = sandbox.base_url("gitlab")
    rows, requests = merge_requests(sandbox, base_url=f"{base}/api/v4/")  # the endpoint derived
    assert sorted(map(repr, rows)) == rest_rows and graphql_reads(requests)
    rows, requests = merge_requests(sandbox, base_url=f"{base}/api/v4", graphql_url=f"{base}/api/graphql")
    assert sorted(map(repr, rows)) == rest_rows and graphql_reads(requests)
    for overrides, says in (
        ({"base_url": f"{base}/proxied"}, "set sources.gitlab.graphql_url, or sources.gitlab.graphql = false"),
        ({"graphql_url": "http://gitlab.example.com/api/graphql"}, "is not https"),
    ):
        with pytest.raises(Exception) as raised:
            merge_requests(sandbox, **overrides)
        assert says in f"{user_message(raised.value)} {getattr(find_source_error(raised.value), 'hint', '')}"


def find_source_error(exc: BaseException | None) -> SourceError | None:
    while exc is not None and not isinstance(exc, SourceError):
        exc = exc.__cause__ or exc.__context__
    return exc
