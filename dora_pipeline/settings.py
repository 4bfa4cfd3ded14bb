"""Where the warehouse and the tools' state live, and the switches every entry point needs.

Importing this module turns dbt, dlt and Dagster telemetry off for this process and every
process it starts (dbt runs as a subprocess), so nothing phones home.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

PACKAGE_DIR = Path(__file__).resolve().parent
DBT_PROJECT_DIR = Path(os.environ.get("DORA_DBT_PROJECT_DIR", PACKAGE_DIR.parent / "dbt_project")).resolve()
DAGSTER_YAML = "telemetry:\n  enabled: false\n"


@dataclass(frozen=True)
class Settings:
    """Paths of one warehouse: the DuckDB file and, beside it, dlt's and Dagster's state."""

    duckdb_path: Path

    @classmethod
    def from_env(cls) -> Settings:
        path = Path(os.environ.get("DORA_DUCKDB_PATH", "data/dora.duckdb")).expanduser().resolve()
        return cls(duckdb_path=path)

    @property
    def data_dir(self) -> Path:
        return self.duckdb_path.parent

    @property
    def dlt_pipelines_dir(self) -> Path:
        return self.data_dir / "dlt"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME", self.data_dir / "dagster")).resolve()

    def export(self) -> None:
        """Make the paths visible to subprocesses (dbt reads DORA_DUCKDB_PATH in its profile)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        dagster_yaml = self.dagster_home / "dagster.yaml"
        if not dagster_yaml.exists():
            dagster_yaml.write_text(DAGSTER_YAML)
        os.environ["DORA_DUCKDB_PATH"] = str(self.duckdb_path)
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)
