"""A refresh killed mid-way (SIGKILL of the command) leaves no process behind once the next one
starts, that next one cleans up its half-written files and ends equal to the ground truth, and a
second refresh of the same warehouse is refused while one is running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from warehouse_checks import differences

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


def test_a_refresh_killed_during_dbt_is_cleaned_up_by_the_next(settings, sandbox, point_at_sandbox):
    lock = settings.data_dir / "refresh.lock"
    killed = subprocess.Popen(
        [str(CLI), "run"], env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    token, dbt, deadline = None, [], time.monotonic() + 300
    while not dbt and time.monotonic() < deadline and killed.poll() is None:
        fields = lock.read_text().split() if lock.exists() else []
        if len(fields) == 3:
            token = fields[2]
            dbt = _dbt_of(token)
        time.sleep(0.05)
    assert dbt, "the refresh never reached dbt"
    killed.kill()
    killed.wait()
    assert _dbt_of(token)  # dbt outlives the killed command: the orphan the next refresh must stop
    # what a killed publish leaves: a staging copy, a link not yet renamed, a half-written export set
    exports = settings.exports_dir
    exports.mkdir(parents=True, exist_ok=True)
    debris = [
        settings.data_dir / f".{settings.duckdb_path.name}.424242.tmp",
        exports / "99991231T235959-000000" / "deployments.parquet",
        exports / ".current-424242",
    ]
    debris[0].write_bytes(b"half a warehouse")
    debris[1].parent.mkdir()
    debris[1].write_bytes(b"half a file")
    debris[2].symlink_to("99991231T235959-000000")

    outcome = run_refresh(settings)

    assert outcome.failed_sources == []
    assert processes_marked(token) == []
    assert [p for p in debris if p.exists() or p.is_symlink()] == []
    assert not debris[1].parent.exists()
    assert not lock.exists()
    assert differences(settings.duckdb_path, sandbox.world.view(sandbox.as_of)) == []


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
