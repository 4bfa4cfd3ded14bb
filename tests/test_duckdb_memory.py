"""Every process that writes the DuckDB build file caps DuckDB's memory, dlt's loads as well as
dbt's build: uncapped, DuckDB takes up to 80 % of the machine, and a million Gearset deployments
merged in dlt's load held 2.6 GB. And the extraction's process gives back what a finished source
freed while the other sources go on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dlt
import duckdb
import pytest
import yaml

from dora_pipeline import warehouse
from dora_pipeline.settings import Settings

PROFILES = Path(__file__).parents[1] / "dbt_project" / "profiles.yml"


def _in_bytes(limit: str) -> int:
    """DuckDB's own reading of a limit (it answers in MiB or GiB)."""
    with duckdb.connect() as con:
        con.execute(f"set memory_limit = '{limit}'")
        return con.execute("select value from duckdb_settings() where name = 'memory_limit'").fetchall()[0][0]


@pytest.mark.parametrize("limit", [None, "300MB"])
def test_dlt_loads_into_duckdb_within_the_load_memory_limit(limit, tmp_path, monkeypatch):
    """The loads have a cap of their own, below dbt's: they run beside the sources still being
    extracted, in one process."""
    monkeypatch.setenv("DORA_DUCKDB_MEMORY_LIMIT", "2GB")  # dbt's: not the loads'
    if limit:
        monkeypatch.setenv("DORA_DUCKDB_LOAD_MEMORY_LIMIT", limit)
    else:
        monkeypatch.delenv("DORA_DUCKDB_LOAD_MEMORY_LIMIT", raising=False)
    settings = Settings.from_path(tmp_path / "dora.duckdb", warehouse="duckdb")
    settings.build_path.parent.mkdir(parents=True)
    pipeline = dlt.pipeline(
        "capped", destination=warehouse.dlt_destination(settings), dataset_name="raw", pipelines_dir=str(tmp_path)
    )

    pipeline.run([{"id": 1}], table_name="records", loader_file_format="parquet")

    with pipeline.sql_client() as client:
        used = client.execute_sql("select value from duckdb_settings() where name = 'memory_limit'")[0][0]
    assert used == _in_bytes(limit or "512MB")


def test_dbt_builds_with_the_same_default_limit():
    local = yaml.safe_load(PROFILES.read_text())["dora"]["outputs"]["local"]
    assert f"'DORA_DUCKDB_MEMORY_LIMIT', '{warehouse.DUCKDB_MEMORY_LIMIT}'" in local["settings"]["memory_limit"]


RELEASE_PROBE = """
import json, sys
from pathlib import Path
from dora_pipeline.defs.ingestion.freed_memory import release_freed_memory

def rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

# what an extraction leaves: a few hundred MB of records, freed, under one object still alive
records = [bytes(1000) for _ in range(300_000)]
survivor = bytes(1000)
del records
before = rss_mb()
release_freed_memory()
print(json.dumps({"before": before, "after": rss_mb()}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the process's memory from /proc")
def test_a_source_step_gives_freed_memory_back():
    """The extraction's process runs every source side by side: what a finished source freed must
    leave the process, not stay in the allocator's arenas while the slower sources run."""
    done = subprocess.run([sys.executable, "-c", RELEASE_PROBE], capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout)
    assert figures["before"] - figures["after"] > 200, figures
