"""dbt's unit tests of the metric logic (backlog, a change deployed twice, negative durations,
window links, midnight/ISO-week/month edges, the performance-level rule). They test the models'
SQL, not the data, so the scheduled refresh leaves them out and they run here, on a copy of a
refreshed warehouse (a unit test reads its models' columns from the relations dbt built)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from dora_pipeline.defs.warehouse.project import dbt_executable
from dora_pipeline.settings import DBT_PROJECT_DIR
from dora_pipeline.sources.registry import SOURCES


def test_every_dbt_unit_test_passes(reference_refresh, tmp_path):
    warehouse = tmp_path / "dora.duckdb"
    shutil.copyfile(reference_refresh.settings.build_path, warehouse)
    done = subprocess.run(
        [
            dbt_executable(),
            "test",
            "--select",
            "test_type:unit",
            "--target-path",
            str(tmp_path / "target"),
            "--vars",
            json.dumps({"dora_sources": list(SOURCES)}),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, "DORA_DBT_DUCKDB_PATH": str(warehouse)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    unit_tests = [r for r in results if r["unique_id"].startswith("unit_test.")]
    assert len(unit_tests) >= 6 and all(r["status"] == "pass" for r in unit_tests), unit_tests
