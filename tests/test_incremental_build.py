"""dbt's incremental builds (macros/refresh_horizon.sql) against a whole rebuild of the same raw
data: days of scheduled refreshes, each bringing new records and late updates to old ones (bugs
and incidents resolved, merge requests deployed, Gearset's look-back read again), must leave every
intermediate and mart table equal, row for row, to `dbt build --full-refresh`, and the marts equal
to the simulator's ground truth."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import duckdb
from warehouse_checks import build_horizon, declared_primary_keys, differences

from dora_pipeline.defs.warehouse.project import dbt_executable, dbt_vars, vars_argument
from dora_pipeline.refresh import run_refresh
from dora_pipeline.sandbox.world import DEFAULT_AS_OF
from dora_pipeline.settings import DBT_PROJECT_DIR, Settings
from dora_pipeline.sources.registry import enabled_sources
from dora_pipeline.warehouse import dbt_environment

# What a build records about itself, not about the records.
BOOKKEEPING = {"dbt_refresh_state", "int_refresh_loads", "int_refresh_horizon", "int_refresh_records"}


def _dbt_build(settings: Settings, path: Path, *arguments: str) -> None:
    """`dbt build` of the warehouse file at `path` with the refresh's configuration."""
    env = {**os.environ, **dbt_environment(settings), "DORA_DBT_DUCKDB_PATH": str(path)}
    command = [dbt_executable(), "build", *arguments, "--exclude-resource-type", "unit_test", "--quiet"]
    command += ["--vars", vars_argument(dbt_vars(enabled_sources())), "--target-path", str(path.parent / "target")]
    done = subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def _rebuilt_whole(settings: Settings, copy: Path) -> Path:
    """The build file copied and rebuilt from its raw tables by `dbt build --full-refresh`."""
    shutil.copyfile(settings.build_path, copy)
    _dbt_build(settings, copy, "--full-refresh")
    return copy


def _differing_tables(incremental: Path, whole: Path) -> dict[str, tuple[int, int]]:
    """Every intermediate and mart table whose rows differ: (rows only in the incremental build,
    rows only in the whole one), duplicates counted."""
    found = {}
    with duckdb.connect(str(incremental), read_only=True) as con:
        con.execute(f"attach '{whole}' as whole (read_only)")
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = current_database() and schema_name in ('intermediate', 'marts')"
        ).fetchall()
        assert len(tables) > 50
        for schema, table in tables:
            if table in BOOKKEEPING:
                continue
            mine, theirs = f"{schema}.{table}", f"whole.{schema}.{table}"
            only_mine = con.execute(f"select count(*) from (from {mine} except all from {theirs})").fetchone()[0]
            only_theirs = con.execute(f"select count(*) from (from {theirs} except all from {mine})").fetchone()[0]
            if only_mine or only_theirs:
                found[f"{schema}.{table}"] = (only_mine, only_theirs)
    return found


def _load_again(con: duckdb.DuckDBPyConnection, relation: str, load_id: str, count: int) -> list[int]:
    """Marks up to `count` records of a raw table that the last build saw (`int_refresh_records`
    holds them) as loaded again, unchanged, by a load that finished now, as dlt records one;
    returns their keys as `int_refresh_records` hashes them."""
    source = relation.split(".")[0]
    loads = f"raw_{source}._dlt_loads"
    if not con.execute(f"select count(*) from {loads} where load_id = ?", [load_id]).fetchone()[0]:
        con.execute(
            f"insert into {loads} select * replace (? as load_id, now() as inserted_at) from {loads} limit 1", [load_id]
        )
    key = ", ".join(declared_primary_keys()[relation])
    found = con.execute(
        f"select hash({key}) from raw_{relation} where _dlt_load_id <> ? and hash({key}) in "
        f"(select record_key from intermediate.int_refresh_records where relation = ?) order by {key} limit {count}",
        [load_id, relation],
    ).fetchall()
    assert found, relation
    keys = [k for (k,) in found]
    con.execute(f"update raw_{relation} set _dlt_load_id = ? where list_contains(?, hash({key}))", [load_id, keys])
    return keys


def test_incremental_builds_over_days_of_late_updates_equal_a_full_rebuild(
    settings, sandbox, point_at_sandbox, tmp_path, monkeypatch
):
    days = [DEFAULT_AS_OF - timedelta(days=d) for d in (8, 3)] + [DEFAULT_AS_OF]
    horizons = []
    for as_of in days:
        sandbox.set_as_of(as_of)
        point_at_sandbox()
        outcome = run_refresh(settings)
        assert not outcome.failed_sources
        horizons.append(build_horizon(settings.build_path))
        assert build_horizon(settings.build_path, "int_refresh_loads")["horizon"] == horizons[-1]["horizon"]

    assert horizons[0]["full_rebuild_reason"] == "first build"
    with duckdb.connect(str(settings.build_path), read_only=True) as con:
        first_deployment = con.execute("select min(deployed_at) from intermediate.int_deployments").fetchone()[0]
    for later in horizons[1:]:
        assert not later["is_full"], later
        # Each later build kept the rows before its horizon: months of history were not rebuilt.
        assert later["horizon"] > first_deployment + timedelta(days=60), later
    assert differences(settings.duckdb_path, sandbox.world.view(DEFAULT_AS_OF)) == []
    assert _differing_tables(settings.build_path, _rebuilt_whole(settings, tmp_path / "whole.duckdb")) == {}

    # In every raw table, records loaded again unchanged are not counted; a record that differs
    # from what the last build saw (its stored hash altered) is.
    relations = sorted(declared_primary_keys())
    assert len(relations) == 10
    moved_records = 0
    with duckdb.connect(str(settings.build_path)) as con:
        for relation in relations:
            moved = _load_again(con, relation, "probe-changed", 6)
            moved_records += len(moved)
            con.execute(
                "update intermediate.int_refresh_records set row_hash = xor(row_hash, 1) "
                "where relation = ? and record_key = ?",
                [relation, moved[0]],
            )
    _dbt_build(settings, settings.build_path)
    changed = build_horizon(settings.build_path, "int_refresh_loads")
    assert changed["changed_records"] == len(relations), changed
    assert changed["changed_relations"].split(", ") == relations
    assert changed["earliest_new"] is not None and not changed["is_full"]

    # int_deployments' build above failed, say: its state is the build's before. The records that
    # build stored are newer than what int_deployments saw, so all of the probe's count again.
    with duckdb.connect(str(settings.build_path)) as con:
        con.execute(
            "delete from intermediate.dbt_refresh_state where model = 'int_deployments' "
            "and built_at = (select max(built_at) from intermediate.dbt_refresh_state where model = 'int_deployments')"
        )
    _dbt_build(settings, settings.build_path)
    lagging = build_horizon(settings.build_path, "int_refresh_loads")
    assert moved_records > 3 * len(relations)
    assert lagging["changed_records"] == moved_records, lagging

    # Gearset stops recording bugs for the pipelines of services only it tracks failures for: every
    # day of those services' history changes (their failure metrics become null), yet no record
    # before the horizon was loaded again. The per-source models stay incremental; the unified ones
    # and the marts are rebuilt whole.
    def tracked_days(services: list[str]) -> int:
        with duckdb.connect(str(settings.build_path), read_only=True) as con:
            return con.execute(
                "select count(*) from marts.dora_metrics_daily "
                "where change_failure_rate is not null and list_contains(?, service)",
                [services],
            ).fetchone()[0]

    with duckdb.connect(str(settings.build_path)) as con:
        keys = con.execute(
            "select keys.service, keys.service_key from intermediate.int_service_keys as keys "
            "inner join intermediate.int_failure_tracking as tracking on keys.service = tracking.service "
            "where keys.source = 'gearset' and tracking.tracking_basis = 'recorded by gearset'"
        ).fetchall()
        services, pipelines = sorted({s for s, _ in keys}), [p for _, p in keys]
        tracked = "bugs_tracked and list_contains(?, pipeline_id)"  # the pipelines of those services
        (flipped,) = con.execute(
            f"select list(id) from raw_gearset.deployments where {tracked}", [pipelines]
        ).fetchone()
        con.execute(f"update raw_gearset.deployments set bugs_tracked = false where {tracked}", [pipelines])
    assert tracked_days(services) > 60
    _dbt_build(settings, settings.build_path)
    assert build_horizon(settings.build_path)["full_rebuild_reason"] == "failure tracking changed"
    assert not build_horizon(settings.build_path, "int_refresh_loads")["is_full"]
    assert tracked_days(services) == 0
    with duckdb.connect(str(settings.build_path)) as con:
        con.execute("update raw_gearset.deployments set bugs_tracked = true where list_contains(?, id)", [flipped])

    # A new team for a service changes rows before any horizon: the next build rebuilds everything.
    monkeypatch.setenv("DORA__SERVICE_TEAMS", json.dumps({**sandbox.service_teams(), "checkout-web": "storefront"}))
    assert not run_refresh(settings).failed_sources
    horizon = build_horizon(settings.build_path)
    assert horizon["is_full"] and horizon["full_rebuild_reason"] == "configuration, services or models changed"
    with duckdb.connect(str(settings.build_path), read_only=True) as con:
        teams = con.execute("select distinct team from marts.deployments where service = 'checkout-web'").fetchall()
    assert teams == [("storefront",)]

    # A warehouse an earlier version built: no refresh state, and a table without a column added
    # since. The next build takes the new column and rebuilds everything.
    with duckdb.connect(str(settings.build_path)) as con:
        con.execute("drop table intermediate.dbt_refresh_state")
        con.execute("alter table intermediate.int_change_deployments drop column linked_at")
    assert not run_refresh(settings).failed_sources
    assert build_horizon(settings.build_path)["full_rebuild_reason"] == "first build"
    with duckdb.connect(str(settings.build_path), read_only=True) as con:
        unanchored = con.execute(
            "select count(*) from intermediate.int_change_deployments where linked_at is null"
        ).fetchone()[0]
    assert unanchored == 0
    assert differences(settings.duckdb_path, sandbox.world.view(DEFAULT_AS_OF)) == []
