"""Processes take turns at the DuckDB build file (the refresh's, dbt's): one that finds it open
waits for it, where DuckDB alone would refuse it at once."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import dlt
import duckdb
import pytest

from dora_pipeline import warehouse
from dora_pipeline.settings import Settings

HOLD_SECONDS = 2.0


def _hold_build_file(path: str, ready, seconds: float) -> None:
    """In another process: open the build file through the warehouse layer and keep it open."""
    settings = Settings.from_path(Path(path), warehouse="duckdb")
    with warehouse.connect(settings, build=True) as con:
        con.execute("create table held (step integer)")
        con.execute("insert into held values (1)")
        ready.set()
        time.sleep(seconds)
        con.execute("insert into held values (2)")


@pytest.fixture
def held(tmp_path: Path):
    """The build file held open by another process for HOLD_SECONDS once `ready`."""
    settings = Settings.from_path(tmp_path / "dora.duckdb", warehouse="duckdb")
    settings.build_path.parent.mkdir(parents=True)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold_build_file, args=(str(settings.duckdb_path), ready, HOLD_SECONDS))
    holder.start()
    assert ready.wait(120), "the holding process did not open the build file"
    yield settings
    holder.join(60)
    assert holder.exitcode == 0


def test_duckdb_alone_refuses_a_second_process(held: Settings):
    """What the lock is for: without it, the second writer fails instead of waiting."""
    with pytest.raises(duckdb.IOException, match="lock"):
        duckdb.connect(str(held.build_path))


def test_a_second_process_waits_for_the_build_file(held: Settings):
    with warehouse.connect(held, build=True) as con:
        # the holder finished its work before this process got the file
        assert con.execute("select step from held order by step") == [(1,), (2,)]


def test_dlt_loads_and_look_ups_wait_for_the_build_file(held: Settings, tmp_path: Path):
    """Every way a source's dlt pipeline opens the warehouse (restoring its state, loading,
    `sql_client`) waits its turn; the extraction before it does not."""
    pipeline = warehouse.serialize_writes(
        dlt.pipeline(
            pipeline_name="lock_probe",
            destination=warehouse.dlt_destination(held),
            dataset_name="raw_probe",
            pipelines_dir=str(tmp_path / "dlt"),
        ),
        held,
    )
    pipeline.run([{"id": 1}, {"id": 2}], table_name="records")
    with pipeline.sql_client() as client:
        assert client.execute_sql("select count(*) from records") == [(2,)]
        assert client.execute_sql("select count(*) from main.held") == [(2,)]
