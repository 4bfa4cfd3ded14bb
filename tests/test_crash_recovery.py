"""A refresh killed mid-way (SIGKILL of the command) leaves no process behind once the next one
starts, that next one cleans up its half-written files and ends equal to the ground truth, and a
second refresh of the same warehouse is refused while one is running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from dagster import DagsterInstance
from warehouse_checks import differences, duplicated_keys

from dora_pipeline.defs import build_definitions
from dora_pipeline.refresh import run_refresh
from dora_pipeline.refresh_lock import MARK, RefreshRunning, _started, processes_marked, refresh_lock

CLI = Path(sys.executable).parent / "dora-pipeline"


def _dbt_of(token: str) -> list[int]:
    found = []
    for pid in processes_marked(token):
        try:
            if b"dbt" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


class Refresh:
    """`dora-pipeline run` in its own process, killed (SIGKILL) the moment a condition holds."""

    def __init__(self, settings):
        self.settings = settings
        self.lock = settings.data_dir / "refresh.lock"

    def kill_when(self, what: str, condition: Callable[[str], bool]) -> str:
        """Run until `condition(token)` holds, SIGKILL the command, and return the run's token."""
        process = subprocess.Popen(
            [str(CLI), "run"], env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        token, deadline = None, time.monotonic() + 300
        while time.monotonic() < deadline:
            if token is None:
                try:
                    fields = self.lock.read_text().split()
                except FileNotFoundError:  # not taken yet, or being replaced
                    fields = []
                token = fields[2] if len(fields) == 3 and fields[0] == str(process.pid) else None
            if token is not None and condition(token):
                process.kill()
                process.wait()
                return token
            if process.poll() is not None:
                pytest.fail(f"the refresh ended before {what}: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.005)
        process.kill()
        pytest.fail(f"the refresh never reached {what}")


def _requests_to(sandbox, emulator: str, path_part: str = "") -> Callable[[], int]:
    log = sandbox.requests(emulator)
    return lambda: sum(1 for r in log if path_part in r["path"])


def test_a_refresh_killed_at_every_stage_loses_and_doubles_nothing(settings, sandbox, point_at_sandbox, figures):
    """SIGKILL during each source's extraction, a load, dbt, publishing, the build file's copy back
    and the report, one after the other on one warehouse; then a refresh runs to the end and equals
    the ground truth."""
    refresh = Refresh(settings)
    counters = {
        "gearset": _requests_to(sandbox, "gearset", "/public/reporting/"),
        "gearset_automation": _requests_to(sandbox, "gearset", "continuous-integration"),
        "gitlab": _requests_to(sandbox, "gitlab"),
        "multitudes": _requests_to(sandbox, "multitudes"),
        "gitclear": _requests_to(sandbox, "gitclear"),
    }

    def after_requests(source: str, count: int) -> Callable[[str], bool]:
        start = counters[source]()
        return lambda token: counters[source]() - start >= count

    def loading(source: str) -> Callable[[str], bool]:
        folder = settings.dlt_pipelines_dir / f"dora_{source}" / "load" / "normalized"

        def holds(token: str) -> bool:
            try:
                return any(folder.iterdir())
            except FileNotFoundError:  # not there yet, or dlt removed it after its load just now
                return False

        return holds

    dbt_seen: dict[str, float] = {}

    def in_dbt(for_seconds: float) -> Callable[[str], bool]:
        def holds(token: str) -> bool:
            if not _dbt_of(token):
                return False
            first = dbt_seen.setdefault(token, time.monotonic())
            return time.monotonic() - first >= for_seconds

        return holds

    def exporting(token: str) -> bool:
        exports = settings.exports_dir
        current = (exports / "current").resolve().name if (exports / "current").exists() else ""
        sets = [p for p in exports.iterdir() if p.is_dir() and not p.is_symlink()] if exports.is_dir() else []
        return any(p.name > current for p in sets)

    def copying_back(token: str) -> bool:
        """About to rename the build file over the published one, or its copy not back yet."""
        return settings.build_path.with_name(settings.build_path.name + ".published").exists()

    def reporting() -> Callable[[str], bool]:
        """Published by this run, its report not written yet."""

        def mtime(path: Path) -> float:
            return path.stat().st_mtime if path.exists() else 0.0

        before = mtime(settings.duckdb_path)
        return lambda token: mtime(settings.duckdb_path) > before and mtime(settings.report_path) <= before

    stages = [
        ("gearset's extraction", lambda: after_requests("gearset", 3)),
        ("gearset_automation's extraction", lambda: after_requests("gearset_automation", 2)),
        ("gitlab's extraction", lambda: after_requests("gitlab", 60)),
        ("multitudes' extraction", lambda: after_requests("multitudes", 2)),
        ("gitclear's extraction", lambda: after_requests("gitclear", 3)),
        ("gitlab's load", lambda: loading("gitlab")),
        ("gitclear's load", lambda: loading("gitclear")),
        ("the start of dbt", lambda: in_dbt(0.0)),
        ("the middle of dbt", lambda: in_dbt(4.0)),
        ("the Parquet export", lambda: exporting),
        ("the build file's copy back", lambda: copying_back),
        ("the report", reporting),
    ]
    tokens = [refresh.kill_when(what, condition()) for what, condition in stages]
    # what a killed publish can also leave: a staging copy and a link not yet renamed
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    debris = [settings.data_dir / f".{settings.duckdb_path.name}.424242.tmp", settings.exports_dir / ".current-424242"]
    debris[0].write_bytes(b"half a warehouse")
    debris[1].symlink_to("99991231T235959-000000")

    outcome = run_refresh(settings)

    assert outcome.failed_sources == [] and outcome.rejected_records == 0
    assert [t for t in tokens if processes_marked(t)] == []
    assert [p for p in debris if p.exists() or p.is_symlink()] == []
    assert not refresh.lock.exists()
    current = (settings.exports_dir / "current").resolve()
    newer = [p.name for p in settings.exports_dir.iterdir() if not p.is_symlink() and p.name > current.name]
    assert newer == []
    assert duplicated_keys(settings.duckdb_path) == {}
    assert differences(settings.duckdb_path, sandbox.world.view(sandbox.as_of)) == []
    figures.append(
        f"SIGKILL: {len(stages)} refreshes killed in a row ({', '.join(what for what, _ in stages)}); the next "
        "ran to the end: no process left, no debris, no duplicated key, equal to the ground truth"
    )


def test_a_second_refresh_is_refused_while_one_runs(settings):
    running = subprocess.Popen(["sleep", "60"])
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        (settings.data_dir / "refresh.lock").write_text(f"{running.pid} {_started(running.pid)} sometoken\n")
        with pytest.raises(RefreshRunning) as raised:
            run_refresh(settings)
        assert f"pid {running.pid}" in str(raised.value)
    finally:
        running.kill()
        running.wait()


def test_processes_left_by_a_dead_refresh_are_stopped_before_the_next_starts(settings):
    token = "a-killed-refresh"
    orphan = subprocess.Popen(["sleep", "300"], env={**os.environ, MARK: token})
    try:
        dead = subprocess.Popen(["true"])
        dead.wait()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        (settings.data_dir / "refresh.lock").write_text(f"{dead.pid} 1 {token}\n")
        assert processes_marked(token) == [orphan.pid]

        with refresh_lock(settings):
            assert orphan.wait(timeout=10) is not None
            assert processes_marked(token) == []
    finally:
        orphan.kill()
        orphan.wait()


def test_a_run_dagster_launches_itself_takes_the_same_lock(settings):
    """A scheduled run `dagster dev` or a daemon launches never passes through the command line:
    the run itself takes the lock, so it is refused while another refresh holds it."""
    running = subprocess.Popen(["sleep", "60"])
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        (settings.data_dir / "refresh.lock").write_text(f"{running.pid} {_started(running.pid)} sometoken\n")
        job = build_definitions(settings).resolve_job_def("dora_refresh")

        result = job.execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)

        assert not result.success
        errors = [
            e.event_specific_data.error.to_string()
            for e in result.all_events
            if e.is_failure and getattr(e.event_specific_data, "error", None)
        ]
        assert any(f"another refresh of this warehouse is running (pid {running.pid})" in e for e in errors), errors
        assert not result.get_asset_materialization_events()
    finally:
        running.kill()
        running.wait()
