"""The sources are extracted in a child process that is gone before dbt's build starts, so the
memory an extraction takes does not stay beside dbt's. What the child yields, logs and raises
reaches the run as if the step had done the work itself, and a child that dies (killed for memory,
say) fails the step with a clear line and leaves the warehouse as it was."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from dora_pipeline import warehouse
from dora_pipeline.defs import build_definitions
from dora_pipeline.defs.ingestion import assets as ingestion
from dora_pipeline.defs.ingestion.child_process import ExtractionProcessDied, run_in_child
from dora_pipeline.settings import Settings

MULTITUDES = AssetKey(["multitudes", "deployments"])


def _pid_and_count() -> object:
    yield os.getpid()
    yield 2


def test_items_stream_from_another_process():
    assert next(iter(run_in_child(_pid_and_count))) != os.getpid()
    assert list(run_in_child(_pid_and_count))[1:] == [2]


class Unpicklable(Exception):
    def __init__(self, source: str, detail: str):
        super().__init__(f"{source}: {detail}")


def test_the_childs_exception_is_raised_in_the_parent():
    def fails() -> object:
        yield 1
        raise ValueError("no such field 'deployed_at'")

    with pytest.raises(ValueError, match="no such field 'deployed_at'") as raised:
        list(run_in_child(fails))
    assert "in the extraction's process" in "".join(raised.value.__notes__)

    def fails_oddly() -> object:
        raise Unpicklable("gearset", "cannot cross")
        yield

    with pytest.raises(RuntimeError, match="Unpicklable: gearset: cannot cross"):
        list(run_in_child(fails_oddly))


def test_a_killed_child_fails_with_its_exit_code():
    def killed() -> object:
        yield "loaded one"
        os.kill(os.getpid(), signal.SIGKILL)
        yield "never"

    items = []
    with pytest.raises(ExtractionProcessDied, match="exit code -9"):
        items.extend(run_in_child(killed))
    assert items == ["loaded one"]


def test_a_parent_that_stops_reading_stops_the_child(tmp_path: Path):
    def endless() -> object:
        Path(tmp_path / "pid").write_text(str(os.getpid()))
        while True:
            yield 1

    stream = run_in_child(endless)
    next(stream)
    stream.close()
    assert not Path(f"/proc/{(tmp_path / 'pid').read_text()}").exists()


KILLED_PARENT = """
import sys, time
from pathlib import Path
from dora_pipeline.defs.ingestion.child_process import run_in_child

def endless():
    Path(sys.argv[1]).write_text(str(__import__("os").getpid()))
    while True:
        time.sleep(0.05)
        yield 1

for _ in run_in_child(endless):
    pass
"""


def test_a_killed_refresh_takes_its_extraction_with_it(tmp_path: Path):
    """SIGKILL of the refresh must not leave its extraction loading into the warehouse while the
    next refresh cleans up."""
    pid_file = tmp_path / "child"
    parent = subprocess.Popen([sys.executable, "-c", KILLED_PARENT, str(pid_file)])
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    while Path(f"/proc/{child}").exists() and "Z" not in _state(child):
        assert time.monotonic() < deadline, "the extraction outlived its refresh"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _extract_multitudes(settings: Settings, instance: DagsterInstance | None = None):
    job = build_definitions(settings).resolve_job_def("dora_refresh")
    return job.execute_in_process(
        asset_selection=[MULTITUDES], instance=instance or DagsterInstance.ephemeral(), raise_on_error=False
    )


def _raw_ids(settings: Settings) -> list[str]:
    with warehouse.connect(settings, build=True, read_only=True) as con:
        return [row[0] for row in con.execute("select id from raw_multitudes.deployments")]


def test_the_step_extracts_in_a_child_and_survives_its_death(settings, point_at_sandbox, monkeypatch, tmp_path):
    loaded_in = tmp_path / "loaded_in"
    original = ingestion.raw_pipeline

    def recording(source: str, settings: Settings):
        loaded_in.write_text(str(os.getpid()))
        return original(source, settings)

    monkeypatch.setattr(ingestion, "raw_pipeline", recording)
    first = _extract_multitudes(settings)
    assert first.success
    child = int(loaded_in.read_text())
    assert child != os.getpid() and not Path(f"/proc/{child}").exists()
    [materialized] = first.get_asset_materialization_events()
    rows = materialized.materialization.metadata["source_rows"].value
    ids = _raw_ids(settings)
    assert rows == len(ids) == len(set(ids)) > 0

    # killed between extracting and loading, as the kernel kills a process out of memory
    def dying(source: str, settings: Settings):
        pipeline = original(source, settings)
        pipeline.load = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
        return pipeline

    monkeypatch.setattr(ingestion, "raw_pipeline", dying)
    killed = _extract_multitudes(settings)
    assert not killed.success
    [failure] = [e for e in killed.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert "extraction's process ended with exit code -9" in failure.step_failure_data.error.cause.message
    assert sorted(_raw_ids(settings)) == sorted(ids)

    # the next run loads the same records again, once each, and a source's error reaches the log
    monkeypatch.setattr(ingestion, "raw_pipeline", original)
    again = _extract_multitudes(settings)
    assert again.success and sorted(_raw_ids(settings)) == sorted(ids)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("SOURCES__MULTITUDES__BASE_URL", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("SOURCES__MULTITUDES__MAX_ATTEMPTS", "1")
    instance = DagsterInstance.ephemeral()
    unreachable = _extract_multitudes(settings, instance)
    errors = [
        entry.user_message
        for entry in instance.all_logs(unreachable.run_id)
        if entry.dagster_event is None and entry.level >= logging.ERROR
    ]
    assert len(errors) == 1 and errors[0].startswith("multitudes could not be extracted"), errors
    assert sorted(_raw_ids(settings)) == sorted(ids)
