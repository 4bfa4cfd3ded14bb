"""The Gearset Reporting API v3 client and source against the emulator, over real HTTP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from dlt.common.configuration.exceptions import ConfigFieldMissingException

from dora_pipeline.sandbox.world import DEFAULT_AS_OF
from dora_pipeline.sources.gearset import (
    GearsetReportingClient,
    GearsetSettings,
    gearset_source,
    normalize_deployment,
    plan_reports,
    report_windows,
)
from dora_pipeline.sources.http import SourceError, SourceHTTPError, SourceRecordError

START = datetime(2026, 6, 1, tzinfo=UTC)
END = datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC)


def client_for(sandbox, token=None, poll=0.01) -> GearsetReportingClient:
    return GearsetReportingClient(sandbox.base_url("gearset"), token or sandbox.gearset.token, poll)


def expected_in_window(sandbox, service_name: str) -> int:
    return sum(
        1
        for d in sandbox.world.view(DEFAULT_AS_OF).deployments
        if d.service == service_name and START <= d.deployed_at <= END
    )


def test_report_polls_until_succeeded_at_the_configured_interval(sandbox):
    sandbox.gearset.faults.running_polls = 3
    service = sandbox.world.services[0]
    client = client_for(sandbox, poll=0.2)

    deployments = client.deployments(service.service_id, START, END)

    assert len(deployments) == expected_in_window(sandbox, service.name) > 0
    polls = [r["at"] for r in sandbox.gearset.requests if r["path"].endswith("/status")]
    assert len(polls) == 4  # three Running answers, then Succeeded
    assert all(later - earlier >= 0.2 for earlier, later in zip(polls, polls[1:], strict=False))


def test_the_first_poll_comes_soon_after_the_start_and_later_ones_an_interval_apart(sandbox):
    """Gearset's limit spaces polls, not a start and its first poll: a report still running at its
    first poll costs one interval in all, not two."""
    sandbox.gearset.faults.running_polls = 1
    sandbox.gearset.faults.min_poll_interval_seconds = 0.4  # the emulator answers 429 to faster polls
    client = GearsetReportingClient(sandbox.base_url("gearset"), sandbox.gearset.token, 0.5, first_poll_seconds=0.05)

    assert client.deployments(sandbox.world.services[0].service_id, START, END)

    [started] = [r["at"] for r in sandbox.gearset.requests if r["method"] == "POST"]
    polls = [r["at"] for r in sandbox.gearset.requests if r["path"].endswith("/status")]
    assert len(polls) == 2  # Running, then Succeeded: no 429 had to be retried
    assert polls[0] - started < 0.5 <= polls[1] - polls[0]


def test_strict_poll_spacing_is_respected_without_rate_limits(sandbox):
    sandbox.gearset.faults.running_polls = 2
    sandbox.gearset.faults.min_poll_interval_seconds = 0.15
    client_for(sandbox, poll=0.2).deployments(sandbox.world.services[0].service_id, START, END)
    statuses = [r for r in sandbox.gearset.requests if r["path"].endswith("/status")]
    assert len(statuses) == 3  # no 429 had to be retried


def test_failed_operation_names_pipeline_window_and_reason(sandbox):
    sandbox.gearset.faults.fail_next_operations = 1
    pipeline_id = sandbox.world.services[0].service_id
    with pytest.raises(SourceError) as raised:
        client_for(sandbox).deployments(pipeline_id, START, END)
    message = str(raised.value)
    assert message.startswith("gearset:") and pipeline_id in message
    assert "The report could not be generated." in message


def test_rate_limited_requests_are_retried_after_retry_after(sandbox):
    sandbox.gearset.faults.rate_limit_next_requests = 2
    pipelines = client_for(sandbox).pipelines()
    assert len(pipelines) == len(sandbox.world.services_in("gearset"))
    assert len([r for r in sandbox.gearset.requests if r["path"].endswith("/pipelines")]) == 3


def test_bad_token_is_a_401_error_that_does_not_repeat_the_token(sandbox):
    secret = "wrong-secret-value-123"
    with pytest.raises(SourceHTTPError) as raised:
        client_for(sandbox, token=secret).pipelines()
    assert raised.value.status == 401
    assert secret not in str(raised.value) and secret not in repr(raised.value.args)


def test_emulator_requires_api_version_3_and_token_scheme(sandbox):
    url = sandbox.base_url("gearset") + "/public/reporting/pipelines"
    token = sandbox.gearset.token
    assert httpx.get(url, headers={"Authorization": f"token {token}"}).status_code == 400
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}", "Api-Version": "3"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"token {token}", "Api-Version": "3"}).status_code == 200


def test_result_is_served_by_status_id_and_by_result_id(sandbox):
    base = sandbox.base_url("gearset")
    headers = {"Authorization": f"token {sandbox.gearset.token}", "Api-Version": "3"}
    service = sandbox.world.services[0]
    params = {
        "StartDate": "2026-06-01T00:00:00.000Z",
        "EndDate": "2026-06-30T23:59:59.000Z",
        "PipelineId": service.service_id,
    }
    with httpx.Client(base_url=base, headers=headers) as http:
        assert http.post("/public/reporting/deployments", json={}).status_code == 400  # query, not body
        status_id = http.post("/public/reporting/deployments", params=params).json()["OperationStatusId"]
        assert http.get(f"/public/operation/{status_id}/status").json() == {"Status": "Running"}
        done = http.get(f"/public/operation/{status_id}/status").json()
        assert done["Status"] == "Succeeded"
        by_status = http.get(f"/public/operation/{status_id}/result").json()
        by_result = http.get(f"/public/operation/{done['OperationResultId']}/result").json()
    assert by_status == by_result
    assert len(by_status["Deployments"]) == expected_in_window(sandbox, service.name)
    non_production = [d for d in by_status["Deployments"] if d["PipelineEnvironmentId"] != service.production.env_id]
    assert non_production and all(d["ReportedBugs"] is None for d in non_production)


def test_missing_configuration_fails_before_any_request(sandbox, settings):
    with pytest.raises(ConfigFieldMissingException) as raised:
        gearset_source()
    assert "api_token" in str(raised.value) or "pipeline_ids" in str(raised.value)

    source = gearset_source(pipeline_ids=[], api_token="t", base_url=sandbox.base_url("gearset"))
    with pytest.raises(Exception, match="no pipeline ids configured"):
        list(source.with_resources("pipelines"))
    assert sandbox.gearset.requests == []


def test_unknown_pipeline_is_reported_by_id(sandbox):
    source = gearset_source(
        pipeline_ids=["not-a-pipeline"], api_token=sandbox.gearset.token, base_url=sandbox.base_url("gearset")
    )
    with pytest.raises(Exception, match="not-a-pipeline"):
        list(source.with_resources("pipelines"))


def test_bad_record_error_names_source_record_and_field():
    raw = {"Id": "dep-1", "Date": "last tuesday", "PipelineEnvironmentId": "env-1"}
    with pytest.raises(SourceRecordError) as raised:
        normalize_deployment(raw, "pipe-1")
    assert str(raised.value) == (
        "gearset: deployment dep-1 of pipeline pipe-1: field 'Date' is not an ISO 8601 timestamp: 'last tuesday'"
    )
    bad_severity = {
        "Id": "dep-2",
        "Date": "2026-06-01T10:00:00Z",
        "PipelineEnvironmentId": "env-1",
        "Status": "Successful",
        "ReportedBugs": [{"Id": "bug-9", "Severity": "high"}],
    }
    with pytest.raises(SourceRecordError, match="reported bug bug-9: field 'Severity'"):
        normalize_deployment(bad_severity, "pipe-1")


def test_normalize_coerces_string_severity_and_keeps_null_first_commit():
    raw = {
        "Id": "dep-3",
        "Date": "2026-06-01T10:00:00.000Z",
        "Status": "Successful",
        "PipelineEnvironmentId": "env",
        "MetadataItemsInDeploymentCount": 0,
        "VlocityItemsInDeploymentCount": None,
        "ConfigDataItemsInDeploymentCount": "0",
        "DeploymentPullRequests": [
            {
                "PullRequest": {"Number": 7},
                "FeaturePullRequests": [
                    {
                        "Number": 5,
                        "CreatedAt": "2026-05-30T10:00:00Z",
                        "MergedAt": "2026-05-31T10:00:00Z",
                        "FirstCommitDate": None,
                    }
                ],
            }
        ],
        "ReportedBugs": [{"Id": "b1", "Severity": "2", "IdentifiedAt": "2026-06-02T00:00:00Z", "ResolvedAt": None}],
    }
    rows = normalize_deployment(raw, "pipe")
    assert rows["deployment"]["config_data_items_count"] == 0 and rows["deployment"]["bugs_tracked"] is True
    assert rows["pull_requests"][0]["first_commit_date"] is None
    assert rows["pull_requests"][0]["promotion_number"] == 7
    assert rows["bugs"][0]["severity"] == 2


def test_report_windows_cover_the_range_without_gaps_or_overlap():
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 15, 12, tzinfo=UTC)
    windows = list(report_windows(start, end, 30))
    assert windows[0][0] == start and windows[-1][1] == end
    for (_, previous_end), (next_start, _) in zip(windows, windows[1:], strict=False):
        assert (next_start - previous_end).total_seconds() == 0.001


def test_the_look_back_asks_only_for_the_environments_that_carry_bugs():
    """Deployments without bugs do not change once recorded: after the first run the look-back
    reads only the environments whose deployments carried bugs, every environment only from a day
    before the newest deployment; a pipeline no report has shown yet is read whole."""
    settings = GearsetSettings(
        "http://gearset.invalid",
        "token",
        ("tracked", "untracked", "added"),
        START,
        None,
        30.0,
        24.0,
        366,
        5.0,
        900.0,
        8,
        8,
    )
    newest = datetime(2026, 6, 20, 12, tzinfo=UTC)
    start, end = newest - timedelta(days=30), datetime(2026, 6, 21, tzinfo=UTC)
    seen = {"tracked": ["prod-env"], "untracked": []}

    first_run = list(plan_reports(settings, START, end, None, {}))
    assert first_run == [(p, START, end, ()) for p in settings.pipeline_ids]

    plan = list(plan_reports(settings, start, end, newest, seen))
    recent = newest - timedelta(days=1)
    assert plan == [
        ("tracked", start, recent - timedelta(milliseconds=1), ("prod-env",)),
        ("tracked", recent, end, ()),
        ("untracked", recent, end, ()),
        ("added", start, end, ()),
    ]
    # windows still split at `window_days`, and a look-back shorter than the recent one is one report
    short = list(plan_reports(replace(settings, window_days=10), start, end, newest, seen))
    assert [p for p, *_ in short].count("tracked") == 4
    assert list(plan_reports(settings, recent, end, newest, seen))[0] == ("tracked", recent, end, ())


def test_a_narrowed_report_returns_only_its_environments(sandbox):
    pipeline = sandbox.world.services_in("gearset")[0]
    client = client_for(sandbox)
    production = pipeline.production.env_id
    every = client.deployments(pipeline.service_id, START, END)
    narrowed = next(client.run_reports([client.deployments_request(pipeline.service_id, START, END, [production])]))[1]
    assert narrowed == [d for d in every if d["PipelineEnvironmentId"] == production] and len(narrowed) < len(every)


def test_reports_run_together_bounded_and_each_polled_no_faster_than_the_interval(sandbox):
    """Every pipeline x window report is started up front (up to the bound) and polled together."""
    sandbox.gearset.faults.running_polls = 2
    sandbox.gearset.faults.min_poll_interval_seconds = 0.2  # the emulator answers 429 to faster polls
    pipelines = [s for s in sandbox.world.services_in("gearset")]
    client = GearsetReportingClient(
        sandbox.base_url("gearset"), sandbox.gearset.token, 0.25, max_concurrent_operations=6
    )
    windows = list(report_windows(START, END, 7))
    requests = [client.deployments_request(p.service_id, s, e) for p in pipelines for s, e in windows]

    results = list(client.run_reports(requests))

    assert sorted(r.what for r, _ in results) == sorted(r.what for r in requests)
    assert sum(len(rows) for _, rows in results) == sum(expected_in_window(sandbox, p.name) for p in pipelines)
    log = [r for r in sandbox.gearset.requests if "/operation/" in r["path"] or r["method"] == "POST"]
    in_flight, most = 0, 0
    for r in log:
        in_flight += 1 if r["method"] == "POST" else -1 if r["path"].endswith("/result") else 0
        most = max(most, in_flight)
    assert most == 6  # started together, never more than the bound
    polls = [r for r in log if r["path"].endswith("/status")]
    assert len(polls) == 3 * len(requests)  # Running, Running, Succeeded: no 429 had to be retried
