"""Where the warehouse and the tools' state live, and the switches every entry point needs.

Importing this module turns dbt, dlt and Dagster telemetry off for this process and every
process it starts (dbt runs as a subprocess), so nothing phones home.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

PACKAGE_DIR = Path(__file__).resolve().parent
# An installed wheel carries the dbt project inside the package (setup.py); a checkout keeps it at
# the top of the repository.
_PACKAGED_DBT_PROJECT = PACKAGE_DIR / "dbt_project"
DBT_PROJECT_DIR = Path(
    os.environ.get(
        "DORA_DBT_PROJECT_DIR",
        _PACKAGED_DBT_PROJECT if _PACKAGED_DBT_PROJECT.is_dir() else PACKAGE_DIR.parent / "dbt_project",
    )
).resolve()
# A new Dagster instance: telemetry off, and every run's events in one SQLite file instead of one
# file per run plus an index, written through pooled connections (event_log.py). Dagster stores
# about 750 events per refresh (dbt's nodes and tests), and per event its default storages open
# SQLite files afresh: one file saved about 5 s per refresh, pooling about 4 s more. An existing
# instance keeps its dagster.yaml and so its history.
DAGSTER_YAML = """telemetry:
  enabled: false
# Dagster's default console logger (a parallel refresh's step processes start with it) says
# only what matters; a run's own loggers are configured by the run.
python_logs:
  python_log_level: WARNING
event_log_storage:
  module: dora_pipeline.event_log
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {history}
"""


WAREHOUSES = ("duckdb", "postgres")
CREDENTIALS_HINT = (
    "set [destination.postgres.credentials] in .dlt/secrets.toml or DESTINATION__POSTGRES__CREDENTIALS__*"
)


class WarehouseConfigError(ValueError):
    """The warehouse setting names no warehouse this tool can use, or one it cannot reach."""

    hint = "see the README section 'A server warehouse (PostgreSQL)'"


def configured_warehouse() -> str:
    """`duckdb` (the embedded default) or `postgres`, from dlt's configuration: `warehouse` under
    `[dora]` in .dlt/config.toml, or the environment variable DORA__WAREHOUSE."""
    import dlt

    kind = (dlt.config.get("dora.warehouse", str) or "duckdb").strip().lower()
    if kind not in WAREHOUSES:
        raise WarehouseConfigError(
            f"dora.warehouse is {kind!r}; it must be one of {', '.join(WAREHOUSES)} (DORA__WAREHOUSE)"
        )
    return kind


@dataclass(frozen=True)
class PostgresServer:
    """Where a PostgreSQL warehouse is. The password never appears in a repr or a message."""

    host: str
    port: int
    database: str
    username: str
    password: str = field(repr=False, default="")

    def connect_kwargs(self) -> dict:
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.username,
            "password": self.password,
            "application_name": "dora-pipeline",
            "connect_timeout": 15,
        }


def postgres_server() -> PostgresServer:
    """The server from dlt's own configuration of its postgres destination, so dlt, dbt and this
    module read one setting."""
    from dlt.common.configuration import resolve_configuration
    from dlt.common.configuration.exceptions import ConfigFieldMissingException
    from dlt.destinations.impl.postgres.configuration import PostgresCredentials

    try:
        import psycopg2  # noqa: F401 - dlt's and dbt's PostgreSQL driver
    except ImportError:
        raise WarehouseConfigError(
            "the PostgreSQL warehouse needs its drivers: pip install 'dora-pipeline[postgres]'"
        ) from None
    try:
        credentials = resolve_configuration(PostgresCredentials(), sections=("destination", "postgres", "credentials"))
    except ConfigFieldMissingException as exc:
        missing = ", ".join(exc.fields)
        raise WarehouseConfigError(f"the PostgreSQL warehouse is missing {missing}; {CREDENTIALS_HINT}") from None
    return PostgresServer(
        host=credentials.host,
        port=int(credentials.port or 5432),
        database=credentials.database,
        username=credentials.username,
        password=credentials.password or "",
    )


@dataclass(frozen=True)
class Settings:
    """One warehouse: which kind, and the local folder of its state. With DuckDB that folder holds
    the published file and, beside it, the build copy; with either kind it holds the Parquet
    exports, the report, and dlt's and Dagster's state. A PostgreSQL warehouse's connection comes
    from dlt's `destination.postgres.credentials` (see `dora_pipeline.warehouse`)."""

    duckdb_path: Path
    warehouse: str = "duckdb"
    # Where the PostgreSQL warehouse is (resolved when the settings are made), or None with DuckDB.
    postgres: PostgresServer | None = None

    @classmethod
    def from_env(cls) -> Settings:
        return cls.from_path(Path(os.environ.get("DORA_DUCKDB_PATH", "data/dora.duckdb")))

    @classmethod
    def from_path(cls, path: Path, warehouse: str | None = None) -> Settings:
        kind = warehouse or configured_warehouse()
        return cls(
            duckdb_path=Path(path).expanduser().resolve(),
            warehouse=kind,
            postgres=postgres_server() if kind == "postgres" else None,
        )

    @property
    def is_postgres(self) -> bool:
        return self.warehouse == "postgres"

    @property
    def data_dir(self) -> Path:
        return self.duckdb_path.parent

    @property
    def build_path(self) -> Path:
        """The copy the refresh writes; publishing replaces `duckdb_path` with it."""
        return self.data_dir / "build" / self.duckdb_path.name

    @property
    def exports_dir(self) -> Path:
        """Parquet exports of the marts; `current` links to the latest complete set."""
        return self.data_dir / "exports"

    @property
    def report_path(self) -> Path:
        return self.data_dir / "report.html"

    @property
    def build_log_path(self) -> Path:
        """dbt's output of the latest refresh the command line ran."""
        return self.data_dir / "logs" / "refresh.log"

    @property
    def dbt_target_dir(self) -> Path:
        """dbt's target of this warehouse's builds (compiled SQL, run results, the saved parse),
        replaced by each build: one folder, where a folder per build would grow by megabytes
        with every scheduled refresh."""
        return self.data_dir / "dbt"

    @property
    def dlt_pipelines_dir(self) -> Path:
        return self.data_dir / "dlt"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME", self.data_dir / "dagster")).resolve()

    def export(self) -> None:
        """Make the paths and the warehouse visible to subprocesses: dbt's profile reads
        DORA_DBT_DUCKDB_PATH, or with PostgreSQL its DORA_PG_* variables (warehouse.dbt_environment)."""
        self.build_path.parent.mkdir(parents=True, exist_ok=True)
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        dagster_yaml = self.dagster_home / "dagster.yaml"
        if not dagster_yaml.exists():
            dagster_yaml.write_text(DAGSTER_YAML.format(history=json.dumps(str(self.dagster_home / "history"))))
        os.environ["DORA_DUCKDB_PATH"] = str(self.duckdb_path)
        os.environ["DORA_DBT_DUCKDB_PATH"] = str(self.build_path)
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)
        from dora_pipeline.warehouse import dbt_environment

        os.environ.update(dbt_environment(self))
