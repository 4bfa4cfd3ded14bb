"""Reading the warehouse back and holding it against the simulator's ground truth."""

from __future__ import annotations

import json
import math
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import yaml

from dora_pipeline import warehouse
from dora_pipeline.sandbox.ground_truth import metrics
from dora_pipeline.sandbox.world import World
from dora_pipeline.settings import DBT_PROJECT_DIR, Settings
from dora_pipeline.sources.registry import enabled_sources

# The raw tables the look-backs (Gearset's, GitClear's, Multitudes', the CI jobs') read again on
# every refresh.
LOOK_BACK_RELATIONS = (
    "gearset.deployments",
    "gearset.deployment_pull_requests",
    "gearset_automation.ci_job_runs",
    "gitclear.pull_requests",
    "multitudes.deployments",
)
KEYS = {
    "service_environment": ("service", "environment", "period_start"),
    "team": ("team", "period_start"),
    "overall": ("period_start",),
}
GRAIN_NAMES = {"day": "daily", "week": "weekly", "month": "monthly"}


def mart_table(grain: str, level: str) -> str:
    prefix = {"service_environment": "dora_metrics", "team": "dora_team_metrics", "overall": "dora_overall_metrics"}
    return f"marts.{prefix[level]}_{GRAIN_NAMES[grain]}"


def published(target: Path | Settings):
    """A read-only connection to a published warehouse: a DuckDB file, or any warehouse's settings."""
    return warehouse.connect(
        target if isinstance(target, Settings) else Settings(duckdb_path=Path(target)), read_only=True
    )


def mart_rows(target: Path | Settings, grain: str = "day", level: str = "service_environment") -> dict[tuple, dict]:
    with published(target) as con:
        rows = con.records(f"select * from {mart_table(grain, level)}")
    return {tuple(r[k] for k in KEYS[level]): r for r in rows}


def differences(
    path: Path | Settings,
    world: World,
    severity_threshold: int | None = None,
    grain: str = "day",
    level: str = "service_environment",
    names: dict[str, str] | None = None,
    configured_tracking: dict[str, bool] | None = None,
) -> list[str]:
    """Every (row, column) where the mart and the ground truth disagree, worded for a failure.
    `names` maps the world's service names to the warehouse's where the catalog renames them."""
    truth = metrics(world, grain, level, severity_threshold, configured_tracking)
    if names and level == "service_environment":
        truth = {(names.get(k[0], k[0]), *k[1:]): row for k, row in truth.items()}
    mart = mart_rows(path, grain, level)
    problems = [f"missing row {k}" for k in truth.keys() - mart.keys()]
    problems += [f"unexpected row {k}" for k in mart.keys() - truth.keys()]
    for key in truth.keys() & mart.keys():
        for column, expected in truth[key].items():
            actual = mart[key][column]
            if expected is None or actual is None:
                same = expected is None and actual is None
            else:
                same = math.isclose(float(expected), float(actual), rel_tol=1e-9, abs_tol=1e-6)
            if not same:
                problems.append(f"{key} {column}: mart {actual!r} != truth {expected!r}")
    return problems


RAW_SCHEMAS = ("raw_gearset", "raw_gitlab", "raw_multitudes", "raw_gitclear", "raw_gearset_automation")
# Appended on purpose at every refresh: a history of observations, not of records.
SNAPSHOT_TABLES = {"raw_gearset_automation.ci_job_status_history", "marts.source_freshness"}
# When each source was last extracted: it moves with every refresh, by design.
OBSERVATION_COLUMNS = {"source_data_as_of"}


def table_fingerprint(path: Path, schemas: tuple[str, ...] = (*RAW_SCHEMAS, "marts")) -> dict[str, tuple]:
    """Row count and an order-independent content hash of every table in `schemas`."""
    fingerprint = {}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.sql(
            "select schema_name, table_name from duckdb_tables() where schema_name in "
            f"({', '.join(repr(s) for s in schemas)}) and not starts_with(table_name, '_dlt')"
        ).fetchall()
        for schema, table in tables:
            if f"{schema}.{table}" in SNAPSHOT_TABLES:
                continue
            columns = [
                c
                for (c,) in con.sql(
                    "select column_name from duckdb_columns() where schema_name = ? and table_name = ? "
                    "and column_name not in ('_dlt_load_id', '_dlt_id') and column_name not in (select unnest(?))",
                    params=[schema, table, sorted(OBSERVATION_COLUMNS)],
                ).fetchall()
            ]
            select = ", ".join(f'"{c}"' for c in columns)
            query = f"select count(*), sum(hash(({select}))) from {schema}.{table}"
            fingerprint[f"{schema}.{table}"] = con.execute(query).fetchall()[0]
    return fingerprint


def string_values_containing(path: Path, needle: str) -> list[str]:
    """Every table column in the warehouse holding a string that contains `needle`."""
    found = []
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.sql(
            "select schema_name, table_name, column_name from duckdb_columns() "
            "where data_type = 'VARCHAR' and not internal"
        ).fetchall()
        for schema, table, column in columns:
            hits = con.execute(
                f'select count(*) from "{schema}"."{table}" where contains("{column}", ?)', [needle]
            ).fetchall()[0][0]
            if hits:
                found.append(f"{schema}.{table}.{column}")
    return found


# Columns that say when or in which run something happened, not what the data is.
RUN_COLUMNS = {"source_status", "source_data_as_of", "seen_at", "run_id", "last_run_at", "last_success_at"}


def marts_fingerprint(path: Path) -> dict[str, tuple[int, str]]:
    """Every mart's row count and a hash of all its rows (run-time columns aside), so two
    warehouses built from the same data compare equal table by table."""
    found = {}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [
            t
            for (t,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            ).fetchall()
            if t != "source_freshness"
        ]
        for table in tables:
            columns = [
                c
                for (c,) in con.execute(
                    "select column_name from information_schema.columns where table_schema = 'marts' "
                    "and table_name = ? order by ordinal_position",
                    [table],
                ).fetchall()
                if c not in RUN_COLUMNS
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            found[table] = con.execute(
                f"select count(*), coalesce(md5(string_agg(r, '|' order by r)), '') "
                f"from (select row({listed})::varchar as r from marts.{table})"
            ).fetchone()
    return found


def duplicated_keys(path: Path) -> dict[str, int]:
    """Per raw table, how many primary keys (as dlt's stored schema declares them) occur more
    than once: a load repeated after a crash must merge, never append."""
    found = {}
    with duckdb.connect(str(path), read_only=True) as con:
        schemas = [
            s
            for (s,) in con.execute(
                "select distinct schema_name from duckdb_tables() where schema_name like 'raw\\_%' escape '\\' "
                "and table_name = '_dlt_version'"
            ).fetchall()
        ]
        for schema in schemas:
            stored = con.execute(
                f'select schema from {schema}."_dlt_version" order by inserted_at desc limit 1'
            ).fetchone()[0]
            for table, spec in json.loads(stored)["tables"].items():
                keys = [name for name, column in spec.get("columns", {}).items() if column.get("primary_key")]
                if not keys or table.startswith("_dlt"):
                    continue
                listed = ", ".join(f'"{k}"' for k in keys)
                repeated = con.execute(
                    f'select count(*) from (select {listed} from {schema}."{table}" group by all having count(*) > 1)'
                ).fetchone()[0]
                if repeated:
                    found[f"{schema}.{table}"] = repeated
    return found


def mart_tables(target: Path | Settings) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every mart's columns and rows (run-time columns and the freshness mart aside), numbers as
    floats, rows in a stable order, to hold two warehouses built from the same data side by side."""
    found = {}
    with published(target) as con:
        for table in con.tables("marts"):
            if table == "source_freshness":
                continue
            rows = con.records(f"select * from marts.{table}")
            columns = [c for c in con.columns if c not in RUN_COLUMNS]
            values = [tuple(_number(r[c]) for c in columns) for r in rows]
            found[table] = (columns, sorted(values, key=_order))
    return found


def mart_table_differences(left: dict, right: dict) -> list[str]:
    """Where two `mart_tables` disagree: tables, columns, row counts, then values (floats within
    1e-9 relative: the warehouses' float arithmetic differs in the last bits)."""
    problems = [f"table {t} only on one side" for t in sorted(left.keys() ^ right.keys())]
    for table in sorted(left.keys() & right.keys()):
        (left_columns, left_rows), (right_columns, right_rows) = left[table], right[table]
        if left_columns != right_columns:
            problems.append(f"{table}: columns {left_columns} != {right_columns}")
            continue
        if len(left_rows) != len(right_rows):
            problems.append(f"{table}: {len(left_rows)} rows != {len(right_rows)}")
            continue
        for a, b in zip(left_rows, right_rows, strict=True):
            for column, x, y in zip(left_columns, a, b, strict=True):
                if isinstance(x, float) and isinstance(y, float):
                    same = math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
                else:
                    same = x == y
                if not same:
                    problems.append(f"{table}.{column}: {x!r} != {y!r} in {a}")
    return problems


def _number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    return float(value)


def _order(row: tuple) -> tuple:
    """Sort key: floats rounded (so last-bit differences sort alike), None first."""
    return tuple((0, "") if v is None else (1, f"{v:.6g}" if isinstance(v, float) else repr(v)) for v in row)


def run_dbt_unit_tests(env: dict[str, str], target: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """`dbt test --select test_type:unit` of the project with `env` added to this environment (the
    profile's target and warehouse); the finished command and the unit tests' results."""
    done, results = run_dbt_tests(env, target, "test_type:unit")
    return done, [r for r in results if r["unique_id"].startswith("unit_test.")]


def run_dbt_tests(env: dict[str, str], target: Path, select: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """`dbt test --select <select>` of the project with `env` added to this environment (the
    profile's target and warehouse); the finished command and the tests' results."""
    from dora_pipeline.defs.warehouse.project import dbt_executable
    from dora_pipeline.settings import DBT_PROJECT_DIR
    from dora_pipeline.sources.registry import SOURCES

    done = subprocess.run(
        [
            dbt_executable(),
            "test",
            "--select",
            select,
            "--target-path",
            str(target),
            "--vars",
            json.dumps({"dora_sources": list(SOURCES)}),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    results_file = target / "run_results.json"
    return done, json.loads(results_file.read_text())["results"] if results_file.exists() else []


def extraction_windows(settings: Settings, run_id: str) -> dict[str, tuple[float, float]]:
    """(start, end) of each source's extraction in a refresh, in epoch seconds, as the refresh
    recorded them (`dora_ops.source_runs` of the published warehouse)."""
    with warehouse.connect(settings, read_only=True) as con:
        rows = con.execute(
            "select source, started_at, finished_at from dora_ops.source_runs where run_id = ?", [run_id]
        )
    return {source: (started.timestamp(), finished.timestamp()) for source, started, finished in rows}


def declared_primary_keys() -> dict[str, list[str]]:
    """Each raw table's primary key as its source's YAML declares it (`meta.primary_key`), by
    `source.table`."""
    keys = {}
    for path in (DBT_PROJECT_DIR / "models" / "staging").glob("*/_*__sources.yml"):
        for source in yaml.safe_load(path.read_text())["sources"]:
            for table in source["tables"]:
                key = table.get("config", {}).get("meta", {}).get("primary_key")
                if key and source["name"] in enabled_sources():
                    keys[f"{source['name']}.{table['name']}"] = key
    return keys


def records_loaded_since(path: Path, since) -> dict[str, int]:
    """Rows of each raw table that sets the horizon whose load finished after `since`."""
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            relation: con.execute(
                f"select count(*) from raw_{relation} as loaded "
                f"inner join raw_{relation.split('.')[0]}._dlt_loads as loads on loads.load_id = loaded._dlt_load_id "
                "where loads.inserted_at > ?",
                [since],
            ).fetchone()[0]
            for relation in declared_primary_keys()
        }


def build_horizon(path: Path, model: str = "int_refresh_horizon") -> dict:
    """The one row of a horizon model (`int_refresh_horizon`, `int_refresh_loads`) in a build file."""
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute(f"select * from intermediate.{model}")
        names = [d[0] for d in cursor.description]
        return dict(zip(names, cursor.fetchall()[0], strict=True))
