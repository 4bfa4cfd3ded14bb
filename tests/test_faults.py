"""Faults a scheduled refresh meets alone: every source against its emulator with the fault
injected, over real HTTP. Truncated success bodies are retried; pagination that would never end
ends in a clear error after a bounded number of requests; a token a server echoes back reaches no
error, output, file or table."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dlt
import pytest
from sandbox_sources import rows_in
from warehouse_checks import string_values_containing

from dora_pipeline.sandbox.fault_profile import FaultProfile
from dora_pipeline.sources.http import ApiClient, SourceError
from dora_pipeline.sources.registry import SOURCES, setting_name

# The main record resource of each source, and the emulator that serves it.
RESOURCES = {
    "gearset": ("deployments", "gearset"),
    "gitlab": ("deployments", "gitlab"),
    "multitudes": ("deployments", "multitudes"),
    "gitclear": ("pull_requests", "gitclear"),
    "gearset_automation": ("ci_job_runs", "gearset"),
}


@pytest.fixture
def configured(extract):
    """Every row of a source's main resource, with fresh incremental state each time."""
    return lambda source: extract(source, RESOURCES[source][0])


def _chain(error: BaseException | None) -> list[BaseException]:
    """The error and every error it was raised from (dlt wraps a source's errors in its own)."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


@pytest.mark.parametrize("source", list(RESOURCES))
def test_truncated_success_bodies_are_retried(source, sandbox, configured):
    clean = configured(source)
    state = sandbox.states[RESOURCES[source][1]]
    before = len(state.requests)
    state.faults.truncate_next_bodies = 2

    retried = configured(source)

    assert state.faults.truncate_next_bodies == 0  # both truncated answers were served...
    assert len(state.requests) - before > 0
    assert sorted(map(repr, retried)) == sorted(map(repr, clean)) and clean  # ...and retried to the same rows


@pytest.mark.parametrize("source", ["gitlab", "multitudes", "gitclear"])
def test_pagination_that_never_ends_is_an_error_not_a_loop(source, sandbox, configured):
    state = sandbox.states[RESOURCES[source][1]]
    state.faults.broken_pagination = True
    before = len(state.requests)

    with pytest.raises(Exception) as raised:
        configured(source)

    chain = _chain(raised.value)
    found = [e for e in chain if isinstance(e, SourceError)]
    assert found and "pagination does not advance" in str(found[0]), chain
    assert len(state.requests) - before < 10


CANARY = "canary-token-5f3a9c2e71"


@pytest.mark.parametrize("source", list(RESOURCES))
def test_a_token_echoed_by_the_server_never_reaches_the_error(source, sandbox, configured, monkeypatch):
    monkeypatch.setenv(setting_name(source, SOURCES[source].token_key), CANARY)
    sandbox.states[RESOURCES[source][1]].faults.echo_credentials = True

    with pytest.raises(Exception) as raised:
        configured(source)

    chain = _chain(raised.value)
    assert any(isinstance(e, SourceError) and "HTTP 401" in str(e) for e in chain), chain
    assert not [e for e in chain if CANARY in str(e)]


def test_an_echoed_token_appears_in_no_output_file_or_table(sandbox, settings, tmp_path):
    sandbox.states["gitlab"].faults.echo_credentials = True
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DORA__"))}
    env |= {k: v for k, v in sandbox.source_environment().items() if k.startswith("SOURCES__GITLAB__")}
    env |= {"SOURCES__GITLAB__PRIVATE_TOKEN": CANARY}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dora-pipeline"), "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 1 and "HTTP 401" in done.stderr, done.stderr[-2000:]
    assert CANARY not in done.stdout + done.stderr
    files = [p for root in (settings.data_dir, settings.dagster_home) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "trace.pickle" for p in files) and any(p.suffix == ".db" for p in files)
    assert [p for p in files if CANARY.encode() in p.read_bytes()] == []
    assert string_values_containing(settings.duckdb_path, CANARY) == []


@pytest.mark.parametrize(
    ("base_url", "allowed"),
    [
        ("https://gitlab.example.com/api/v4", True),
        ("http://127.0.0.1:8080/api/v4", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("http://gitlab.example.com/api/v4", False),
        ("http://10.0.0.5/api/v4", False),
        ("ftp://gitlab.example.com", False),
    ],
)
def test_a_token_only_travels_over_https_except_to_this_machine(base_url, allowed, monkeypatch):
    def client() -> ApiClient:
        return ApiClient("gitlab", base_url, {"PRIVATE-TOKEN": CANARY})

    if allowed:
        client().close()
        return
    with pytest.raises(SourceError) as raised:
        client()
    assert "is not https" in str(raised.value) and CANARY not in str(raised.value)
    assert raised.value.hint.endswith("SOURCES__GITLAB__ALLOW_INSECURE_HTTP=true")
    if base_url.startswith("http:"):
        monkeypatch.setenv("SOURCES__GITLAB__ALLOW_INSECURE_HTTP", "true")
        client().close()


@pytest.mark.parametrize("source", list(RESOURCES))
def test_a_spent_rate_limit_window_is_waited_out_not_hammered(source, sandbox, configured, monkeypatch):
    """GitLab.com's way: every answer says how much of the window's quota is left and when the
    window ends (`RateLimit-Reset`, an epoch); a 429 may come without `Retry-After`."""
    clean = configured(source)
    state = sandbox.states[RESOURCES[source][1]]
    before = len(state.requests)
    # a back-off this long would show: the waits must come from the window's end instead
    monkeypatch.setenv(setting_name(source, "retry_backoff_seconds"), "30")
    state.faults.requests_per_window, state.faults.window_seconds = 6, 1.0
    state.faults.quota_spent_by_others = 6  # the first request meets a spent window
    started = time.monotonic()

    limited = configured(source)

    elapsed = time.monotonic() - started
    served = len(state.requests) - before
    assert sorted(map(repr, limited)) == sorted(map(repr, clean)) and clean
    assert state.over_quota == 1  # only the first request, sent into a spent window
    assert elapsed < served / 6 + 3, (elapsed, served)  # waited per window, never a 30 s back-off
    assert elapsed >= served // 6 - 1, (elapsed, served)  # and did wait for the windows


def _read_with_bound(box, source: str, resources: list[str], bound: int, monkeypatch, tmp_path) -> tuple[list, int]:
    """The rows of `resources[0]` read with `max_concurrent_requests` = `bound` while every answer
    is slowed a little (so requests overlap when they can), and the most requests the source's
    emulator had in flight at once."""
    emulator = "gearset" if source.startswith("gearset") else source
    state = box.states[emulator]
    monkeypatch.setenv(setting_name(source, "max_concurrent_requests"), str(bound))
    box.set_fault_profile(FaultProfile.parse("rate=1,kinds=slow,slow_seconds=0.02"))
    state.most_in_flight = 0
    name = f"bound_{source}_{resources[0]}_{bound}"
    pipeline = dlt.pipeline(name, destination="duckdb", pipelines_dir=str(tmp_path))
    pipeline.activate()
    try:
        built = SOURCES[source].build()
        built = built.with_resources(*resources) if len(resources) > 1 else built
        rows = sorted(repr(r) for r in rows_in(built.resources[resources[0]]))
    finally:
        pipeline.deactivate()
    return rows, state.most_in_flight


def _point_at(box, monkeypatch) -> None:
    for name, value in box.source_environment().items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("resource", ["deployment_merge_requests", "merge_requests"])
def test_gitlab_requests_of_one_record_each_run_together_within_the_bound(resource, sandbox, monkeypatch, tmp_path):
    """A deployment's MRs and an MR's commits (through REST) are independent requests: up to the
    configured number are in flight at once (never more), and the rows are those of a serial read."""
    _point_at(sandbox, monkeypatch)
    monkeypatch.setenv("SOURCES__GITLAB__GRAPHQL", "false")
    selected = [resource, "deployments"] if resource == "deployment_merge_requests" else [resource]
    rows = {}
    for bound in (1, 3):
        rows[bound], most = _read_with_bound(sandbox, "gitlab", selected, bound, monkeypatch, tmp_path)
        assert most == bound, (bound, most)
    assert rows[1] == rows[3] and rows[1]


@pytest.mark.parametrize("resource", ["environments", "deployments", "merge_requests", "incidents", "dora_metrics"])
def test_gitlab_lists_projects_side_by_side_within_the_bound(resource, sandbox, monkeypatch, tmp_path):
    """Each project's list is read beside the other projects' (the sandbox has two), never more
    requests in flight than the bound, and the rows are those of a serial read."""
    _point_at(sandbox, monkeypatch)
    rows = {}
    for bound in (1, 2):
        rows[bound], most = _read_with_bound(sandbox, "gitlab", [resource], bound, monkeypatch, tmp_path)
        assert most == bound, (bound, most)
    assert rows[1] == rows[2] and rows[1]


@pytest.mark.parametrize("resource", ["pull_requests", "commits", "tags", "report_points"])
def test_gitclear_reads_repositories_side_by_side_within_the_bound(resource, monkeypatch, tmp_path):
    """Each repository's audit pages (or reports) are read beside the other repositories' (two
    organisations, so two repositories), never more requests in flight than the bound, and the
    rows are those of a serial read."""
    from dora_pipeline.sandbox.server import Sandbox
    from dora_pipeline.sandbox.world import scaled_services

    with Sandbox.start(services=scaled_services(2)) as box:
        _point_at(box, monkeypatch)
        rows = {}
        for bound in (1, 2):
            rows[bound], most = _read_with_bound(box, "gitclear", [resource], bound, monkeypatch, tmp_path)
            assert most == bound, (bound, most)
    assert rows[1] == rows[2] and rows[1]


@pytest.mark.parametrize(("source", "resource"), [("gearset", "deployments"), ("gearset_automation", "ci_job_runs")])
def test_gearset_reports_requests_run_together_within_the_bound(source, resource, sandbox, monkeypatch, tmp_path):
    """Starting, polling and fetching Gearset's reports are independent requests: up to the
    configured number are in flight at once (never more), and the rows are those of a serial read."""
    _point_at(sandbox, monkeypatch)
    monkeypatch.setenv(setting_name(source, "window_days"), "30")  # a dozen reports per pipeline or job
    rows = {}
    for bound in (1, 3):
        rows[bound], most = _read_with_bound(sandbox, source, [resource], bound, monkeypatch, tmp_path)
        assert most == bound, (bound, most)
    assert rows[1] == rows[3] and rows[1]


def test_ci_job_states_are_read_side_by_side_within_the_bound(monkeypatch, tmp_path):
    """A job's state is one request of its own: the jobs' are read beside each other, never more
    in flight than the bound, and every job's state is snapshotted whatever the bound."""
    from dora_pipeline.sandbox.server import Sandbox
    from dora_pipeline.sandbox.world import scaled_services

    with Sandbox.start(services=scaled_services(3)) as box:
        _point_at(box, monkeypatch)
        jobs = {s.service_id for s in box.world.services_in("gearset_automation")}
        for bound in (1, 2):
            rows, most = _read_with_bound(
                box, "gearset_automation", ["ci_job_status_history"], bound, monkeypatch, tmp_path
            )
            assert most == bound, (bound, most)
            assert len(rows) == len(jobs) == 3 and all(repr(job) in "".join(rows) for job in jobs)


def test_a_quota_without_its_windows_end_does_not_hold_requests_back():
    """`RateLimit-Remaining` without `RateLimit-Reset` says nothing of when to go on: requests
    side by side are not held back for it, while a spent window with its end is waited out."""
    import threading

    import httpx

    from dora_pipeline.sources.http import _RateWindow

    window = _RateWindow(max_wait_seconds=60)
    with window.slot():
        window.observe(httpx.Headers({"RateLimit-Remaining": "0"}))
        entered = threading.Event()

        def second() -> None:
            with window.slot():
                entered.set()

        beside = threading.Thread(target=second)
        beside.start()
        assert entered.wait(2)  # went out while the first was still in flight
        beside.join()
    reset = time.time() + 0.5
    with window.slot():
        window.observe(httpx.Headers({"RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)}))
    started = time.monotonic()
    with window.slot():
        pass
    assert time.monotonic() - started >= 0.3  # waited for the window's end
