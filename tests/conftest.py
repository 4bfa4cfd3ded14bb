"""Shared fixtures: an isolated warehouse per test and the sandbox APIs on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dora_pipeline.sandbox.server import Sandbox
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
        monkeypatch.setenv("DORA__SERVICE_TEAMS", __import__("json").dumps(sandbox.service_teams()))

    apply()
    return apply
