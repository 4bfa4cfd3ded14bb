"""What the last build saw of each raw record (`int_refresh_records`, macros/refresh_records.sql)
is keyed on the primary key the sources' YAML declares: it must be the key dlt merges the raw
table on, or two records would share a row (or one record take two), and every raw table whose
records set the horizon must have one. The counting itself is exercised in
test_incremental_build.py."""

from __future__ import annotations

import json
import re

import duckdb
from warehouse_checks import declared_primary_keys

from dora_pipeline.settings import DBT_PROJECT_DIR


def test_each_raw_tables_declared_key_is_the_one_dlt_merges_on(reference_refresh):
    declared = declared_primary_keys()
    merged_on = {}
    with duckdb.connect(str(reference_refresh.settings.duckdb_path), read_only=True) as con:
        for source in {relation.split(".")[0] for relation in declared}:
            (schema,) = con.execute(
                f"select schema from raw_{source}._dlt_version order by inserted_at desc limit 1"
            ).fetchone()
            for table, definition in json.loads(schema)["tables"].items():
                if f"{source}.{table}" in declared:
                    assert definition.get("write_disposition") == "merge", (source, table)
                    merged_on[f"{source}.{table}"] = [
                        name for name, column in definition["columns"].items() if column.get("primary_key")
                    ]
    assert merged_on == declared


def test_every_raw_table_that_sets_the_horizon_declares_its_key():
    model = (DBT_PROJECT_DIR / "models" / "intermediate" / "int_refresh_loads.sql").read_text()
    compared = {f"{source}.{table}" for source, table in re.findall(r"changed_records\('(\w+)', '(\w+)'\)", model)}
    assert len(compared) == 10
    assert compared == set(declared_primary_keys())
