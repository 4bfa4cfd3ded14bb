"""A first refresh and then an incremental one (one new day) at growing sizes: per stage time,
requests and rows per source, requests per record, peak memory and warehouse size, each beside a
lower bound measured in the same run on the same data.

    python bench/scale.py [--sizes 10,30,100] [--shape target|copies] [--gearset-poll-seconds 5]

Sizes are percentages of the issue's target organisation. `--shape target` (the default) is its
shape: 500 services at 100 %, each with 540 days of history, 10 merges a weekday and 40 % of its
production releases causing a failure, which makes about 1M deployments, 2M changes and 50k
failures; smaller sizes have fewer such services. `--shape copies` is copies of the demo
organisation instead (300 at 100 %: 2,400 services with the demo's short, quiet histories).
Each size runs in its own process, each refresh in one of its own (as a scheduled refresh does),
and the sandbox serves from a process of its own (bench/remote_sandbox.py), so neither its CPU nor
its memory counts as the pipeline's; its peak RSS is printed apart. The pipeline's peak memory
is the largest sum of proportional set sizes over its processes at one moment while a refresh runs
(the refresh's and dbt's), sampled five times a second, with its split by process.

The benchmark profile makes the sandbox's Gearset host enforce the real 5 s minimum between two
polls of one report and keep each report running for one poll, and sets the Gearset sources'
poll interval to that minimum: Gearset's asynchronous reports then cost what they cost for real.

Lower bounds:
- extraction: every request the refresh sent, replayed by bare httpx (no dlt, no parsing beyond
  JSON) 32 at a time against the same sandbox; for Gearset the reports' polling waits (5 s
  between two polls, all reports concurrently) are added, because no client can skip them;
- dbt: one hand-written DuckDB query computing the daily deployment count, median lead time,
  failed deployments and median recovery time per service, environment and day from the unified
  intermediate tables dbt built: what the last aggregation alone costs.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import click
from remote_sandbox import SandboxHost, remote_sandbox

from dora_pipeline.defs.ingestion.assets import EXTRACTION_STEP
from dora_pipeline.sandbox.world import DEFAULT_SERVICES, OrgShape

# the target organisation at 100 %: 500 services, about 1M deployments, 2M changes, 50k failures
TARGET = OrgShape(services=500, days=540, merges_per_day=10.0, failure_rate=0.4)

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
SOURCES = ("gearset", "gearset_automation", "gitlab", "multitudes", "gitclear")


def _source_of(emulator: str, path: str, ci_operations: set[str]) -> str:
    if emulator == "gearset" and (
        "continuous-integration" in path
        or (path.startswith("/public/operation/") and path.split("/")[3] in ci_operations)
    ):
        return "gearset_automation"
    return emulator


def _requests_by_source(sandbox: SandboxHost, since: dict[str, int]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {name: [] for name in SOURCES}
    ci_operations = sandbox.ci_operation_ids()
    for emulator, requests in sandbox.requests_since(since).items():
        for request in requests:
            out[_source_of(emulator, request["path"], ci_operations)].append(request)
    return out


def _replay(sandbox: SandboxHost, emulator: str, requests: list[dict]) -> float:
    """Seconds bare httpx takes to send these requests again, 32 at a time."""
    import httpx
    import tenacity

    token = sandbox.token(emulator)
    auth = {
        "gearset": {"Authorization": f"token {token}"},
        "gitlab": {"PRIVATE-TOKEN": token},
        "multitudes": {"Authorization": token},
        "gitclear": {"Authorization": f"Bearer {token}"},
    }[emulator]
    base = sandbox.base_url(emulator)
    local = threading.local()

    # A kept-alive connection the server closed as it was reused resets the next request: sent
    # again on a new connection, as any client would (it costs the bound, never the pipeline).
    @tenacity.retry(
        retry=tenacity.retry_if_exception_type(httpx.TransportError), stop=tenacity.stop_after_attempt(3), reraise=True
    )
    def send(request: dict) -> None:
        # a year of 1,200 Gearset pipelines answers slowly from a sandbox this busy: no read limit
        client = getattr(local, "client", None) or httpx.Client(base_url=base, timeout=httpx.Timeout(30, read=None))
        local.client = client
        headers = dict(auth)
        if request.get("api_version"):
            headers["Api-Version"] = request["api_version"]
        body = request.get("body")  # GitLab's GraphQL queries
        client.request(request["method"], request["path"], params=request["params"], headers=headers, json=body).json()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(send, requests))
    return time.perf_counter() - started


def _bare_fetch(sandbox: SandboxHost, name: str, requests: list[dict], poll_seconds: float) -> float:
    """A source's bare-fetch bound: its requests replayed, then for Gearset's sources the polling
    waits no client can skip, slept so that sources replayed side by side overlap them."""
    emulator = "gearset" if name.startswith("gearset") else name
    started = time.perf_counter()
    _replay(sandbox, emulator, requests)
    if emulator == "gearset":
        time.sleep(_polling_floor(requests, poll_seconds))
    return time.perf_counter() - started


def _polling_floor(requests: list[dict], poll_seconds: float) -> float:
    """The waits no Gearset client can skip: each report polled every `poll_seconds`, all at once.
    Gearset's limit spaces polls, not a start and its first poll, so a report polled n times
    waits n - 1 intervals."""
    polls: dict[str, int] = {}
    for r in requests:
        if r["path"].endswith("/status") and "/public/operation/" in r["path"]:
            polls[r["path"]] = polls.get(r["path"], 0) + 1
    return max(max(polls.values(), default=0) - 1, 0) * poll_seconds


def _dlt_run(settings, name: str) -> tuple[dict[str, float], int]:
    """dlt's extract, normalize and load times of the source's latest run, and the rows it loaded."""
    import dlt

    pipeline = dlt.attach(pipeline_name=f"dora_{name}", pipelines_dir=str(settings.dlt_pipelines_dir))
    trace = pipeline.last_trace
    stages = {
        step.step: (step.finished_at - step.started_at).total_seconds()
        for step in (trace.steps if trace else [])
        if step.step in ("extract", "normalize", "load")
    }
    counts = trace.last_normalize_info.row_counts if trace and trace.last_normalize_info else {}
    return stages, sum(n for table, n in counts.items() if not table.startswith("_dlt"))


def _raw_rows(con, name: str) -> int:
    tables = con.execute(
        "select table_name from duckdb_tables() where schema_name = ? and not starts_with(table_name, '_dlt')",
        [f"raw_{name}"],
    ).fetchall()
    return sum(con.execute(f'select count(*) from raw_{name}."{t}"').fetchone()[0] for (t,) in tables)


def _dbt_results(settings, since: float) -> tuple[float | None, list[tuple[str, float]]]:
    """dbt's own elapsed time of its latest run, and its five slowest nodes."""
    results = settings.dbt_target_dir / "run_results.json"
    if not results.exists() or results.stat().st_mtime < since:
        return None, []
    run = json.loads(results.read_text())
    nodes = sorted(((r["unique_id"], r["execution_time"]) for r in run["results"]), key=lambda n: -n[1])
    return run["elapsed_time"], nodes[:5]


class TreeMemory:
    """The largest total memory (proportional set size) of this process's descendants seen at one
    moment, leaving out the sandbox's process: what the machine must hold for the pipeline (the
    refresh's process and dbt's), not this harness's own."""

    def __init__(self, excluded: int, interval: float = 0.2):
        self.excluded, self.interval, self.peak_mb = excluded, interval, 0.0
        self.refresh_pid = 0
        self.at_peak: dict[str, float] = {}  # MiB by process at the peak: which one to shrink
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            by_process: dict[str, float] = {}
            for pid in self._tree():
                name = "refresh" if pid == self.refresh_pid else _command_name(pid)
                by_process[name] = by_process.get(name, 0.0) + _pss_kb(pid) / 1024
            if sum(by_process.values()) > self.peak_mb:
                self.peak_mb, self.at_peak = sum(by_process.values()), by_process

    def _tree(self) -> set[int]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        tree, grown = {os.getpid()}, True
        while grown:
            found = {pid for pid, parent in parents.items() if parent in tree and pid != self.excluded} - tree
            tree |= found
            grown = bool(found)
        return tree - {os.getpid()}


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "gone"


def _pss_kb(pid: int) -> int:
    """The process's proportional set size: pages it shares with others (a step process forked from
    the fork server shares its imports) count in part, so the sum over processes is what they hold."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _refresh(path: str, send) -> None:
    """One refresh in a process of its own; sends back its run id and how long it took."""
    from dora_pipeline.refresh import run_refresh
    from dora_pipeline.settings import Settings

    started = time.perf_counter()
    outcome = run_refresh(Settings.from_path(Path(path)))
    send.send((outcome.run_id, time.perf_counter() - started))


def _one_refresh(settings, sandbox: SandboxHost, poll_seconds: float) -> dict:
    import duckdb
    from dagster import DagsterInstance

    marks, wall_started = sandbox.marks(), time.time()
    # Each refresh runs in a process of its own, as a scheduled one does (`dora-pipeline run`, a
    # Dagster run worker): neither an earlier refresh nor this harness's request-log replay (tens of
    # thousands of requests, in this process) leaves its freed memory in the refresh's. Its time
    # is `run_refresh`'s, from inside that process, without the process's start-up.
    spawn = multiprocessing.get_context("spawn")
    receive, send = spawn.Pipe(duplex=False)
    with TreeMemory(excluded=sandbox.pid()) as memory:
        process = spawn.Process(target=_refresh, args=(str(settings.duckdb_path), send))
        process.start()
        send.close()  # the child holds the only writing end: its death ends the wait below
        memory.refresh_pid = process.pid
        try:
            run_id, total = receive.recv()
        except EOFError:
            process.join()
            raise RuntimeError(
                f"the refresh's process exited ({process.exitcode}) without finishing; its error is above"
            ) from None
        process.join()
    with DagsterInstance.get() as instance:
        stats = instance.get_run_step_stats(run_id)
    steps = {s.step_key: s.end_time - s.start_time for s in stats}
    busy = max(s.end_time for s in stats) - min(s.start_time for s in stats)
    requests = _requests_by_source(sandbox, marks)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        # each source's extraction as the refresh recorded it (the sources run side by side in one
        # step), and from the first source's start to the last one's end
        windows = con.execute(
            "select source, epoch(started_at), epoch(finished_at) from dora_ops.source_runs where run_id = ?",
            [run_id],
        ).fetchall()
        sources = {name: end - start for name, start, end in windows}
        extraction_wall = max(end for _, _, end in windows) - min(start for _, start, _ in windows)
        rows = {name: _raw_rows(con, name) for name in SOURCES}
        marts = {
            t: con.execute(f"select count(*) from marts.{t}").fetchone()[0]
            for t in ("deployments", "changes", "failures")
        }
        # what dbt rebuilt: everything, or the rows from the horizon on (macros/refresh_horizon.sql)
        is_full, reason, horizon, first_day = con.execute(
            "select is_full, full_rebuild_reason, horizon, (select min(deployed_at) from intermediate.int_deployments) "
            "from intermediate.int_refresh_horizon"
        ).fetchone()
        rebuilt = (
            f"everything ({reason})"
            if is_full
            else (f"from {horizon:%Y-%m-%d %H:%M} on (history from {first_day:%Y-%m-%d})")
        )
        bound_started = time.perf_counter()
        con.execute(DAILY_METRICS).fetchall()
        dbt_bound = time.perf_counter() - bound_started
        # publishing's bound: DuckDB writing every mart to Parquet, the work publishing does on the
        # refresh's path (it renames the build file into place and copies it back beside the report)
        marts_tables = con.execute("select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()
        with tempfile.TemporaryDirectory(dir=settings.data_dir) as folder:
            bound_started = time.perf_counter()
            for (table,) in marts_tables:
                con.execute(f"copy marts.{table} to '{folder}/{table}.parquet' (format parquet)")
            publish_bound = time.perf_counter() - bound_started
    runs = {name: _dlt_run(settings, name) for name in SOURCES}
    dbt_elapsed, dbt_slowest = _dbt_results(settings, wall_started)
    # the build file's copy back, off the refresh's path since publishing renames it into place:
    # the disk copying the same file
    copy = settings.duckdb_path.with_name(".bench-copy.tmp")
    started = time.perf_counter()
    shutil.copyfile(settings.build_path, copy)
    file_copy = time.perf_counter() - started
    copy.unlink()
    bare = {name: _bare_fetch(sandbox, name, requests[name], poll_seconds) for name in SOURCES}
    # the same, every source at once, as the refresh extracts them
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(SOURCES)) as pool:
        list(pool.map(lambda name: _bare_fetch(sandbox, name, requests[name], poll_seconds), SOURCES))
    bare_side_by_side = time.perf_counter() - started
    return {
        "total": total,
        "steps": steps,
        "sources": sources,
        "extraction_wall": extraction_wall,
        "outside_steps": total - busy,
        "dlt": {name: runs[name][0] for name in SOURCES},
        "rows_loaded": {name: runs[name][1] for name in SOURCES},
        "requests": {name: len(r) for name, r in requests.items()},
        "raw_rows": rows,
        "marts": marts,
        "bare_fetch": bare,
        "bare_fetch_side_by_side": bare_side_by_side,
        "dbt_bound": dbt_bound,
        "publish_bound": publish_bound,
        "file_copy": file_copy,
        "dbt_elapsed": dbt_elapsed,
        "dbt_slowest": dbt_slowest,
        "dbt_rebuilt": rebuilt,
        "warehouse_mb": settings.duckdb_path.stat().st_size / 1e6,
        "peak_memory_mb": memory.peak_mb,
        "memory_at_peak": memory.at_peak,
    }


def org_shape(shape: str, percent: float) -> OrgShape:
    """The organisation at `percent` of the target, in the target's shape or as demo copies."""
    if shape == "copies":
        return OrgShape(services=len(DEFAULT_SERVICES) * max(1, round(3 * percent)))
    return replace(TARGET, services=max(1, round(TARGET.services * percent / 100)))


def _keep(settings, keep: Path | None, name: str) -> None:
    """The build file and dbt's run results of a refresh, copied to `keep` to study them later
    (`dbt build` on a copy of the warehouse, each node's timing)."""
    if keep is None:
        return
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.build_path, keep / f"{name}.duckdb")
    shutil.copyfile(settings.dbt_target_dir / "run_results.json", keep / f"{name}.run_results.json")


def _measure(shape: OrgShape, poll_seconds: float, keep: Path | None) -> dict:
    from dora_pipeline.settings import Settings

    with (
        tempfile.TemporaryDirectory() as tmp,
        remote_sandbox(shape, poll_seconds) as sandbox,
    ):
        os.environ.update(sandbox.environment())
        os.environ["DORA__SERVICE_TEAMS"] = json.dumps(sandbox.service_teams())
        os.environ["DAGSTER_HOME"] = str(Path(tmp) / "dagster")
        if poll_seconds:
            for name in ("GEARSET", "GEARSET_AUTOMATION"):
                os.environ[f"SOURCES__{name}__POLL_INTERVAL_SECONDS"] = str(poll_seconds)
        settings = Settings.from_path(Path(tmp) / "dora.duckdb")
        first = _one_refresh(settings, sandbox, poll_seconds)
        _keep(settings, keep, "first")
        # the first refresh's figures survive a failure later on (the parent prints stderr's tail)
        print(json.dumps({"first_refresh": first}), file=sys.stderr, flush=True)
        sandbox.next_day()
        incremental = _one_refresh(settings, sandbox, poll_seconds)
        _keep(settings, keep, "incremental")
        return {
            "size": sandbox.size(),
            "first": first,
            "incremental": incremental,
            "peak_memory_mb": max(first["peak_memory_mb"], incremental["peak_memory_mb"]),
            "sandbox_rss_mb": sandbox.peak_rss_mb(),
        }


def _memory(mib: float) -> str:
    """Memory in MiB (what the samples add up) and in GB (what the issue's target says)."""
    return f"{mib:.0f} MiB, {mib * 2**20 / 1e9:.2f} GB"


def _print_refresh(title: str, r: dict) -> None:
    steps = r["steps"]
    print(f"  {title}: {r['total']:.1f} s end to end; marts: " + ", ".join(f"{v:,} {k}" for k, v in r["marts"].items()))
    print(
        f"    {'source':<20}{'time s':>8}{'extract':>9}{'norm.':>7}{'load':>7}{'requests':>10}{'raw rows':>12}"
        f"{'loaded':>10}{'req/row':>9}{'bare s':>8}{'ratio':>7}"
    )
    for name in SOURCES:
        step, dlt_stages = r["sources"].get(name, 0.0), r["dlt"][name]
        requests, rows, bare = r["requests"][name], r["raw_rows"][name], r["bare_fetch"][name]
        loaded = r["rows_loaded"][name]
        print(
            f"    {name:<20}{step:8.1f}{dlt_stages.get('extract', 0):9.1f}{dlt_stages.get('normalize', 0):7.1f}"
            f"{dlt_stages.get('load', 0):7.1f}{requests:10,}{rows:12,}{loaded:10,}{requests / max(loaded, 1):9.3f}"
            f"{bare:8.1f}{step / max(bare, 1e-3):7.1f}"
        )
    extraction = sum(r["sources"].values())
    bare_total = sum(r["bare_fetch"].values())
    bare_wall = r["bare_fetch_side_by_side"]
    wall = steps[EXTRACTION_STEP]
    print(
        f"    extraction + load, the sources side by side: {wall:.1f} s (from the first source's start to the last "
        f"one's end {r['extraction_wall']:.1f} s) against a bare fetch of every source's requests side by side of "
        f"{bare_wall:.1f} s ({wall / max(bare_wall, 1e-3):.1f}x); each source's own times add up to {extraction:.1f} s "
        f"against its bounds' {bare_total:.1f} s ({extraction / max(bare_total, 1e-3):.1f}x)"
    )
    dbt, elapsed = steps.get("dora_dbt_models", 0.0), r["dbt_elapsed"] or 0.0
    print(
        f"    dbt step {dbt:.1f} s (dbt's own elapsed {elapsed:.1f} s, so {dbt - elapsed:.1f} s of dbt's start-up "
        "and Dagster's events); "
        f"one-query bound {r['dbt_bound']:.2f} s: {dbt / max(r['dbt_bound'], 1e-3):.0f}x"
    )
    print(f"      dbt rebuilt {r['dbt_rebuilt']}")
    print("      slowest dbt nodes: " + ", ".join(f"{node.split('.')[-1]} {t:.1f} s" for node, t in r["dbt_slowest"]))
    rest = {k: v for k, v in steps.items() if k not in (EXTRACTION_STEP, "dora_dbt_models")}
    overhead = r["outside_steps"]
    print(
        "    " + ", ".join(f"{k} {v:.1f} s" for k, v in rest.items()) + f"; outside the steps {overhead:.1f} s"
        f"; warehouse {r['warehouse_mb']:.0f} MB"
    )
    published = steps.get("published_warehouse", 0.0)
    print(
        f"    publishing {published:.1f} s against the marts' Parquet exports alone of {r['publish_bound']:.1f} s "
        f"({published / max(r['publish_bound'], 1e-3):.1f}x); the build file's copy back, beside the report: "
        f"a plain copy takes {r['file_copy']:.1f} s"
    )
    print(
        f"    peak memory {_memory(r['peak_memory_mb'])} "
        "(PSS summed over the refresh's processes, MiB: "
        + ", ".join(f"{name} {mb:.0f}" for name, mb in sorted(r["memory_at_peak"].items()))
        + ")"
    )


@click.command()
@click.option("--sizes", default="10,30,100", show_default=True, help="Sizes, in percent of the target.")
@click.option(
    "--shape",
    type=click.Choice(["target", "copies"]),
    default="target",
    show_default=True,
    help="The target's shape (500 busy services at 100 %) or copies of the demo organisation.",
)
@click.option(
    "--gearset-poll-seconds", default=5.0, show_default=True, help="Gearset's minimum between polls (0: off)."
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep each refresh's build file and dbt's run results in KEEP/<size>/ (about 2 GB at 100 %).",
)
@click.option("--child", type=float, default=None, hidden=True)
def main(sizes: str, shape: str, gearset_poll_seconds: float, keep: Path | None, child: float | None) -> None:
    if child is not None:
        print(json.dumps(_measure(org_shape(shape, child), gearset_poll_seconds, keep)))
        return
    for percent in (float(s) for s in sizes.split(",")):
        command = [sys.executable, __file__, "--child", str(percent), "--shape", shape]
        command += ["--gearset-poll-seconds", str(gearset_poll_seconds)]
        if keep is not None:
            command += ["--keep", str(keep.resolve() / f"{percent:g}")]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            # the whole of the child's error output (dbt's message is long) kept for diagnosis
            kept = Path(tempfile.gettempdir()) / f"scale-{shape}-{percent:g}.stderr"
            kept.write_text(done.stderr)
            print(f"\n{percent:g} % ({shape} shape): failed (its whole error output: {kept})\n{done.stderr[-3000:]}")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        size = result["size"]
        print(
            f"\n{percent:g} % of the target ({shape} shape: {size['services']:,} services, "
            f"{size['deployments']:,} deployments, {size['changes']:,} changes, {size['failures']:,} failures), "
            f"peak memory {_memory(result['peak_memory_mb'])} "
            f"(the sandbox's own process, apart: {result['sandbox_rss_mb']:.0f} MiB)"
        )
        _print_refresh("first refresh", result["first"])
        _print_refresh("incremental refresh (one new day)", result["incremental"])


if __name__ == "__main__":
    main()
