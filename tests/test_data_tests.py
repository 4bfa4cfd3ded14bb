"""The project's own generic data tests (dbt_project/macros/test_*.sql) fail on what they guard
against and only on that, on a copy of a refreshed warehouse."""

from __future__ import annotations

import shutil

import duckdb
from warehouse_checks import run_dbt_tests

LINKS = "intermediate.int_change_deployments"


def test_unique_combination_fails_on_a_repeated_combination_and_only_on_one(reference_refresh, tmp_path):
    """`unique_combination` groups by a hash of the columns before the columns themselves: a
    repeated (change, deployment) link fails it, a change linked to one more deployment does not."""
    warehouse = tmp_path / "dora.duckdb"
    shutil.copyfile(reference_refresh.settings.build_path, warehouse)

    def run(name: str) -> list[dict]:
        done, results = run_dbt_tests(
            {"DORA_DBT_DUCKDB_PATH": str(warehouse)},
            tmp_path / name,
            "int_change_deployments,test_name:unique_combination",
        )
        tests = [r for r in results if r["unique_id"].startswith("test.")]  # not the on-run-start hook
        assert len(tests) == 1, done.stdout[-3000:]
        return tests

    assert run("as_built")[0]["status"] == "pass"

    key = "change_id = ? and deployment_id = ?"
    with duckdb.connect(str(warehouse)) as con:
        change, deployment = con.execute(f"select change_id, deployment_id from {LINKS} limit 1").fetchone()
        other = con.execute(f"select deployment_id from {LINKS} where deployment_id <> ? limit 1", [deployment])
        linked = [other.fetchone()[0], change, deployment]
        con.execute(f"insert into {LINKS} select change_id, ?, link_method, linked_at from {LINKS} where {key}", linked)
    assert run("one_more_deployment")[0]["status"] == "pass"

    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"insert into {LINKS} select * from {LINKS} where {key}", [change, deployment])
    failed = run("repeated")[0]
    assert failed["status"] == "fail" and failed["failures"] == 1, failed
