"""Memory and time of one source's first load at a given size, with dlt's default insert
statements and with Parquet load packages (what the refresh uses).

    python bench/load_format.py [--copies 10] [--source gearset]

Each format runs in its own process (peak RSS is per process), against its own sandbox of
`--copies` demo organisations; the sandbox's share of the memory is measured alone first, as
the floor beside both figures.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import click


def _load(copies: int, source: str, file_format: str) -> dict:
    import dlt

    from dora_pipeline.sandbox.server import Sandbox
    from dora_pipeline.sandbox.world import scaled_services
    from dora_pipeline.settings import Settings  # noqa: F401 - switches telemetry off
    from dora_pipeline.sources.registry import SOURCES

    with tempfile.TemporaryDirectory() as tmp, Sandbox.start(services=scaled_services(copies)) as sandbox:
        os.environ.update(sandbox.source_environment())
        started = time.perf_counter()
        rows = 0
        if file_format != "none":
            pipeline = dlt.pipeline(
                f"bench_{source}",
                destination=dlt.destinations.duckdb(f"{tmp}/bench.duckdb"),
                dataset_name=f"raw_{source}",
                pipelines_dir=f"{tmp}/dlt",
            )
            options = {} if file_format == "insert_values" else {"loader_file_format": file_format}
            pipeline.run(SOURCES[source].build(), **options)
            rows = sum(
                count
                for table, count in pipeline.last_trace.last_normalize_info.row_counts.items()
                if not table.startswith("_dlt")
            )
        return {
            "format": file_format,
            "seconds": time.perf_counter() - started,
            "rows": rows,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


@click.command()
@click.option("--copies", default=10, show_default=True)
@click.option("--source", default="gearset", show_default=True)
@click.option("--child", default=None, hidden=True)
def main(copies: int, source: str, child: str | None) -> None:
    if child:
        print(json.dumps(_load(copies, source, child)))
        return
    print(f"{source}, {copies} demo organisations")
    print(f"{'load packages':<22}{'seconds':>9}{'rows':>10}{'peak RSS MB':>13}")
    for file_format in ("none", "insert_values", "parquet"):
        done = subprocess.run(
            [sys.executable, __file__, "--copies", str(copies), "--source", source, "--child", file_format],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        label = "(sandbox alone)" if file_format == "none" else file_format
        print(f"{label:<22}{result['seconds']:>9.1f}{result['rows']:>10}{result['peak_rss_mb']:>13.0f}")


if __name__ == "__main__":
    main()
