"""GitLab, Multitudes, GitClear and Gearset Automation sources against their emulators over HTTP:
pagination to the last page, incremental parameters, empty results and the documented errors."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import dlt
import httpx
import pytest
from sandbox_sources import gitlab, rows_in

from dora_pipeline.sandbox.world import DEFAULT_AS_OF
from dora_pipeline.sources.gearset_automation import gearset_automation_source
from dora_pipeline.sources.gitclear import gitclear_source
from dora_pipeline.sources.gitlab import DORA_METRICS, GitlabClient
from dora_pipeline.sources.http import SourceHTTPError, SourceRecordError
from dora_pipeline.sources.multitudes import _row, multitudes_source

pytestmark = pytest.mark.usefixtures("fresh_pipeline")


def rows_of(source, resource: str) -> list[dict]:
    return rows_in(source.with_resources(resource))


# -- GitLab -------------------------------------------------------------------------------------
def test_gitlab_deployments_follow_x_next_page_to_the_last_page(sandbox):
    project = sandbox.world.services_in("gitlab")[0]
    expected = [
        d
        for d in sandbox.world.deployments
        if d.service == project.name and not d.is_test and d.deployed_at <= DEFAULT_AS_OF + timedelta(minutes=5)
    ]

    rows = rows_of(gitlab(sandbox, projects=[project.project_id]), "deployments")

    assert len(rows) == len(expected) > 100
    pages = [r["params"] for r in sandbox.requests("gitlab") if r["path"].endswith("/deployments")]
    assert [p["page"] for p in pages] == [str(i) for i in range(1, len(pages) + 1)] and len(pages) >= 2
    assert all(p["order_by"] == "updated_at" and "updated_after" in p for p in pages)


def test_gitlab_routes_a_url_encoded_path_like_its_numeric_id(sandbox):
    project = sandbox.world.services_in("gitlab")[0]
    client = GitlabClient(sandbox.base_url("gitlab") + "/api/v4", sandbox.states["gitlab"].token)
    by_path = client.get("/projects/" + project.project_path.replace("/", "%2F"))
    assert by_path == client.get(f"/projects/{project.project_id}")
    assert by_path["path_with_namespace"] == project.project_path


def test_gitlab_filter_pairing_rules_and_errors(sandbox):
    base = sandbox.base_url("gitlab") + "/api/v4/projects/1004"
    headers = {"PRIVATE-TOKEN": sandbox.states["gitlab"].token}
    unpaired = httpx.get(base + "/deployments", params={"updated_after": "2026-01-01T00:00:00Z"}, headers=headers)
    assert unpaired.status_code == 400 and "updated_at" in unpaired.json()["error"]
    client = GitlabClient(sandbox.base_url("gitlab") + "/api/v4", "wrong-token")
    with pytest.raises(SourceHTTPError) as raised:
        client.get("/projects/1004")
    assert raised.value.status == 401 and "wrong-token" not in str(raised.value)
    with pytest.raises(SourceHTTPError, match="404 Project Not Found"):
        GitlabClient(sandbox.base_url("gitlab") + "/api/v4", sandbox.states["gitlab"].token).get("/projects/99")


def test_gitlab_empty_results_after_the_newest_update(sandbox):
    late = (DEFAULT_AS_OF + timedelta(days=30)).isoformat()
    assert rows_of(gitlab(sandbox, start_date=late), "incidents") == []
    assert rows_of(gitlab(sandbox, start_date=late), "merge_requests") == []


def test_gitlab_dora_metrics_come_in_windows_of_at_most_180_days(sandbox):
    rows = rows_of(gitlab(sandbox), "dora_metrics")
    windows = [r["params"] for r in sandbox.requests("gitlab") if r["path"].endswith("/dora/metrics")]
    spans = {(datetime.fromisoformat(p["end_date"]) - datetime.fromisoformat(p["start_date"])).days for p in windows}
    assert max(spans) <= 179 and len(windows) > 8
    assert {r["metric"] for r in rows} == {
        "deployment_frequency",
        "lead_time_for_changes",
        "time_to_restore_service",
        "change_failure_rate",
    }
    too_long = httpx.get(
        sandbox.base_url("gitlab") + "/api/v4/projects/1004/dora/metrics",
        params={"metric": "deployment_frequency", "start_date": "2026-01-01", "end_date": "2026-08-01"},
        headers={"PRIVATE-TOKEN": sandbox.states["gitlab"].token},
    )
    assert too_long.status_code == 400


def test_gitlab_429_without_retry_after_backs_off_and_succeeds(sandbox):
    sandbox.states["gitlab"].faults.rate_limit_next_requests = 1
    sandbox.states["gitlab"].faults.retry_after_seconds = None
    client = GitlabClient(sandbox.base_url("gitlab") + "/api/v4", sandbox.states["gitlab"].token)
    assert client.get("/projects/1004")["id"] == 1004
    assert len(sandbox.requests("gitlab")) == 2


def test_gitlab_groups_expand_to_their_projects(sandbox):
    rows = rows_of(gitlab(sandbox, projects=[], groups=["acme"]), "projects")
    assert sorted(r["id"] for r in rows) == sorted(s.project_id for s in sandbox.world.services_in("gitlab"))


def test_gitlab_missing_projects_is_named_before_any_request(sandbox):
    with pytest.raises(Exception, match="no projects or groups configured"):
        rows_of(gitlab(sandbox, projects=[]), "deployments")
    assert sandbox.requests("gitlab") == []


# -- Multitudes ---------------------------------------------------------------------------------
def multitudes(sandbox, token=None):
    return multitudes_source(
        api_token=token or sandbox.states["multitudes"].token,
        base_url=sandbox.base_url("multitudes"),
        start_date=(sandbox.world.start - timedelta(days=1)).isoformat(),
    )


def test_multitudes_pages_to_the_last_page_with_tests_included(sandbox):
    rows = rows_of(multitudes(sandbox), "deployments")
    records = sandbox.states["multitudes"].records()
    assert len(rows) == len(records) and any(r["is_test"] for r in rows)
    pages = [r["params"] for r in sandbox.requests("multitudes")]
    assert [p["page"] for p in pages] == [str(i) for i in range(1, -(-len(records) // 100) + 1)]
    assert all(p["includeTests"] == "true" and p["pageSize"] == "100" for p in pages)


def test_multitudes_errors_and_page_size_limit(sandbox):
    with pytest.raises(Exception, match="HTTP 401"):
        rows_of(multitudes(sandbox, token="nope"), "deployments")
    oversized = httpx.get(
        sandbox.base_url("multitudes") + "/deployments",
        params={"pageSize": 101},
        headers={"Authorization": sandbox.states["multitudes"].token},
    )
    assert oversized.status_code == 400 and oversized.json()["errors"][0]["field"] == "pageSize"
    with pytest.raises(SourceRecordError, match="deployment d-1: field 'commitSha' is empty"):
        _row({"id": "d-1", "commitSha": [], "deployedAt": "2026-01-01T00:00:00Z"})
    assert _row({"id": "d-2", "commitSha": "abcdef1", "deployedAt": "2026-01-01T00:00:00Z"})["commit_shas"] == [
        "abcdef1"
    ]


def test_multitudes_replaces_a_record_when_ci_reposts_it(sandbox):
    failure = next(f for f in sandbox.world.failures if "multitudes" in sandbox.world.service(f.service).tools)
    sandbox.set_as_of(failure.detected_at - timedelta(seconds=1))
    before = {tuple(r["commitSha"]): r for r in sandbox.states["multitudes"].records()}
    sandbox.set_as_of(failure.detected_at)
    after = {tuple(r["commitSha"]): r for r in sandbox.states["multitudes"].records()}
    changed = [k for k in before if k in after and before[k]["id"] != after[k]["id"]]
    assert len(changed) == 1
    assert (
        "is_failure" in after[changed[0]]["tags"] and after[changed[0]]["createdAt"] > before[changed[0]]["createdAt"]
    )


# -- GitClear -----------------------------------------------------------------------------------
def gitclear(sandbox, **overrides):
    args = {
        "resource_paths": [s.project_path for s in sandbox.world.services_in("gitclear")],
        "api_token": sandbox.states["gitclear"].token,
        "base_url": sandbox.base_url("gitclear") + "/api/v1",
        "start_date": (sandbox.world.start - timedelta(days=1)).isoformat(),
    }
    return gitclear_source(**{**args, **overrides})


def test_gitclear_audits_page_50_at_a_time_and_parse_both_timestamp_styles(sandbox):
    rows = rows_of(gitclear(sandbox), "pull_requests")
    service = sandbox.world.services_in("gitclear")[0]
    since = (sandbox.world.start - timedelta(days=1)).date()  # the audit range filters on the opening date
    expected = [
        c
        for c in sandbox.world.view(DEFAULT_AS_OF).changes.values()
        if c.service == service.name and c.opened_at.date() >= since
    ]
    assert len(rows) == len(expected) > 50
    pages = [
        r["params"]["page"] for r in sandbox.requests("gitclear") if r["params"].get("resource_type") == "pull_requests"
    ]
    assert pages == [str(i) for i in range(1, -(-len(expected) // 50) + 1)]
    by_number = {c.number: c for c in expected}
    for row in rows:  # merged_at arrives as "... UTC", created_at as ISO with Z
        assert row["merged_at"] == by_number[row["number"]].merged_at
        assert row["created_at"] == by_number[row["number"]].opened_at


def test_gitclear_report_points_are_dated_by_their_url(sandbox):
    rows = rows_of(gitclear(sandbox), "report_points")
    assert rows and all(datetime.fromisoformat(r["week_end"]).weekday() == 6 for r in rows)
    assert {r["segment"] for r in rows} == {"defect_detected_count", "mean_hours_to_resolved"}


def test_gitclear_errors(sandbox):
    with pytest.raises(Exception, match="HTTP 401"):
        rows_of(gitclear(sandbox, api_token="bad"), "pull_requests")
    missing_type = httpx.get(
        sandbox.base_url("gitclear") + "/api/v1/audits",
        params={"resource_path": "acme/x"},
        headers={"Authorization": f"Bearer {sandbox.states['gitclear'].token}"},
    )
    assert missing_type.status_code == 422 and missing_type.json()["response_em"] == "response_error"
    empty = rows_of(gitclear(sandbox, start_date=(DEFAULT_AS_OF + timedelta(days=10)).isoformat()), "pull_requests")
    assert empty == []


# -- Gearset Automation -------------------------------------------------------------------------
def automation(sandbox, **overrides):
    jobs = sandbox.world.services_in("gearset_automation")
    args = {
        "ci_job_ids": [j.service_id for j in jobs],
        "api_token": sandbox.gearset.token,
        "base_url": sandbox.base_url("gearset"),
        "job_services": {j.service_id: j.name for j in jobs},
        "start_date": (sandbox.world.start - timedelta(days=1)).isoformat(),
        "poll_interval_seconds": 0.01,
    }
    return gearset_automation_source(**{**args, **overrides})


def test_ci_job_runs_come_from_the_v2_report_with_outcome_and_type(sandbox):
    rows = rows_of(automation(sandbox), "ci_job_runs")
    job = sandbox.world.services_in("gearset_automation")[0]
    expected = [d for d in sandbox.world.view(DEFAULT_AS_OF).deployments if d.service == job.name]
    assert len(rows) == len(expected)
    assert {r["job_type"] for r in rows} == {"Deployment", "Validation"}
    assert sum(not r["deployment_succeeded"] for r in rows) == sum(d.status == "failed" for d in expected)
    assert all(r["service"] == job.name and r["environment"] == "production" for r in rows)
    starts = [r for r in sandbox.gearset.requests if r["path"].endswith("/runs")]
    assert starts and all(r["method"] == "POST" for r in starts)
    assert not any("run-requests" in r["path"] for r in sandbox.gearset.requests)  # never starts a run


def test_ci_job_status_is_snapshotted(sandbox):
    rows = rows_of(automation(sandbox), "ci_job_status_history")
    assert [r["state"] for r in rows] == ["Idle"]
    assert abs(rows[0]["observed_at"] - datetime.now(UTC)) < timedelta(minutes=1)


def test_ci_job_errors(sandbox):
    sandbox.gearset.faults.fail_next_operations = 1
    with pytest.raises(Exception, match="CI job runs report for job .* failed on Gearset's side"):
        rows_of(automation(sandbox), "ci_job_runs")
    with pytest.raises(Exception, match="Job not found"):
        rows_of(automation(sandbox, ci_job_ids=["no-such-job"]), "ci_job_status_history")
    with pytest.raises(Exception, match="no CI job ids configured"):
        rows_of(automation(sandbox, ci_job_ids=[]), "ci_job_runs")


def test_gitlab_dora_metrics_read_only_the_window_the_warehouse_needs(sandbox, tmp_path, fresh_pipeline):
    """From each project's first activity, not from a far `start_date`; then only the look-back."""
    pipeline = dlt.pipeline(
        "dora_window",
        destination=dlt.destinations.duckdb(str(tmp_path / "window.duckdb")),
        pipelines_dir=str(tmp_path / "dlt_window"),
    )

    def run_and_count() -> list[dict]:
        mark = len(sandbox.requests("gitlab"))
        try:  # resource state persists across real runs only
            pipeline.run(gitlab(sandbox, start_date="2020-01-01T00:00:00Z").with_resources("dora_metrics"))
        finally:
            fresh_pipeline.activate()
        return [r["params"] for r in sandbox.requests("gitlab")[mark:] if r["path"].endswith("/dora/metrics")]

    first_run = run_and_count()
    gitlab_services = {s.name for s in sandbox.world.services_in("gitlab")}
    earliest = min(d.deployed_at for d in sandbox.world.deployments if d.service in gitlab_services)
    assert min(p["start_date"] for p in first_run) == (earliest - timedelta(minutes=5)).date().isoformat()
    today = datetime.now(UTC).date()
    windows_per_series = -(-(today - earliest.date()).days // 180)
    assert len(first_run) <= len(gitlab_services) * 4 * windows_per_series  # not back to 2020

    second_run = run_and_count()
    assert len(second_run) == len(gitlab_services) * 4
    # from the latest day GitLab has a value for, per project, minus the look-back: never from
    # this machine's clock, which is weeks past the sandbox's moment
    state = sandbox.states["gitlab"]
    latest = {
        s.project_path: max(day for m in DORA_METRICS for day in state.daily_dora(s, m, ("production",)))
        for s in state.projects.values()
    }
    assert today - max(latest.values()) > timedelta(days=30)
    expected = {(latest[p] - timedelta(days=30)).isoformat() for p in latest}
    assert {p["start_date"] for p in second_run} == expected


def test_gitlab_reads_the_merge_requests_of_production_deployments_only(sandbox):
    """Only successful production deployments can count, so only theirs cost a request."""
    rows = rows_of(gitlab(sandbox), "deployment_merge_requests")
    asked = {
        r["path"].split("/deployments/")[1].split("/")[0]
        for r in sandbox.requests("gitlab")
        if r["path"].endswith("/merge_requests") and "/deployments/" in r["path"]
    }
    state = sandbox.states["gitlab"]
    production = {
        str(state.deployment_ids[d.deployment_id])
        for d in sandbox.world.view(DEFAULT_AS_OF).deployments
        if "gitlab" in sandbox.world.service(d.service).tools
        and d.is_production
        and d.status != "failed"
        and not d.is_test
    }
    assert rows and asked == production
    assert {str(r["deployment_id"]) for r in rows} <= production


def commits_asked(state, requests: list[dict]) -> set[tuple[int, int]]:
    """(project id, MR iid) of every MR whose commits these requests asked for, through REST
    (`/merge_requests/:iid/commits`) or through GraphQL (the query's `iids`)."""
    asked = set()
    for r in requests:
        if r["path"].endswith("/commits"):
            project, iid = r["path"].split("/projects/")[1].split("/merge_requests/")
            asked.add((int(project), int(iid.removesuffix("/commits"))))
        elif r["path"].endswith("/graphql"):
            variables = r["body"]["variables"]
            project = state.project(variables["fullPath"]).project_id
            asked |= {(project, int(iid)) for iid in variables["iids"]}
    return asked


@pytest.mark.parametrize("graphql", [True, False], ids=["graphql", "rest"])
def test_gitlab_reads_a_merge_requests_commits_once_even_when_it_is_touched_again(
    graphql, sandbox, tmp_path, fresh_pipeline
):
    """A merged MR's commits no longer change: a later run asks only new MRs for theirs. An MR listed
    again (touched by a comment or a label, or inside the look-back, as here) keeps its first-commit
    time from the warehouse. Through GraphQL or REST alike."""
    warehouse = tmp_path / "commits.duckdb"
    pipeline = dlt.pipeline("commits_once", destination=dlt.destinations.duckdb(str(warehouse)), dataset_name="g")
    state = sandbox.states["gitlab"]

    def run(**settings) -> tuple[set[tuple[int, int]], int, dict]:
        mark = len(state.requests)
        try:  # resource state persists across real runs only
            pipeline.run(gitlab(sandbox, graphql=graphql, **settings).with_resources("merge_requests"))
        finally:
            fresh_pipeline.activate()
        with pipeline.sql_client() as client:
            rows = client.execute_sql("select project_id, iid, first_commit_at from merge_requests")
        loaded = {(project, iid): first_commit for project, iid, first_commit in rows}
        listed = pipeline.last_trace.last_normalize_info.row_counts["merge_requests"]
        return commits_asked(state, state.requests[mark:]), listed, loaded

    first_asked, _, first = run()
    assert first and first_asked == set(first)  # every MR's commits, once
    assert any(first.values())

    # the look-ups of what the warehouse holds share one connection, not one per page listed
    opened = []
    sql_client = pipeline.sql_client

    @contextmanager
    def counted_sql_client(*args, **kwargs):
        opened.append(1)
        with sql_client(*args, **kwargs) as client:
            yield client

    pipeline.sql_client = counted_sql_client
    sandbox.set_as_of(sandbox.as_of + timedelta(days=3))
    mark = len(state.requests)
    second_asked, listed, second = run(lookback_hours=24 * 20)  # 20 days of merged MRs listed again
    pipeline.sql_client = sql_client
    new = set(second) - set(first)
    assert new and listed > 3 * len(new)  # three more days of merges, and 20 days of MRs listed
    assert second_asked == new  # only the new MRs were asked for their commits
    assert {key: second[key] for key in first} == first  # the old ones kept their first-commit time
    pages = [r for r in state.requests[mark:] if r["path"].endswith("/merge_requests")]
    assert len(pages) >= 2 and len(opened) == 2  # one for the listing's look-ups, one for `run`'s query
