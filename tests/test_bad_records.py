"""Bad records at the door: every kind of broken record a real API has sent, for every source,
ends as a rejected record that names the source, the record and the field, while the rest of
the response loads; nothing crashes, nothing becomes a wrong number. Each case breaks one record
(or two that share a key) of one answer of the emulator, over real HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta

import duckdb
import pytest
from warehouse_checks import differences

from dora_pipeline.refresh import run_refresh
from dora_pipeline.sources import rejections

EMULATOR = {"gearset": "gearset", "gearset_automation": "gearset"}


def _first(records: list) -> dict:
    return records[0]


def _set(field: str, value: object) -> Callable[[list], None]:
    def change(records: list) -> None:
        _first(records)[field] = value

    return change


def _drop(field: str) -> Callable[[list], None]:
    def change(records: list) -> None:
        _first(records).pop(field, None)

    return change


def _share(field: str) -> Callable[[list], None]:
    """Two records of one answer under one key: neither may silently replace the other."""

    def change(records: list) -> None:
        records[1][field] = records[0][field]

    return change


def _bug_severity(records: list) -> None:
    with_bugs = next(r for r in records if r.get("ReportedBugs"))
    with_bugs["ReportedBugs"][0]["Severity"] = "high"


def _feature_number(records: list) -> None:
    for deployment in records:
        for item in deployment.get("DeploymentPullRequests") or []:
            if item.get("FeaturePullRequests"):
                item["FeaturePullRequests"][0].pop("Number")
                return


def _severity_label(records: list) -> None:
    _first(records)["labels"] = ["incident", "severity::high"]


def _graphql_merge_requests(body: dict) -> list:
    return body["data"]["project"]["mergeRequests"]["nodes"]


def _commit_date(records: list) -> None:
    next(r for r in records if r["commits"]["nodes"])["commits"]["nodes"][0]["authoredDate"] = "yesterday"


GEARSET_RESULT = r"/public/operation/[^/]+/result$"
# source, resource, answer path (regex), key of the record list in the body (None: the body; a
# function: where it finds them),
# how to break it, the field the rejection must name, how many records it rejects
CASES = [
    ("gearset", "deployments", GEARSET_RESULT, "Deployments", _share("Id"), "Id", 2),
    ("gearset", "deployments", GEARSET_RESULT, "Deployments", _set("Status", "Exploded"), "Status", 1),
    ("gearset", "deployments", GEARSET_RESULT, "Deployments", _set("Date", "last tuesday"), "Date", 1),
    (
        "gearset",
        "deployments",
        GEARSET_RESULT,
        "Deployments",
        _drop("PipelineEnvironmentId"),
        "PipelineEnvironmentId",
        1,
    ),
    ("gearset", "deployments", GEARSET_RESULT, "Deployments", _bug_severity, "Severity", 1),
    ("gearset", "deployments", GEARSET_RESULT, "Deployments", _feature_number, "FeaturePullRequests[].Number", 1),
    (
        "gearset",
        "deployments",
        GEARSET_RESULT,
        "Deployments",
        _set("MetadataItemsInDeploymentCount", "many"),
        "MetadataItemsInDeploymentCount",
        1,
    ),
    ("gearset_automation", "ci_job_runs", GEARSET_RESULT, "Runs", _set("Id", None), "Id", 1),
    ("gearset_automation", "ci_job_runs", GEARSET_RESULT, "Runs", _set("EndTimeUtc", "later"), "EndTimeUtc", 1),
    ("gearset_automation", "ci_job_runs", GEARSET_RESULT, "Runs", _share("Id"), "Id", 2),
    ("gitlab", "deployments", r"/projects/\d+/deployments$", None, _drop("id"), "id", 1),
    ("gitlab", "deployments", r"/projects/\d+/deployments$", None, _set("id", "ten-thousand"), "id", 1),
    ("gitlab", "deployments", r"/projects/\d+/deployments$", None, _set("deployable", "job-7"), "deployable", 1),
    ("gitlab", "deployments", r"/projects/\d+/deployments$", None, _set("environment", ["prod"]), "environment", 1),
    ("gitlab", "deployments", r"/projects/\d+/deployments$", None, _set("updated_at", "soon"), "updated_at", 1),
    ("gitlab", "deployments", r"/projects/\d+/deployments$", None, _share("id"), "id", 2),
    ("gitlab", "merge_requests", r"/projects/\d+/merge_requests$", None, _drop("iid"), "iid", 1),
    (
        "gitlab",
        "merge_requests",
        r"/projects/\d+/merge_requests$",
        None,
        _set("merged_at", "01/02/2026"),
        "merged_at",
        1,
    ),
    (
        "gitlab",
        "merge_requests",
        r"/api/graphql$",
        _graphql_merge_requests,
        _commit_date,
        "commits.nodes[].authoredDate",
        1,
    ),
    ("gitlab", "incidents", r"/projects/\d+/issues$", None, _drop("id"), "id", 1),
    ("gitlab", "incidents", r"/projects/\d+/issues$", None, _severity_label, "labels[severity::]", 1),
    ("gitlab", "dora_metrics", r"/projects/\d+/dora/metrics$", None, _set("value", "n/a"), "value", 1),
    ("gitlab", "dora_metrics", r"/projects/\d+/dora/metrics$", None, _drop("value"), "value", 1),
    ("multitudes", "deployments", r"/deployments$", "deployments", _set("commitSha", 1234567), "commitSha", 1),
    ("multitudes", "deployments", r"/deployments$", "deployments", _set("tags", 7), "tags", 1),
    ("multitudes", "deployments", r"/deployments$", "deployments", _drop("id"), "id", 1),
    ("multitudes", "deployments", r"/deployments$", "deployments", _set("deployedAt", "yesterday"), "deployedAt", 1),
    ("multitudes", "deployments", r"/deployments$", "deployments", _share("id"), "id", 2),
    ("gitclear", "commits", r"/audits$", "commits", _drop("sha"), "sha", 1),
    ("gitclear", "commits", r"/audits$", "commits", _set("diff_delta", "big"), "diff_delta", 1),
    ("gitclear", "pull_requests", r"/audits$", "pull_requests", _set("number", "abc"), "number", 1),
    ("gitclear", "pull_requests", r"/audits$", "pull_requests", _set("contributor", "dara"), "contributor", 1),
    ("gitclear", "pull_requests", r"/audits$", "pull_requests", _share("number"), "number", 2),
]


def breaking(path: str, key: str | None, change: Callable[[list], None]) -> Callable:
    """Break the records of the first matching answer that holds at least two of them, once."""
    done = []

    def mutate(request_path: str, body: object) -> object:
        if done or not re.search(path, request_path):
            return body
        if callable(key):
            records = key(body)
        else:
            records = body if key is None else body.get(key) if isinstance(body, dict) else None
        if not isinstance(records, list) or len(records) < 2:
            return body
        try:
            change(records)
        except StopIteration:  # this answer has nothing of the kind: try the next one
            return body
        done.append(request_path)
        return body

    mutate.done = done
    return mutate


CLEAN: dict[tuple[str, str], int] = {}
PASSED: list[str] = []


@pytest.mark.parametrize(
    ("source", "resource", "path", "key", "change", "field", "rejected"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[5]}-{i}" for i, c in enumerate(CASES)],
)
def test_a_bad_record_is_rejected_and_the_rest_loads(
    source, resource, path, key, change, field, rejected, sandbox, extract, figures
):
    if (source, resource) not in CLEAN:
        CLEAN[(source, resource)] = len(extract(source, resource))
    rejections.drain(source)
    mutate = breaking(path, key, change)
    sandbox.states[EMULATOR.get(source, source)].faults.mutate = mutate

    rows = extract(source, resource)

    assert mutate.done, "the case found no answer to break"
    found = rejections.drain(source)
    assert len(found) == rejected, found
    assert {(r.source, r.resource, r.field) for r in found} == {(source, resource, field)}
    assert all(r.problem and json.loads(r.payload) for r in found)
    assert len(rows) == CLEAN[(source, resource)] - rejected
    PASSED.append(field)
    if len(PASSED) == len(CASES):
        figures.append(f"bad records: {len(CASES)} kinds across all five sources, each rejected with its field named")


def test_a_single_tag_string_is_a_list_of_one_not_a_list_of_characters(sandbox, extract):
    def one_tag(request_path: str, body: object) -> object:
        if request_path.endswith("/deployments") and isinstance(body, dict):
            for record in body["deployments"]:
                record["tags"] = "is_failure"
        return body

    sandbox.states["multitudes"].faults.mutate = one_tag
    rows = extract("multitudes", "deployments")
    assert rows and all(r["tags"] == ["is_failure"] for r in rows)
    assert rejections.drain("multitudes") == []


def test_a_refresh_with_bad_records_loads_the_rest_and_counts_them(settings, sandbox, point_at_sandbox):
    sandbox.states["gitlab"].faults.mutate = breaking(r"/projects/\d+/deployments$", None, _set("id", "ten-thousand"))
    sandbox.states["multitudes"].faults.mutate = breaking(r"/deployments$", "deployments", _share("id"))

    outcome = run_refresh(settings)

    assert outcome.failed_sources == [] and outcome.rejected_records == 3
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        kept = con.execute("select source, entity, service, field from marts.rejected_records order by all").fetchall()
        counted = dict(
            con.execute(
                "select source, sum(records) from marts.data_quality where outcome = 'rejected_record' group by source"
            ).fetchall()
        )
        loaded = con.execute("select count(*) from marts.deployments where source = 'gitlab'").fetchall()[0][0]
    gitlab_services = {s.name for s in sandbox.world.services_in("gitlab")}
    assert kept[0][:2] == ("gitlab", "deployment") and kept[0][2] in gitlab_services and kept[0][3] == "id"
    assert kept[1:] == [("multitudes", "deployment", "unknown", "id")] * 2
    assert counted == {"gitlab": 1, "multitudes": 2}
    state = sandbox.states["gitlab"]
    assert loaded == sum(len(state.deployments(s)) for s in state.projects.values()) - 1


def test_a_rejection_is_cleared_once_its_record_arrives_in_a_shape_that_loads(settings, sandbox, point_at_sandbox):
    """Both records are read again by the next refresh: Gearset's within its look-back, Multitudes'
    in full. (A record rejected further back than a source re-reads stays listed as rejected.)"""
    recent = (sandbox.as_of - timedelta(days=5)).isoformat()

    def recent_status(records: list) -> None:
        next(r for r in records if r["Date"] >= recent[:19])["Status"] = "Exploded"

    sandbox.states["gearset"].faults.mutate = breaking(GEARSET_RESULT, "Deployments", recent_status)
    sandbox.states["multitudes"].faults.mutate = breaking(r"/deployments$", "deployments", _share("id"))
    assert run_refresh(settings).rejected_records == 3
    for state in sandbox.states.values():
        state.faults.mutate = None

    outcome = run_refresh(settings)

    assert outcome.rejected_records == 0
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        kept = con.execute("select source, record_key from marts.rejected_records").fetchall()
        counted = con.execute("select count(*) from marts.data_quality where outcome = 'rejected_record'").fetchall()
    assert kept == [] and counted == [(0,)]
    assert differences(settings.duckdb_path, sandbox.world.view(sandbox.as_of)) == []
