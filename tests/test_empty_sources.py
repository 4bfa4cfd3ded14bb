"""Every resource of every source can be empty: a first run before anything happened, a new
project, a tool a team has not adopted yet. An empty resource must be a normal, typed, empty
table, and the refresh must build and publish the warehouse on it."""

from __future__ import annotations

from datetime import timedelta

import duckdb
from warehouse_checks import differences

from dora_pipeline.refresh import run_refresh
from dora_pipeline.sandbox.world import DEFAULT_AS_OF
from dora_pipeline.sources.registry import SOURCES

# Tables that describe the configured tools rather than activity: they hold the configured
# pipelines, projects and jobs even before anything has happened.
CONFIGURATION_TABLES = {
    "gearset.pipelines",
    "gearset.environments",
    "gitlab.projects",
    "gitlab.environments",
    "gearset_automation.ci_job_status_history",
}
# GitLab's and GitClear's report series answer with a value per day or week, zero when nothing happened.
SERIES_TABLES = {"gitlab.dora_metrics": "value", "gitclear.report_points": "value"}


def _raw_tables(path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where schema_name like 'raw\\_%' escape '\\' and schema_name not like '%\\_staging' escape '\\' "
            "and not starts_with(table_name, '_dlt')"
        ).fetchall()
        counts = {}
        for schema, table in tables:
            counts[f"{schema.removeprefix('raw_')}.{table}"] = con.execute(
                f'select count(*) from "{schema}"."{table}"'
            ).fetchall()[0][0]
        return counts


def _declared_tables() -> set[str]:
    return {
        f"{name}.{resource.table_name}"
        for name, spec in SOURCES.items()
        for resource in spec.describe().selected_resources.values()
    }


def test_every_resource_empty_on_a_first_and_a_later_run(settings, sandbox, point_at_sandbox):
    before_anything = sandbox.world.start - timedelta(days=2)
    for as_of in (before_anything, before_anything + timedelta(days=1)):  # a first, then a later run
        sandbox.set_as_of(as_of)
        run_refresh(settings)  # raises when any step fails

        raw = _raw_tables(settings.duckdb_path)
        assert set(raw) == _declared_tables()
        activity = {t: n for t, n in raw.items() if t not in CONFIGURATION_TABLES | SERIES_TABLES.keys()}
        assert activity and set(activity.values()) == {0}
        with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
            for table, column in SERIES_TABLES.items():
                schema, name = table.split(".")
                total = con.execute(f"select coalesce(sum({column}), 0) from raw_{schema}.{name}").fetchall()[0][0]
                assert total == 0, table
            for mart in ("deployments", "changes", "failures", "dora_metrics_daily", "performance_levels"):
                assert con.execute(f"select count(*) from marts.{mart}").fetchall()[0][0] == 0, mart
        assert differences(settings.duckdb_path, sandbox.world.view(as_of)) == []

    # The tools are adopted: the empty runs moved no cursor past what now arrives.
    sandbox.set_as_of(DEFAULT_AS_OF)
    run_refresh(settings)
    assert differences(settings.duckdb_path, sandbox.world.view(DEFAULT_AS_OF)) == []
