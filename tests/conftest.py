"""Shared fixtures: an isolated warehouse per test and the sandbox APIs on loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sandbox_sources import rows_in

from dora_pipeline.refresh import RefreshOutcome
from dora_pipeline.sandbox.server import Sandbox
from dora_pipeline.sandbox.world import DEFAULT_SERVICES, ServiceSpec, World
from dora_pipeline.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh warehouse, dlt state and Dagster home under the test's own folder."""
    for name in list(os.environ):
        if name.startswith(("SOURCES__", "DORA__")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DORA_DUCKDB_PATH", str(tmp_path / "warehouse" / "dora.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    return Settings.from_env()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox.start() as box:
        yield box


@pytest.fixture
def fresh_pipeline(tmp_path: Path):
    """Sources iterated outside `pipeline.run` keep cursors in the active pipeline: a new one."""
    import dlt

    pipeline = dlt.pipeline("contract", destination="duckdb", pipelines_dir=str(tmp_path / "dlt"))
    pipeline.activate()
    yield pipeline
    pipeline.deactivate()


@pytest.fixture
def extract(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """`extract(source, resource)`: every row of one resource from the sandbox, through a real dlt
    pipeline with fresh incremental state each time."""
    import dlt

    from dora_pipeline.sources.registry import SOURCES

    for name, value in sandbox.source_environment().items():
        monkeypatch.setenv(name, value)
    runs = iter(range(1000))

    def run(source: str, resource: str) -> list[dict]:
        pipeline = dlt.pipeline(f"extract_{next(runs)}", destination="duckdb", pipelines_dir=str(tmp_path))
        pipeline.activate()
        try:
            return rows_in(SOURCES[source].build().with_resources(resource))
        finally:
            pipeline.deactivate()

    return run


@pytest.fixture
def point_at_sandbox(settings: Settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch):
    """Configure the sources for the sandbox exactly as the demo does."""

    def apply() -> None:
        for name, value in sandbox.source_environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DORA__SERVICE_TEAMS", json.dumps(sandbox.service_teams()))

    apply()
    return apply


@dataclass(frozen=True)
class Refreshed:
    """One fault-free refresh of the default sandbox organisation, shared by the tests that only
    read what it built (see `reference_refresh`)."""

    settings: Settings
    world: World  # the world as the sandbox observed it
    outcome: RefreshOutcome
    tokens: list[str]
    materializable: int
    checks: int
    external: set
    dagster_home: Path  # DAGSTER_HOME is set only while the refresh runs


@contextmanager
def sandbox_refresh(
    root: Path, services: tuple[ServiceSpec, ...] = DEFAULT_SERVICES, env: dict[str, str] | None = None
) -> Iterator[tuple[Settings, Sandbox, RefreshOutcome]]:
    """One refresh of a sandbox organisation into `root`, configured as the demo configures it
    (`env` adds to or overrides that), for fixtures shared by many tests. Its environment is set
    only inside the block, so function-scoped fixtures see a clean one."""
    from dora_pipeline.refresh import run_refresh

    with pytest.MonkeyPatch.context() as patch, Sandbox.start(services=services) as box:
        for name in list(os.environ):
            if name.startswith(("SOURCES__", "DORA__")):
                patch.delenv(name)
        patch.setenv("DORA_DUCKDB_PATH", str(root / "warehouse" / "dora.duckdb"))
        patch.setenv("DAGSTER_HOME", str(root / "dagster"))
        teams = {"DORA__SERVICE_TEAMS": json.dumps(box.service_teams())}
        for name, value in {**box.source_environment(), **teams, **(env or {})}.items():
            patch.setenv(name, value)
        settings = Settings.from_env()
        yield settings, box, run_refresh(settings)


@pytest.fixture(scope="session")
def reference_refresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refreshed]:
    """The expensive fixture: one refresh of the default organisation serving many assertions."""
    from dora_pipeline.defs import build_definitions

    with sandbox_refresh(tmp_path_factory.mktemp("reference")) as (settings, box, outcome):
        graph = build_definitions(settings).resolve_asset_graph()
        refreshed = Refreshed(
            settings=settings,
            world=box.world.view(box.as_of),
            outcome=outcome,
            tokens=[state.token for state in box.states.values()],
            materializable=len(graph.materializable_asset_keys),
            checks=len(list(graph.asset_check_keys)),
            external=set(graph.external_asset_keys),
            dagster_home=settings.dagster_home,
        )
    yield refreshed


_FIGURES: list[str] = []


@pytest.fixture
def figures() -> list[str]:
    """Lines a test adds here are printed at the end of the run, under `figures`: what the
    reliability and scale tests measured (faults injected, kills survived, records rejected)."""
    return _FIGURES


def pytest_terminal_summary(terminalreporter) -> None:
    if _FIGURES:
        terminalreporter.section("figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def postgres_cluster():
    """A PostgreSQL server of the tests' own on loopback (see postgres_cluster.py)."""
    from postgres_cluster import running_cluster

    with running_cluster() as cluster:
        yield cluster
