"""Ten consecutive refreshes of one warehouse through the sandbox's seeded fault profile, each held
against a fault-free refresh of the same data, mart by mart.

    python bench/fault_soak.py [--refreshes 10] [--rate 0.3] [--fresh]

Consecutive refreshes are what a schedule runs: the first reads everything, the others what their
cursors and look-backs ask for. With `--fresh` every refresh starts from an empty warehouse, so
each meets the faults on every request of a first run.

The fault-free refresh is also the lower bound: beside each faulted refresh's time it prints the
clean one's, so what the faults cost (retries, timeouts of hung answers) is visible.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from warehouse_checks import marts_fingerprint  # noqa: E402

from dora_pipeline.refresh import run_refresh  # noqa: E402
from dora_pipeline.sandbox.fault_profile import FaultProfile  # noqa: E402
from dora_pipeline.sandbox.server import Sandbox  # noqa: E402
from dora_pipeline.settings import Settings  # noqa: E402
from dora_pipeline.sources.registry import SOURCES, setting_name  # noqa: E402

PATIENT_CLIENT = {"request_timeout_seconds": "1", "retry_backoff_seconds": "0.01", "max_attempts": "12"}
KINDS = "rate_limit+rate_limit_without_retry_after+server_error+slow+hang:0.3+reset+truncate"


@click.command()
@click.option("--refreshes", default=10, show_default=True)
@click.option("--rate", default=0.3, show_default=True)
@click.option("--fresh", is_flag=True, help="Every refresh from an empty warehouse.")
def main(refreshes: int, rate: float, fresh: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, Sandbox.start() as sandbox:
        os.environ.update(sandbox.source_environment())
        os.environ["DORA__SERVICE_TEAMS"] = json.dumps(sandbox.service_teams())
        os.environ["DAGSTER_HOME"] = str(Path(tmp) / "dagster")
        started = time.perf_counter()
        run_refresh(Settings.from_path(Path(tmp) / "clean" / "dora.duckdb"))
        clean_seconds = time.perf_counter() - started
        expected = marts_fingerprint(Path(tmp) / "clean" / "dora.duckdb")
        for source in SOURCES:
            for key, value in PATIENT_CLIENT.items():
                os.environ[setting_name(source, key)] = value
        faulted = Settings.from_path(Path(tmp) / "faulted" / "dora.duckdb")
        print(f"fault-free first refresh: {clean_seconds:.1f} s, {len(expected)} marts")
        print(f"{'refresh':>7}{'requests':>10}{'faults':>8}{'share':>7}{'seconds':>9}  identical  faults by kind")
        identical = 0
        for refresh in range(1, refreshes + 1):
            sandbox.set_fault_profile(
                FaultProfile.parse(f"rate={rate},seed={refresh},slow_seconds=0.1,hang_seconds=3,kinds={KINDS}")
            )
            started = time.perf_counter()
            if fresh:
                faulted = Settings.from_path(Path(tmp) / f"faulted-{refresh}" / "dora.duckdb")
            outcome = run_refresh(faulted)
            seconds = time.perf_counter() - started
            injected = sandbox.faults_injected()
            requests = sandbox.requests_received()
            found = marts_fingerprint(faulted.duckdb_path)
            same = found == expected and not outcome.failed_sources and not outcome.rejected_records
            identical += same
            faults = sum(injected.values())
            print(
                f"{refresh:>7}{requests:>10}{faults:>8}{faults / requests:>7.0%}{seconds:>9.1f}  "
                f"{'yes' if same else 'NO':<9}  {injected}"
            )
        print(f"{identical}/{refreshes} refreshes under faults ended identical to the fault-free refresh")


if __name__ == "__main__":
    main()
