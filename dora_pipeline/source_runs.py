"""The outcome of every source's extraction, kept in the warehouse so a failure is never silent.

One failing source (a revoked token, an outage) must not stop the refresh: the others load, the
warehouse is built from the failed source's last good data and published, and the refresh then
fails loudly, naming the source and how old its data is. The ingestion step records each attempt
in `dora_ops.source_runs` of the build warehouse; dbt's `source_freshness` mart and the report read
it, and the last step of the job reads it back to fail the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

SCHEMA = "dora_ops"
TABLE = f"{SCHEMA}.source_runs"
DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {TABLE} (
    run_id varchar not null,
    source varchar not null,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    status varchar not null,
    error varchar
);
"""


@dataclass(frozen=True)
class SourceFailure:
    source: str
    error: str
    last_success_at: datetime | None

    def describe(self) -> str:
        """One line for a person: what failed and how old the data the warehouse keeps is."""
        if self.last_success_at is None:
            kept = "it has no data yet"
        else:
            age = (datetime.now(UTC) - self.last_success_at).total_seconds() / 3600
            kept = f"its data is from {self.last_success_at:%Y-%m-%d %H:%M} UTC ({age:.1f} h old)"
        return f"source {self.source} failed and kept its last good data ({kept}): {self.error}"


def ensure_table(warehouse: Path) -> None:
    """The table exists from the first refresh on, so dbt can always read it."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute(DDL)


def record(warehouse: Path, run_id: str, source: str, started_at: datetime, error: str | None) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute(DDL)
        con.execute(
            f"insert into {TABLE} values (?, ?, ?, ?, ?, ?)",
            [run_id, source, started_at, datetime.now(UTC), "failed" if error else "succeeded", error],
        )


def failures(warehouse: Path, run_id: str) -> list[SourceFailure]:
    """The sources that failed in `run_id`, each with its last successful extraction."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            f"""
            select failed.source, failed.error, max(ok.finished_at)
            from {TABLE} as failed
            left join {TABLE} as ok on ok.source = failed.source and ok.status = 'succeeded'
            where failed.run_id = ? and failed.status = 'failed'
            group by all order by failed.source
            """,
            [run_id],
        ).fetchall()
    return [SourceFailure(source, error, last) for source, error, last in rows]
