"""What dbt itself costs for this project's shape of graph, whatever the data: a lower bound of
every scheduled refresh's dbt step.

It reads the real project's manifest for its node mix (models by materialization, data tests,
seeds), writes a throwaway dbt project with the same mix over a three-row seed (every model a
`select` of it, every test a `unique`, `not_null` or `accepted_values` of a column), builds it
once, then builds it again `--repeat` times with nothing new, on DuckDB with the same threads.
Beside it, the same project's `dbt build` with no node selected: dbt's start-up alone.

    python bench/dbt_floor.py [--repeat 3]

The incremental models of the throwaway project use dbt-duckdb's `delete+insert`, which runs
fewer statements than this project's `horizon` strategy: the figure is a floor, not an estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from dora_pipeline.defs.warehouse.project import dbt_executable, prepared_project
from dora_pipeline.sources.registry import SOURCES

COLUMNS = 6  # columns per model to hang tests on: c0 .. c5


def node_mix() -> tuple[Counter, int, int]:
    """The real project's models by materialization, data tests and seeds (every source enabled)."""
    manifest = json.loads(Path(prepared_project(list(SOURCES)).manifest_path).read_text())
    nodes = manifest["nodes"].values()
    models = Counter(n["config"]["materialized"] for n in nodes if n["resource_type"] == "model")
    tests = sum(1 for n in nodes if n["resource_type"] == "test")
    seeds = sum(1 for n in nodes if n["resource_type"] == "seed")
    return models, tests, seeds


def write_project(folder: Path, models: Counter, tests: int, seeds: int, threads: int) -> None:
    (folder / "models").mkdir()
    (folder / "seeds").mkdir()
    (folder / "dbt_project.yml").write_text(
        "name: floor\nversion: '1.0.0'\nconfig-version: 2\nprofile: floor\n"
        "flags:\n  send_anonymous_usage_stats: false\n  partial_parse: true\n"
    )
    (folder / "profiles.yml").write_text(
        f"floor:\n  target: local\n  outputs:\n    local:\n      type: duckdb\n"
        f"      path: {json.dumps(str(folder / 'floor.duckdb'))}\n      threads: {threads}\n"
    )
    for s in range(seeds):
        (folder / "seeds" / f"seed_{s}.csv").write_text("id,day\n1,2026-01-01\n2,2026-01-02\n3,2026-01-03\n")
    columns = ", ".join(f"id as c{k}" for k in range(COLUMNS))
    names = []
    for materialized, count in sorted(models.items()):
        for i in range(count):
            name = f"{materialized}_{i}"
            names.append(name)
            config = f"materialized='{materialized}'"
            where = ""
            if materialized == "incremental":
                config += ", unique_key='id', incremental_strategy='delete+insert'"
                where = "\n{% if is_incremental() %}where day > (select max(day) from {{ this }}){% endif %}"
            (folder / "models" / f"{name}.sql").write_text(
                f"{{{{ config({config}) }}}}\nselect id, day, {columns} from {{{{ ref('seed_0') }}}}{where}\n"
            )
    # tests spread over the models' columns: each (model, column) takes unique, then not_null, then
    # accepted_values, so every test is a node of its own
    kinds = ("unique", "not_null", "accepted_values")
    slots = [(name, k, kind) for kind in kinds for k in range(COLUMNS) for name in names][:tests]
    by_model: dict[str, dict[int, list[str]]] = {}
    for name, k, kind in slots:
        by_model.setdefault(name, {}).setdefault(k, []).append(kind)
    lines = ["version: 2", "models:"]
    for name, columns_tests in by_model.items():
        lines += [f"  - name: {name}", "    columns:"]
        for k, kinds_here in sorted(columns_tests.items()):
            lines += [f"      - name: c{k}", "        data_tests:"]
            for kind in kinds_here:
                if kind == "accepted_values":
                    lines += [
                        "          - accepted_values:",
                        "              values: [1, 2, 3]",
                        "              quote: false",
                    ]
                else:
                    lines.append(f"          - {kind}")
    (folder / "models" / "_models.yml").write_text("\n".join(lines) + "\n")


def timed_build(folder: Path, *args: str) -> tuple[float, float | None, int]:
    """Wall time from dbt's start, dbt's own elapsed time, and the nodes it ran."""
    environment = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    started = time.perf_counter()
    done = subprocess.run(
        [dbt_executable(), "build", "--quiet", "--profiles-dir", str(folder), *args],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dbt failed in {folder}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    results_path = folder / "target" / "run_results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"results": []}
    return wall, results.get("elapsed_time"), len(results["results"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="builds with nothing new to time (default 3)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("DORA_DBT_THREADS", "2")))
    options = parser.parse_args()
    models, tests, seeds = node_mix()
    print(
        f"this project's graph: {sum(models.values())} models ("
        + ", ".join(f"{count} {kind}" for kind, count in sorted(models.items()))
        + f"), {tests} data tests, {seeds} seed(s); dbt threads {options.threads}"
    )
    with tempfile.TemporaryDirectory(prefix="dbt-floor-") as tmp:
        folder = Path(tmp)
        write_project(folder, models, tests, seeds, options.threads)
        first_wall, _, nodes = timed_build(folder)
        print(f"  the same graph over a three-row seed: {nodes} nodes, first build {first_wall:.1f} s")
        runs = [timed_build(folder) for _ in range(options.repeat)]
        walls = [wall for wall, _, _ in runs]
        owns = [own for _, own, _ in runs if own is not None]
        print(
            f"  built again with nothing new ({options.repeat}x): {statistics.median(walls):.1f} s from dbt's start "
            f"(range {min(walls):.1f}-{max(walls):.1f}), {statistics.median(owns):.1f} s of dbt's own elapsed time"
        )
        empty = [timed_build(folder, "--select", "nothing_is_named_this")[0] for _ in range(options.repeat)]
        print(f"  `dbt build` selecting no node: {statistics.median(empty):.1f} s (dbt's start-up alone)")


if __name__ == "__main__":
    main()
