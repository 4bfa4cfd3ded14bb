"""dbt's unit tests of the metric logic (backlog, a change deployed twice, negative durations,
window links, midnight/ISO-week/month edges, the performance-level rule). They test the models'
SQL, not the data, so the scheduled refresh leaves them out and they run here, on a copy of a
refreshed warehouse (a unit test reads its models' columns from the relations dbt built)."""

from __future__ import annotations

import shutil

from warehouse_checks import run_dbt_unit_tests


def test_every_dbt_unit_test_passes(reference_refresh, tmp_path):
    warehouse = tmp_path / "dora.duckdb"
    shutil.copyfile(reference_refresh.settings.build_path, warehouse)
    done, unit_tests = run_dbt_unit_tests({"DORA_DBT_DUCKDB_PATH": str(warehouse)}, tmp_path / "target")
    assert done.returncode == 0, done.stdout[-3000:]
    assert len(unit_tests) >= 6 and all(r["status"] == "pass" for r in unit_tests), unit_tests
