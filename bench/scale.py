"""A first refresh at growing sizes: per-stage time, requests per source, rows, peak memory and
warehouse size, with a lower bound for the dbt stage measured in the same run.

    python bench/scale.py [--copies 1,3,10]

Each size runs in its own process (peak RSS is per process and its children, dbt included)
against a sandbox of `--copies` demo organisations (8 services and about 3,400 visible
deployments each; the issue's target of 1M deployments is about 300 copies). The dbt bound is
one hand-written DuckDB query computing the daily deployment count, median lead time, failed
deployments and median recovery time per service, environment and day from the unified
intermediate tables dbt built: what the last aggregation alone costs, so the ratio shows what
the rest of the project's models add.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

DAILY_METRICS = """
with deployments as (
    select service, environment, deployed_at::date as day, count(*) as deployments
    from intermediate.int_deployments where is_counted group by all
), leads as (
    select service, environment, deployed_at::date as day, median(lead_time_seconds) as lead_time
    from intermediate.int_changes where lead_time_exclusion_reason is null group by all
), failures as (
    select service, environment, caused_by_deployed_at::date as day,
        count(distinct caused_by_deployment_id) as failed, median(recovery_time_seconds) as recovery
    from intermediate.int_failures where is_qualifying group by all
)
select count(*), sum(deployments), sum(failed)
from deployments
left join leads using (service, environment, day)
left join failures using (service, environment, day)
"""


def _refresh(copies: int) -> dict:
    import duckdb
    from dagster import DagsterInstance

    from dora_pipeline.refresh import run_refresh
    from dora_pipeline.sandbox.server import Sandbox
    from dora_pipeline.sandbox.world import scaled_services
    from dora_pipeline.settings import Settings

    with tempfile.TemporaryDirectory() as tmp, Sandbox.start(services=scaled_services(copies)) as sandbox:
        os.environ.update(sandbox.source_environment())
        os.environ["DORA__SERVICE_TEAMS"] = json.dumps(sandbox.service_teams())
        os.environ["DAGSTER_HOME"] = str(Path(tmp) / "dagster")
        settings = Settings.from_path(Path(tmp) / "dora.duckdb")
        started = time.perf_counter()
        outcome = run_refresh(settings)
        total = time.perf_counter() - started
        with DagsterInstance.get() as instance:
            steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(outcome.run_id)}
        with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
            rows = {
                table: con.execute(f"select count(*) from marts.{table}").fetchone()[0]
                for table in ("deployments", "changes", "failures")
            }
            bound_started = time.perf_counter()
            con.execute(DAILY_METRICS).fetchall()
            bound = time.perf_counter() - bound_started
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return {
            "copies": copies,
            "total": total,
            "steps": steps,
            "requests": {name: len(state.requests) for name, state in sandbox.states.items()},
            "rows": rows,
            "dbt_bound": bound,
            "peak_rss_mb": max(own, children),
            "warehouse_mb": settings.duckdb_path.stat().st_size / 1e6,
        }


@click.command()
@click.option("--copies", default="1,3,10", show_default=True, help="Sizes, in demo organisations.")
@click.option("--child", type=int, default=None, hidden=True)
def main(copies: str, child: int | None) -> None:
    if child is not None:
        print(json.dumps(_refresh(child)))
        return
    for size in (int(c) for c in copies.split(",")):
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(size)], capture_output=True, text=True, check=True
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows, steps = result["rows"], result["steps"]
        print(
            f"\n{size} demo organisations: {rows['deployments']:,} deployments, {rows['changes']:,} changes, "
            f"{rows['failures']:,} failures; refresh {result['total']:.1f} s, peak RSS "
            f"{result['peak_rss_mb']:.0f} MB, warehouse {result['warehouse_mb']:.0f} MB"
        )
        requests = result["requests"]
        print("  requests: " + ", ".join(f"{name} {count:,}" for name, count in requests.items()))
        for step, seconds in steps.items():
            print(f"  {step:<28}{seconds:7.1f} s")
        dbt = steps.get("dora_dbt_models", 0.0)
        print(
            f"  dbt lower bound (one query over the intermediate tables): {result['dbt_bound']:.2f} s, "
            f"dbt stage {dbt / max(result['dbt_bound'], 1e-6):.0f}x it"
        )


if __name__ == "__main__":
    main()
