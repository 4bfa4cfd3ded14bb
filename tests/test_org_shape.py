"""The sandbox organisation's shape (services, days, merges a weekday, failure rate): each knob
changes the simulated history as it says, the default is the demo exactly, and the emulators and
the command line serve the shaped world. Expected values come from the knobs' own definitions,
counted over the simulated history, never from the pipeline."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from dora_pipeline.sandbox.server import Sandbox
from dora_pipeline.sandbox.world import (
    DEFAULT_AS_OF,
    DEFAULT_SEED,
    DEFAULT_SERVICES,
    FAILED,
    GEARSET,
    OrgShape,
    build_world,
    scaled_services,
)

CLI = str(Path(sys.executable).parent / "dora-pipeline")


def shaped_world(shape: OrgShape):
    start, horizon = shape.history(DEFAULT_AS_OF)
    return build_world(DEFAULT_SEED, start, horizon, shape.service_specs()).view(DEFAULT_AS_OF)


def expected_floor(a: float) -> float:
    """E[floor(a * U)] for U uniform on [0, 1): the simulation's merges on a day of mean a / 2."""
    return sum(1 - k / a for k in range(1, math.floor(a) + 1)) if a > 0 else 0.0


def test_the_default_shape_is_the_demo_and_copies_are_services_in_turn():
    assert OrgShape().service_specs() == DEFAULT_SERVICES
    assert shaped_world(OrgShape()).deployments == build_world().view(DEFAULT_AS_OF).deployments
    assert OrgShape(services=24).service_specs() == scaled_services(3)
    names = [s.name for s in OrgShape(services=11).service_specs()]
    assert names[:8] == [s.name for s in DEFAULT_SERVICES]
    assert names[8:] == [f"{s.name}-2" for s in DEFAULT_SERVICES[:3]]


@pytest.mark.parametrize("days", [20, 90])
def test_days_set_how_far_back_the_history_goes(days):
    world = shaped_world(OrgShape(services=8, days=days))
    first_day = DEFAULT_AS_OF - timedelta(days=days)
    assert world.start == first_day
    # every deployment and every change merged in the history falls in the window; only the
    # backlog merged before the history starts (a case of the definitions) lies before it
    assert min(d.deployed_at for d in world.deployments) >= first_day
    assert max(d.deployed_at for d in world.deployments) <= DEFAULT_AS_OF
    assert {c.kind for c in world.changes.values() if c.merged_at < first_day} == {"backlog"}
    # the first working day's deployments happen (the history starts on that day, not later)
    assert min(d.deployed_at for d in world.deployments) < first_day + timedelta(days=4)


@pytest.mark.parametrize("merges_per_day", [1.5, 6.0, 12.0])
def test_merges_per_day_is_the_mean_merged_on_a_weekday(merges_per_day):
    shape = OrgShape(services=40, days=120, merges_per_day=merges_per_day)
    world = shaped_world(shape)
    first_day = DEFAULT_AS_OF - timedelta(days=120)
    days = [first_day + timedelta(days=i) for i in range(120)]
    # a weekday draws floor(2 m U) merges, a weekend day a fifth of that mean
    per_service = sum(expected_floor(2 * merges_per_day * (1.0 if d.weekday() < 5 else 0.2)) for d in days)
    merged = sum(c.kind == "feature" and c.merged_at >= first_day for c in world.changes.values())
    expected = per_service * len(world.services)
    assert abs(merged - expected) < 0.05 * expected + 10, (merged, expected)


@pytest.mark.parametrize("failure_rate", [0.0, 0.13, 0.5, 1.0])
def test_failure_rate_is_the_share_of_releases_that_cause_a_failure(failure_rate):
    world = shaped_world(OrgShape(services=40, days=120, failure_rate=failure_rate))
    # Gearset services record each failure's cause, so the causes are the simulation's own
    tracking = {s.name for s in world.services if GEARSET in s.tools and s.tracks_failures}
    releases = {
        d.deployment_id
        for d in world.deployments
        if d.service in tracking
        and d.is_production
        and d.status != FAILED
        and not d.is_empty
        # a release's failures are detected up to two days after it
        and d.deployed_at <= DEFAULT_AS_OF - timedelta(days=2)
    }
    causes = {f.caused_by for f in world.failures if f.caused_by in releases}
    assert len(releases) > 500
    share = len(causes) / len(releases)
    assert abs(share - failure_rate) < 0.04, (share, failure_rate)


def test_a_shape_that_cannot_be_says_which_knob():
    for kwargs, named in (
        ({"services": 0}, "services must be at least 1"),
        ({"days": 0}, "days must be at least 1"),
        ({"merges_per_day": -1}, "merges_per_day must be at least 0"),
        ({"failure_rate": 1.5}, "failure_rate must be between 0 and 1"),
    ):
        with pytest.raises(ValueError, match=named):
            OrgShape(**kwargs)


def test_the_emulators_serve_the_shaped_history():
    """Over HTTP: GitLab lists a shaped project's deployments back to the first day, no further."""
    shape = OrgShape(services=13, days=45, merges_per_day=8.0)
    with Sandbox.start(shape=shape) as box:
        assert len(box.world.services) == 13
        project = box.world.services_in("gitlab")[-1]
        assert project.name == "payments-gateway-2"
        listed = httpx.get(
            f"{box.base_url('gitlab')}/api/v4/projects/{project.project_id}/deployments",
            params={"per_page": 100, "order_by": "updated_at", "sort": "asc"},
            headers={"PRIVATE-TOKEN": box.states["gitlab"].token},
        )
        listed.raise_for_status()
        first = datetime.fromisoformat(listed.json()[0]["updated_at"])  # a finished deployment's time
        assert DEFAULT_AS_OF - timedelta(days=45) <= first < DEFAULT_AS_OF - timedelta(days=40)
        truth = [d for d in box.world.view(box.as_of).deployments if d.service == project.name]
        assert min(d.deployed_at for d in truth) == first


def test_every_source_reads_the_whole_history_whatever_the_date_today():
    """A source's default start is a year before the wall clock: against a longer history, or a
    demo history grown older than a year, the sandbox sets each source's start before its first day."""
    with Sandbox.start(shape=OrgShape(services=len(DEFAULT_SERVICES), days=500)) as box:
        environment = box.source_environment()
        sources = {name.split("__")[1] for name in environment if name.endswith("__BASE_URL")}
        assert sources == {"GEARSET", "GEARSET_AUTOMATION", "GITLAB", "MULTITUDES", "GITCLEAR"}
        for source in sources:
            start = datetime.fromisoformat(environment[f"SOURCES__{source}__START_DATE"])
            assert start < box.world.start < DEFAULT_AS_OF - timedelta(days=499), source


@pytest.mark.parametrize(
    ("path", "renderer", "params"),
    [
        ("deployments", "_deployment", {"order_by": "updated_at", "sort": "asc"}),
        ("merge_requests", "_merge_request", {"state": "merged", "order_by": "updated_at", "sort": "asc"}),
    ],
)
def test_gitlabs_emulator_renders_a_list_once_for_all_its_pages(path, renderer, params, monkeypatch):
    """A busy project's list, paged through: each record is rendered once, not once per page, so
    a page costs in proportion to itself (the sandbox can serve the benchmark's target size)."""
    from dora_pipeline.sandbox import gitlab_api

    rendered = []
    render = getattr(gitlab_api, renderer)
    monkeypatch.setattr(gitlab_api, renderer, lambda *args: rendered.append(1) or render(*args))
    with Sandbox.start(shape=OrgShape(services=5, days=200, merges_per_day=10.0)) as box:
        project = box.world.services_in("gitlab")[0]
        url = f"{box.base_url('gitlab')}/api/v4/projects/{project.project_id}/{path}"
        headers = {"PRIVATE-TOKEN": box.states["gitlab"].token}
        pages, records, page = 0, 0, "1"
        while page:
            answer = httpx.get(url, params={**params, "per_page": 100, "page": page}, headers=headers)
            answer.raise_for_status()
            pages, records, page = pages + 1, records + len(answer.json()), answer.headers["x-next-page"]
    assert pages >= 3 and len(rendered) == records


@pytest.mark.parametrize(
    ("path", "renderer", "params"),
    [
        ("deployments", "_deployment", {"order_by": "updated_at", "sort": "asc"}),
        ("merge_requests", "_merge_request", {"state": "merged", "order_by": "updated_at", "sort": "asc"}),
        ("issues", "_incident", {"issue_type": "incident", "order_by": "updated_at", "sort": "asc"}),
    ],
)
def test_gitlabs_emulator_renders_only_the_records_a_time_filter_keeps(path, renderer, params, monkeypatch):
    """An incremental read (`updated_after`) of a long history renders the records it returns and
    no others: a day's changes cost a day's work in the sandbox, as the benchmark's bound assumes.
    The records returned are exactly those of the whole list updated at or after that time."""
    from dora_pipeline.sandbox import gitlab_api

    rendered = []
    render = getattr(gitlab_api, renderer)
    monkeypatch.setattr(gitlab_api, renderer, lambda *args: rendered.append(1) or render(*args))
    with Sandbox.start(shape=OrgShape(services=5, days=200, merges_per_day=10.0, failure_rate=0.4)) as box:
        project = box.world.services_in("gitlab")[0]
        url = f"{box.base_url('gitlab')}/api/v4/projects/{project.project_id}/{path}"
        headers = {"PRIVATE-TOKEN": box.states["gitlab"].token}

        def read(query: dict) -> list[dict]:
            found, page = [], "1"
            while page:
                answer = httpx.get(url, params={**query, "per_page": 100, "page": page}, headers=headers)
                answer.raise_for_status()
                found, page = found + answer.json(), answer.headers["x-next-page"]
            return found

        everything = read(params)
        rendered.clear()
        since = box.as_of - timedelta(days=20)
        recent = read({**params, "updated_after": since.isoformat()})
    expected = [r for r in everything if datetime.fromisoformat(r["updated_at"]) >= since]
    assert recent == expected and 0 < len(recent) < len(everything) / 3
    assert len(rendered) == len(recent)


def test_the_command_line_takes_the_shape_and_refuses_two_counts(tmp_path):
    served = subprocess.Popen(
        [CLI, "sandbox", "--services", "9", "--days", "30", "--merges-per-day", "5", "--failure-rate", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        first_line = served.stdout.readline()
    finally:
        # It is the first line under test, not the shutdown: SIGKILL, since a SIGTERM once went
        # unanswered for 30 s on a loaded CI machine.
        served.kill()
        served.wait(timeout=30)
    first_day = (DEFAULT_AS_OF - timedelta(days=30)).date().isoformat()
    assert first_line.startswith(f"# sandbox: 9 services, history from {first_day} as of 2026-11-01"), first_line
    both = subprocess.run(
        [CLI, "demo", "--copies", "2", "--services", "9"], capture_output=True, text=True, cwd=tmp_path
    )
    assert both.returncode == 2 and "--copies and --services both set the number of services" in both.stderr
    bad = subprocess.run([CLI, "sandbox", "--failure-rate", "1.5"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "Invalid value for '--failure-rate'" in bad.stderr
    assert "Traceback" not in both.stderr + bad.stderr
