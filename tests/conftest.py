"""Shared fixtures: an isolated warehouse per test and the sandbox APIs on loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dora_pipeline.refresh import RefreshOutcome
from dora_pipeline.sandbox.server import Sandbox
from dora_pipeline.sandbox.world import World
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


@pytest.fixture(scope="session")
def reference_refresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refreshed]:
    """The expensive fixture: one refresh serving many assertions. Its environment is set only
    while it builds, so the function-scoped fixtures of other tests see a clean one."""
    from dora_pipeline.defs import build_definitions
    from dora_pipeline.refresh import run_refresh

    root = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as env, Sandbox.start() as box:
        for name in list(os.environ):
            if name.startswith(("SOURCES__", "DORA__")):
                env.delenv(name)
        env.setenv("DORA_DUCKDB_PATH", str(root / "warehouse" / "dora.duckdb"))
        env.setenv("DAGSTER_HOME", str(root / "dagster"))
        for name, value in box.source_environment().items():
            env.setenv(name, value)
        env.setenv("DORA__SERVICE_TEAMS", json.dumps(box.service_teams()))
        settings = Settings.from_env()
        graph = build_definitions(settings).resolve_asset_graph()
        outcome = run_refresh(settings)
        refreshed = Refreshed(
            settings=settings,
            world=box.world.view(box.as_of),
            outcome=outcome,
            tokens=[state.token for state in box.states.values()],
            materializable=len(graph.materializable_asset_keys),
            checks=len(list(graph.asset_check_keys)),
            external=set(graph.external_asset_keys),
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
