"""The same pipeline on a real PostgreSQL server: the demo command, an incremental refresh with a
reader querying throughout, and a re-run, held against the simulator's ground truth and, value by
value, against the DuckDB warehouse built from the same organisation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from warehouse_checks import (
    SNAPSHOT_TABLES,
    differences,
    extraction_windows,
    mart_table_differences,
    mart_tables,
    published,
    run_dbt_unit_tests,
)

from dora_pipeline.refresh import RefreshOutcome, run_refresh
from dora_pipeline.sandbox.server import Sandbox
from dora_pipeline.sandbox.world import DEFAULT_AS_OF, build_world
from dora_pipeline.settings import Settings

DATABASE = "dora_e2e"
DAGSTER_DATABASE = "dagster_e2e"
DAGSTER_YAML = Path(__file__).parent.parent / "docs" / "dagster-postgres.yaml"
FIRST_AS_OF = DEFAULT_AS_OF - timedelta(days=3)
GRAINS = ("day", "week", "month")
LEVELS = ("service_environment", "team", "overall")
# One statement, one snapshot: two marts a reader would join.
READ = "select (select count(*) from marts.dora_metrics_daily), (select count(*) from marts.deployments)"


@dataclass
class PostgresRuns:
    settings: Settings
    password: str
    demo: subprocess.CompletedProcess
    first_differences: dict[tuple, list[str]]
    first_marts: dict
    incremental: RefreshOutcome
    gitlab_deployment_params: list[dict]
    # (start, end) of each source's extraction in the incremental refresh
    extraction_steps: dict[str, tuple[float, float]] = field(default_factory=dict)
    reads: list[tuple] = field(default_factory=list)
    read_errors: list[str] = field(default_factory=list)
    marts: dict = field(default_factory=dict)
    raw_counts: dict = field(default_factory=dict)
    rerun_marts: dict = field(default_factory=dict)
    rerun_raw_counts: dict = field(default_factory=dict)


def raw_counts(settings: Settings) -> dict[str, tuple[int, int]]:
    """Rows and distinct dlt row ids of every raw table: a re-run must neither add nor lose one."""
    counts = {}
    with published(settings) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_schema like 'raw%' "
            # dlt's merge staging (`raw_<source>_staging`) is scratch space, emptied by each load
            "and table_schema not like '%staging' and table_name not like '_dlt%' and table_type = 'BASE TABLE'"
        )
        for schema, table in tables:
            if f"{schema}.{table}" in SNAPSHOT_TABLES:  # appended at every refresh by design
                continue
            counts[f"{schema}.{table}"] = tuple(
                con.execute(f'select count(*), count(distinct _dlt_id) from {schema}."{table}"')[0]
            )
    return counts


def _reader(settings: Settings, stop: threading.Event, runs: PostgresRuns) -> None:
    with published(settings) as con:
        while not stop.is_set():
            try:
                runs.reads.append(tuple(con.execute(READ)[0]))
            except Exception as exc:  # noqa: BLE001 - any failure of a reader is what the test looks for
                runs.read_errors.append(repr(exc))


@pytest.fixture(scope="module")
def postgres_runs(postgres_cluster, tmp_path_factory) -> PostgresRuns:
    root = tmp_path_factory.mktemp("postgres")
    postgres_cluster.create_database(DATABASE)
    postgres_cluster.create_database(DAGSTER_DATABASE)
    # Dagster as a deployed service keeps its runs and events in PostgreSQL: the documented dagster.yaml.
    (root / "dagster").mkdir()
    (root / "dagster" / "dagster.yaml").write_text(DAGSTER_YAML.read_text())
    env = {
        **postgres_cluster.environment(DATABASE),
        "DORA__WAREHOUSE": "postgres",
        "DORA_DUCKDB_PATH": str(root / "state" / "dora.duckdb"),
        "DAGSTER_HOME": str(root / "dagster"),
        "DAGSTER_PG_HOST": postgres_cluster.host,
        "DAGSTER_PG_PORT": str(postgres_cluster.port),
        "DAGSTER_PG_DB": DAGSTER_DATABASE,
        "DAGSTER_PG_USERNAME": "dora",
        "DAGSTER_PG_PASSWORD": postgres_cluster.password,
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DORA__", "DESTINATION__"))}
    # 1. The demo, as a user runs it, three days before the default moment.
    demo = subprocess.run(
        [str(Path(sys.executable).parent / "dora-pipeline"), "demo", "--as-of", FIRST_AS_OF.isoformat()],
        env=clean | env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if demo.returncode != 0:
        pytest.fail(f"dora-pipeline demo on PostgreSQL failed: {demo.stderr[-3000:]}")
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("SOURCES__", "DORA__", "DESTINATION__")):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        settings = Settings.from_env()
        first_view = build_world().view(FIRST_AS_OF)
        first_differences = {
            (grain, level): differences(settings, first_view, grain=grain, level=level)
            for grain in GRAINS
            for level in LEVELS
        }
        first_marts = mart_tables(settings)
        # 2. Three days later: an incremental refresh, a reader querying the marts all along.
        with Sandbox.start(as_of=DEFAULT_AS_OF) as box:
            for name, value in {
                **box.source_environment(),
                "DORA__SERVICE_TEAMS": json.dumps(box.service_teams()),
            }.items():
                patch.setenv(name, value)
            stop = threading.Event()
            runs = PostgresRuns(settings, postgres_cluster.password, demo, first_differences, first_marts, None, [])
            reader = threading.Thread(target=_reader, args=(settings, stop, runs))
            reader.start()
            try:
                runs.incremental = run_refresh(settings)
            finally:
                stop.set()
                reader.join()
            runs.reads.append(None)  # the refresh has returned: reads after this see the new set
            _reader_once(settings, runs)
            runs.extraction_steps = extraction_windows(settings, runs.incremental.run_id)
            runs.gitlab_deployment_params = [
                r["params"] for r in box.requests("gitlab") if r["path"].endswith("/deployments")
            ]
            runs.marts, runs.raw_counts = mart_tables(settings), raw_counts(settings)
            # 3. Again, with nothing new.
            run_refresh(settings)
            runs.rerun_marts, runs.rerun_raw_counts = mart_tables(settings), raw_counts(settings)
    return runs


def _reader_once(settings: Settings, runs: PostgresRuns) -> None:
    with published(settings) as con:
        runs.reads.append(tuple(con.execute(READ)[0]))


def test_postgres_demo_builds_marts_equal_to_ground_truth(postgres_runs):
    demo = postgres_runs.demo
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "assets materialised" in demo.stdout
    assert f"warehouse: postgresql://dora@127.0.0.1:{postgres_runs.settings.postgres.port}/{DATABASE}" in demo.stdout
    assert postgres_runs.password not in demo.stdout + demo.stderr
    assert {k: v for k, v in postgres_runs.first_differences.items() if v} == {}


def test_postgres_incremental_refresh_equals_ground_truth_and_duckdb_value_by_value(postgres_runs, reference_refresh):
    settings = postgres_runs.settings
    assert not postgres_runs.incremental.failed_sources
    for grain in GRAINS:
        for level in LEVELS:
            assert differences(settings, reference_refresh.world, grain=grain, level=level) == [], (grain, level)
    # The DuckDB reference refresh observed the same organisation at the same moment.
    assert mart_table_differences(postgres_runs.marts, mart_tables(reference_refresh.settings.duckdb_path)) == []
    # GitLab was asked only for what changed since the cursor dlt kept from the demo's run.
    assert postgres_runs.gitlab_deployment_params
    assert all("updated_after" in params for params in postgres_runs.gitlab_deployment_params)
    # The Parquet exports are the published marts.
    current = settings.exports_dir / "current"
    for table, (_, rows) in postgres_runs.marts.items():
        assert pq.read_metadata(current / f"{table}.parquet").num_rows == len(rows), table
    assert settings.report_path.stat().st_size > 1_000_000


def test_the_sources_are_extracted_side_by_side_on_postgres(postgres_runs):
    """On a server warehouse too the five extractions overlap in time, each writing through its own
    connections (the incremental refresh above, equal to DuckDB's marts, ran so)."""
    windows = postgres_runs.extraction_steps
    assert len(windows) == 5
    overlapping = [
        (a, b)
        for a in windows
        for b in windows
        if a < b and max(windows[a][0], windows[b][0]) < min(windows[a][1], windows[b][1])
    ]
    assert overlapping, windows


def test_postgres_rerun_without_new_data_changes_nothing(postgres_runs):
    assert postgres_runs.rerun_marts == postgres_runs.marts
    assert postgres_runs.rerun_raw_counts == postgres_runs.raw_counts
    assert all(rows == distinct for rows, distinct in postgres_runs.raw_counts.values())


def test_a_reader_during_a_refresh_is_never_refused_and_never_sees_a_half_built_set(postgres_runs):
    assert postgres_runs.read_errors == []
    done = postgres_runs.reads.index(None)
    during, after = postgres_runs.reads[:done], postgres_runs.reads[done + 1 :]
    first = (len(postgres_runs.first_marts["dora_metrics_daily"][1]), len(postgres_runs.first_marts["deployments"][1]))
    final = (len(postgres_runs.marts["dora_metrics_daily"][1]), len(postgres_runs.marts["deployments"][1]))
    assert first != final
    assert len(during) > 20  # the reader kept querying through the refresh
    assert set(during) <= {first, final}  # the old set or the new one, never a mix
    assert after == [final]


def test_dagster_keeps_its_runs_in_postgres_with_the_documented_dagster_yaml(postgres_runs, postgres_cluster):
    con = postgres_cluster.connect(DAGSTER_DATABASE)
    try:
        with con.cursor() as cursor:
            cursor.execute("select status, count(*) from runs group by status")
            statuses = dict(cursor.fetchall())
            cursor.execute("select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'")
            materializations = cursor.fetchone()[0]
    finally:
        con.close()
    assert statuses == {"SUCCESS": 3}  # the demo, the incremental refresh and the re-run
    assert materializations >= 3 * 90
    assert not any((postgres_runs.settings.dagster_home / "history").glob("*"))


def test_the_postgres_password_reaches_no_log_file_or_table(postgres_runs, postgres_cluster):
    settings, password = postgres_runs.settings, postgres_runs.password
    leaked = [
        str(path)
        for path in settings.data_dir.parent.rglob("*")
        if path.is_file() and password.encode() in path.read_bytes()
    ]
    assert leaked == []
    found = []
    for database in (DATABASE, DAGSTER_DATABASE):
        con = postgres_cluster.connect(database)
        try:
            with con.cursor() as cursor:
                cursor.execute(
                    "select table_schema, table_name, column_name from information_schema.columns "
                    "where data_type in ('text', 'character varying', 'jsonb') "
                    "and table_schema not in ('pg_catalog', 'information_schema')"
                )
                for schema, table, column in cursor.fetchall():
                    cursor.execute(
                        f'select count(*) from "{schema}"."{table}" where "{column}"::text like %s', [f"%{password}%"]
                    )
                    if cursor.fetchone()[0]:
                        found.append(f"{database}.{schema}.{table}.{column}")
        finally:
            con.close()
    assert found == []


@pytest.mark.parametrize(
    ("setting", "command", "says"),
    [
        ({"DORA__WAREHOUSE": "oracle"}, "summary", "dora.warehouse is 'oracle'; it must be one of duckdb, postgres"),
        ({"DORA__WAREHOUSE": "postgres"}, "summary", "the PostgreSQL warehouse is missing"),
        ({"DORA__WAREHOUSE": "postgres", "WRONG_PASSWORD": "1"}, "demo", "password authentication failed"),
        ({"DORA__WAREHOUSE": "postgres", "WRONG_PASSWORD": "1"}, "summary", "password authentication failed"),
    ],
)
def test_a_misconfigured_warehouse_fails_in_one_line_without_the_password(
    postgres_cluster, tmp_path, setting, command, says
):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DORA__", "DESTINATION__"))}
    env |= {"DORA_DUCKDB_PATH": str(tmp_path / "dora.duckdb"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    env |= {k: v for k, v in setting.items() if k != "WRONG_PASSWORD"}
    wrong = "not-" + postgres_cluster.password
    if "WRONG_PASSWORD" in setting:
        env |= postgres_cluster.environment(DATABASE) | {"DESTINATION__POSTGRES__CREDENTIALS__PASSWORD": wrong}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dora-pipeline"), command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert len(errors) == 2 and says in errors[0], done.stderr[-2000:]
    assert wrong not in done.stdout + done.stderr and postgres_cluster.password not in done.stderr


def test_every_dbt_unit_test_passes_on_postgres(postgres_runs, tmp_path):
    """The metric logic's unit tests (tests/test_metric_logic.py runs them on DuckDB) hold on
    PostgreSQL too: the portable macros mean the same thing on both."""
    from dora_pipeline.warehouse import dbt_environment

    # The unit tests read their models' columns from the published schemas.
    env = {**dbt_environment(postgres_runs.settings), "DORA_DBT_SCHEMA_PREFIX": ""}
    done, unit_tests = run_dbt_unit_tests(env, tmp_path / "target")
    assert done.returncode == 0, done.stdout[-3000:]
    assert postgres_runs.password not in done.stdout + done.stderr
    assert len(unit_tests) >= 6 and all(r["status"] == "pass" for r in unit_tests), unit_tests
