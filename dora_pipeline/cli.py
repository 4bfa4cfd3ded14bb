"""`dora-pipeline`: the demo on the embedded sandbox, a real run, the sandbox alone, a summary."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import click

from dora_pipeline.settings import Settings


class Moment(click.ParamType):
    """An ISO 8601 moment (`2026-11-01`, `2026-11-01T06:00:00Z`); without an offset it is UTC."""

    name = "ISO 8601 moment"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 moment, e.g. 2026-11-01 or 2026-11-01T06:00:00Z", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Faults(click.ParamType):
    """A sandbox fault profile, e.g. `rate=0.3,seed=7,kinds=hang:0.5+truncate`."""

    name = "fault profile"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        from dora_pipeline.sandbox.fault_profile import FaultProfile, FaultProfileError

        if isinstance(value, FaultProfile):
            return value
        try:
            return FaultProfile.parse(str(value))
        except FaultProfileError as exc:
            self.fail(str(exc), param, ctx)


def org_shape(command):
    """The sandbox organisation's size options (`--copies`, or `--services` with `--days`,
    `--merges-per-day`, `--failure-rate`), handed to `command` as one `shape`."""
    from dora_pipeline.sandbox.world import DEFAULT_SERVICES, DEFAULT_START

    @functools.wraps(command)
    def with_shape(*args, copies, services, days, merges_per_day, failure_rate, **kwargs):
        from dora_pipeline.sandbox.world import OrgShape

        if copies is not None and services is not None:
            raise click.UsageError("--copies and --services both set the number of services: give one")
        count = services if services is not None else len(DEFAULT_SERVICES) * (copies or 1)
        # the options' ranges are OrgShape's rules, so click has refused what OrgShape would
        return command(*args, shape=OrgShape(count, days, merges_per_day, failure_rate), **kwargs)

    options = (
        click.option(
            "--copies",
            type=click.IntRange(min=1),
            default=None,
            help=f"Organisations like the demo's side by side ({len(DEFAULT_SERVICES)} services and about "
            "3,100 deployments each), to try the pipeline at scale.  [default: 1]",
        ),
        click.option(
            "--services",
            type=click.IntRange(min=1),
            default=None,
            help="Services in the organisation, the demo's kinds in turn (instead of --copies).",
        ),
        click.option(
            "--days",
            type=click.IntRange(min=1),
            default=None,
            help=f"Days of history before --as-of (default: the demo's, since {DEFAULT_START:%Y-%m-%d}).",
        ),
        click.option(
            "--merges-per-day",
            type=click.FloatRange(min=0),
            default=None,
            help="Mean changes merged a weekday, every service (default: the demo's, 2 to 4).",
        ),
        click.option(
            "--failure-rate",
            type=click.FloatRange(min=0, max=1),
            default=None,
            help="Share of production releases that cause a failure (default: 0.13).",
        ),
    )
    for option in reversed(options):
        with_shape = option(with_shape)
    return with_shape


FAULTS = click.option(
    "--faults",
    type=Faults(),
    envvar="DORA_SANDBOX_FAULTS",
    default=None,
    help="Make the sandbox APIs misbehave on a share of answers, seeded, e.g. 'rate=0.3,seed=7' "
    "(kinds, weights and timings: see dora_pipeline/sandbox/fault_profile.py).",
)

VERBOSE = click.option(
    "--verbose", is_flag=True, help="Also print dbt's line per model and test (otherwise in data/logs/refresh.log)."
)

WAREHOUSE = click.option(
    "--warehouse",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The published DuckDB file (default: DORA_DUCKDB_PATH or data/dora.duckdb); with a PostgreSQL "
    "warehouse, the folder of its local state is this file's folder.",
)


def _settings(path: Path | None = None) -> Settings:
    """The configured warehouse, or one error line naming the setting that is wrong."""
    from dora_pipeline.settings import WarehouseConfigError

    try:
        return Settings.from_path(path) if path else Settings.from_env()
    except WarehouseConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(1)


def _published(warehouse: Path | None) -> Settings:
    """Settings of an existing warehouse, or one clear error saying how to make one."""
    from dora_pipeline import warehouse as warehouses
    from dora_pipeline.settings import WarehouseConfigError

    settings = _settings(warehouse)
    try:
        published = warehouses.exists(settings)
    except WarehouseConfigError as exc:  # a server that cannot be reached
        _fail(exc, debug=False)
    if not published:
        click.echo(f"error: no warehouse at {warehouses.describe(settings)}", err=True)
        click.echo("hint: run `dora-pipeline demo` or `dora-pipeline run` first, or pass --warehouse", err=True)
        sys.exit(1)
    return settings


@contextmanager
def _build_log(settings: Settings, shown: bool) -> Iterator[None]:
    """dbt's line per model and test (hundreds) goes to `<data>/logs/refresh.log`, not the
    terminal; `--verbose` and `--debug` show it."""
    if shown:
        yield
        return
    path = settings.build_log_path
    path.parent.mkdir(parents=True, exist_ok=True)
    click.echo(f"refreshing... (dbt's output: {path})")
    with path.open("w", encoding="utf-8") as log, redirect_stdout(log):
        # The file descriptor too: dbt runs in a process of its own.
        sys.__stdout__.flush()
        terminal = os.dup(1)
        os.dup2(log.fileno(), 1)
        try:
            yield
        finally:
            log.flush()
            os.dup2(terminal, 1)
            os.close(terminal)


def _fail(exc: BaseException, debug: bool) -> None:
    from dora_pipeline.refresh import RefreshFailed

    if debug:
        traceback.print_exception(exc)
        if isinstance(exc, RefreshFailed):
            for event in exc.result.all_events:
                if event.is_step_failure:
                    click.echo(event.step_failure_data.error.to_string(), err=True)
    hint = getattr(exc, "hint", None) or "run with --debug for the full traceback"
    click.echo(f"error: {exc}", err=True)
    click.echo(f"hint: {hint}", err=True)
    sys.exit(1)


@click.group()
@click.version_option(package_name="dora-pipeline")
def main() -> None:
    """Extract delivery data, build the DORA warehouse, and serve it."""


@main.command()
@click.option("--seed", default=None, type=int, help="Seed of the simulated organisation.")
@click.option("--as-of", "as_of", type=Moment(), default=None, help="Moment the sandbox observes (ISO 8601).")
@org_shape
@FAULTS
@VERBOSE
@click.option("--debug", is_flag=True, help="Show full tracebacks and Dagster's own log.")
def demo(seed: int | None, as_of: datetime | None, shape, faults, verbose: bool, debug: bool) -> None:
    """Run dora_refresh end to end against the sandbox APIs on loopback."""
    from dora_pipeline.refresh import run_refresh
    from dora_pipeline.sandbox.server import Sandbox
    from dora_pipeline.sandbox.world import DEFAULT_AS_OF, DEFAULT_SEED

    settings = _settings()
    started = time.monotonic()
    try:
        moment = as_of or DEFAULT_AS_OF
        with Sandbox.start(DEFAULT_SEED if seed is None else seed, moment, faults=faults, shape=shape) as sandbox:
            click.echo(
                f"sandbox: {len(sandbox.world.services)} services, history from {sandbox.world.start:%Y-%m-%d} "
                f"as of {sandbox.as_of:%Y-%m-%d %H:%M} UTC"
            )
            for name, server in sandbox.servers.items():
                click.echo(f"  {name:<10} {server.base_url}")
            os.environ.update(sandbox.source_environment())
            os.environ["DORA__SERVICE_TEAMS"] = json.dumps(sandbox.service_teams())
            with _build_log(settings, verbose or debug):
                outcome = run_refresh(settings, log_level="DEBUG" if debug else "CRITICAL", progress=not debug)
    except Exception as exc:  # noqa: BLE001 - the CLI turns every failure into one line
        _fail(exc, debug)
    click.echo(
        f"dora_refresh run {outcome.run_id}: {outcome.materialized} assets materialised, "
        f"{outcome.checks_passed} checks passed in {time.monotonic() - started:.1f} s"
    )
    _print_summary(settings)
    _report_run_problems(outcome)


@main.command()
@VERBOSE
@click.option("--debug", is_flag=True, help="Show full tracebacks and Dagster's own log.")
def run(verbose: bool, debug: bool) -> None:
    """Run dora_refresh against the real APIs configured in .dlt/ or SOURCES__* variables."""
    from dora_pipeline.catalog import load_catalog
    from dora_pipeline.refresh import run_refresh
    from dora_pipeline.sources.registry import SOURCES, configured_sources, setting_name

    settings = _settings()
    started = time.monotonic()
    if not configured_sources():
        click.echo("error: no source is configured", err=True)
        click.echo(
            f"hint: set a source's token, e.g. {setting_name('gitlab', 'private_token')}; see the README section "
            "'Configuration for real APIs'",
            err=True,
        )
        sys.exit(1)
    try:
        for name in configured_sources():
            SOURCES[name].build()  # resolves configuration: a missing key fails here, before any request
        load_catalog()
        with _build_log(settings, verbose or debug):
            outcome = run_refresh(settings, log_level="DEBUG" if debug else "CRITICAL", progress=not debug)
    except Exception as exc:  # noqa: BLE001
        _fail(exc, debug)
    click.echo(
        f"dora_refresh run {outcome.run_id}: {outcome.materialized} assets materialised "
        f"in {time.monotonic() - started:.1f} s"
    )
    _print_summary(settings)
    _report_run_problems(outcome)


@main.command()
@click.option("--seed", default=None, type=int)
@click.option("--as-of", "as_of", type=Moment(), default=None, help="Moment the sandbox observes (ISO 8601).")
@org_shape
@FAULTS
def sandbox(seed: int | None, as_of: datetime | None, shape, faults) -> None:
    """Serve the sandbox APIs on loopback until interrupted, printing their base URLs."""
    from dora_pipeline.sandbox.server import Sandbox
    from dora_pipeline.sandbox.world import DEFAULT_AS_OF, DEFAULT_SEED

    seed = seed if seed is not None else DEFAULT_SEED
    with Sandbox.start(seed, as_of or DEFAULT_AS_OF, faults=faults, shape=shape) as box:
        click.echo(
            f"# sandbox: {len(box.world.services)} services, history from {box.world.start:%Y-%m-%d} "
            f"as of {box.as_of:%Y-%m-%d %H:%M} UTC; Ctrl-C stops it"
        )
        for name, server in box.servers.items():
            click.echo(f"# {name:<11} {server.base_url}")
        for name, value in box.source_environment().items():
            click.echo(f"export {name}='{value}'")
        click.echo(
            f"# Gearset pipelines: curl -H 'Authorization: token {box.gearset.token}' "
            f"-H 'Api-Version: 3' {box.base_url('gearset')}/public/reporting/pipelines"
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@main.command()
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Where to write the HTML.")
@WAREHOUSE
def report(output: str | None, warehouse: Path | None) -> None:
    """Write the HTML report (charts, performance levels, trends, data quality) from the warehouse."""
    from dora_pipeline.report import build_report

    settings = _published(warehouse)
    written = build_report(settings, Path(output) if output else settings.report_path)
    click.echo(f"report: {written.path} ({written.charts} charts, {written.size_bytes / 1e6:.1f} MB)")


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dagster_args", nargs=-1, type=click.UNPROCESSED)
def ui(dagster_args: tuple[str, ...]) -> None:
    """Open the Dagster UI (`dagster dev`) on dora_pipeline.definitions with this warehouse's instance."""
    settings = _settings()
    settings.export()  # DAGSTER_HOME with telemetry off, before Dagster starts
    dagster = Path(sys.executable).parent / "dagster"
    # The module rather than workspace.yaml: an installed package has no checkout around it.
    os.execv(str(dagster), [str(dagster), "dev", "-m", "dora_pipeline.definitions", *dagster_args])


@main.command()
@WAREHOUSE
def summary(warehouse: Path | None) -> None:
    """Print the metrics per service from the warehouse."""
    _print_summary(_published(warehouse))


def _report_run_problems(outcome) -> None:
    """Records set aside are a warning. A failed source is an error: the warehouse was published
    from the other sources and its last good data; say which failed, what to fix, and exit
    non-zero so a scheduler notices."""
    from dora_pipeline.sources.registry import SOURCES, setting_name

    if outcome.rejected_records:
        click.echo(
            f"warning: {outcome.rejected_records} records could not be loaded as they were and were set aside "
            "(marts.rejected_records says which, and why)",
            err=True,
        )
    if not outcome.failed_sources:
        return
    for failure in outcome.failed_sources:
        click.echo(f"error: {failure.describe()}", err=True)
        if any(code in failure.error for code in ("HTTP 401", "HTTP 403")):
            key = setting_name(failure.source, SOURCES[failure.source].token_key)
            click.echo(f"hint: check {key}", err=True)
        elif "could not reach" in failure.error or "HTTP 404" in failure.error:
            click.echo(f"hint: check {setting_name(failure.source, 'base_url')}", err=True)
    sys.exit(1)


def _print_summary(settings: Settings) -> None:
    from dora_pipeline import warehouse

    median = "percentile_cont(0.5) within group (order by {}) / 3600"
    with warehouse.connect(settings, read_only=True) as con:
        rows = con.execute(
            """
            select service, team,
                sum(deployment_count) as deployments,
                bool_or(tracks_failures) as tracks_failures,
                cast(sum(failed_deployment_count) as double precision)
                    / nullif(sum(failure_tracked_deployment_count), 0) as cfr,
                cast(sum(rework_deployment_count) as double precision) / nullif(sum(deployment_count), 0) as rework
            from marts.dora_metrics_daily group by service, team order by service
            """
        )
        lead = dict(
            con.execute(
                f"select service, {median.format('lead_time_seconds')} from marts.changes "
                "where lead_time_exclusion_reason is null group by service"
            )
        )
        recovery = dict(
            con.execute(
                f"select service, {median.format('recovery_time_seconds')} from marts.failures "
                "where is_qualifying group by service"
            )
        )
    click.echo(f"\n{'service':<18}{'team':<12}{'deploys':>8}{'lead h':>9}{'CFR':>13}{'recov h':>13}{'rework':>8}")
    for service, team, deployments, tracks, cfr, rework in rows:
        failure_cells = (
            f"{_pct(cfr):>13}{_num(recovery.get(service)):>13}" if tracks else f"{'not tracked':>13}{'not tracked':>13}"
        )
        click.echo(
            f"{service:<18}{team:<12}{deployments:>8}{_num(lead.get(service)):>9}{failure_cells}{_pct(rework):>8}"
        )
    click.echo(f"\nwarehouse: {warehouse.describe(settings)}  (schema marts)")
    click.echo(f"exports:   {settings.exports_dir / 'current'}  (Parquet, one file per mart)")
    if settings.report_path.exists():
        click.echo(f"report:    {settings.report_path}")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
