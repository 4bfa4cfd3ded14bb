"""Requests, rows and wall time of each source's first and repeated run against the sandbox.

    python bench/source_runs.py

Each source loads into its own schema of a fresh DuckDB file through a real dlt pipeline, twice,
with no new data in between; the second run shows what incremental extraction re-reads.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import dlt
import duckdb

from dora_pipeline.sandbox.server import Sandbox
from dora_pipeline.settings import Settings  # noqa: F401 - switches telemetry off
from dora_pipeline.sources.registry import SOURCES

EMULATOR_OF = {"gearset_automation": "gearset"}


def rows_in(path: Path, schema: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "select table_name from duckdb_tables() where schema_name = ? and not starts_with(table_name, '_dlt')",
            [schema],
        ).fetchall()
        return sum(con.execute(f'select count(*) from {schema}."{t}"').fetchall()[0][0] for (t,) in tables)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Sandbox.start() as sandbox:
        os.environ.update(sandbox.source_environment())
        warehouse = Path(tmp) / "bench.duckdb"
        print(f"{'source':<20}{'run':>6}{'requests':>10}{'rows':>9}{'seconds':>9}")
        for name, spec in SOURCES.items():
            pipeline = dlt.pipeline(
                f"bench_{name}",
                destination=dlt.destinations.duckdb(str(warehouse)),
                dataset_name=f"raw_{name}",
                pipelines_dir=str(Path(tmp) / "dlt"),
            )
            log = sandbox.requests(EMULATOR_OF.get(name, name))
            for run in ("first", "repeat"):
                before, started = len(log), time.perf_counter()
                pipeline.run(spec.build())
                elapsed = time.perf_counter() - started
                print(f"{name:<20}{run:>6}{len(log) - before:>10}{rows_in(warehouse, f'raw_{name}'):>9}{elapsed:>9.1f}")


if __name__ == "__main__":
    main()
