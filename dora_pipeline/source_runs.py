"""The outcome of every source's extraction and the records it set aside, kept in the warehouse
so a failure is never silent.

One failing source (a revoked token, an outage) must not stop the refresh: the others load, the
warehouse is built from the failed source's last good data and published, and the refresh then
fails loudly, naming the source and how old its data is. The ingestion step records each attempt
in `dora_ops.source_runs` of the build warehouse; dbt's `source_freshness` mart and the report read
it, and the last step of the job reads it back to fail the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dora_pipeline import warehouse
from dora_pipeline.settings import Settings
from dora_pipeline.sources.rejections import Rejection

SCHEMA = "dora_ops"
TABLE = f"{SCHEMA}.source_runs"
# Records a source sent that could not be loaded as they were (see sources/rejections.py): one row
# per record and field, replaced when the same record is rejected again.
REJECTED = f"{SCHEMA}.rejected_records"
DDL = [
    f"create schema if not exists {SCHEMA}",
    f"""create table if not exists {TABLE} (
    run_id varchar not null,
    source varchar not null,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    status varchar not null,
    error varchar
)""",
    f"""create table if not exists {REJECTED} (
    source varchar not null,
    resource varchar not null,
    record_key varchar,
    field varchar not null,
    problem varchar not null,
    payload varchar not null,
    service_key varchar,
    run_id varchar not null,
    seen_at timestamptz not null
)""",
]


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


def _create(con: warehouse.Connection) -> None:
    for statement in DDL:
        con.execute(statement)


def ensure_table(settings: Settings) -> None:
    """Both tables exist from the first refresh on, so dbt can always read them."""
    with warehouse.connect(settings, build=True) as con:
        _create(con)


def record(settings: Settings, run_id: str, source: str, started_at: datetime, error: str | None) -> None:
    with warehouse.connect(settings, build=True) as con:
        _create(con)
        con.execute(
            f"insert into {TABLE} values (?, ?, ?, ?, ?, ?)",
            [run_id, source, started_at, datetime.now(UTC), "failed" if error else "succeeded", error],
        )


def record_rejections(settings: Settings, run_id: str, rejections: list[Rejection]) -> None:
    if not rejections:
        return
    now = datetime.now(UTC)
    rows = [
        [r.source, r.resource, r.record_key, r.field, r.problem, r.payload, r.service_key, run_id, now]
        for r in rejections
    ]
    with warehouse.connect(settings, build=True) as con, con.transaction():
        _create(con)
        con.executemany(
            f"""delete from {REJECTED} where source = ? and resource = ? and field = ?
                and coalesce(record_key, md5(payload)) = coalesce(?, md5(?))""",
            [[r.source, r.resource, r.field, r.record_key, r.payload] for r in rejections],
        )
        con.executemany(f"insert into {REJECTED} values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def still_rejected(settings: Settings, source: str) -> list[tuple[str, str, str | None]]:
    """The records of `source` rejected by earlier refreshes, by resource, key and service key."""
    with warehouse.connect(settings, build=True) as con:
        _create(con)
        return con.execute(
            f"select distinct resource, record_key, service_key from {REJECTED} "
            "where source = ? and record_key is not null",
            [source],
        )


def clear_rejections(settings: Settings, source: str, loaded: set[tuple[str, str, str | None]]) -> None:
    """A rejected record that has since arrived in a shape that loads is no longer rejected."""
    if not loaded:
        return
    with warehouse.connect(settings, build=True) as con:
        con.executemany(
            f"""delete from {REJECTED} where source = ? and resource = ? and record_key = ?
                and coalesce(service_key, '') = coalesce(?, '')""",
            [[source, resource, key, service] for resource, key, service in sorted(loaded, key=str)],
        )


def rejected_in(settings: Settings, run_id: str) -> int:
    """How many records the sources sent in `run_id` that could not be loaded (published warehouse)."""
    with warehouse.connect(settings, read_only=True) as con:
        return con.execute(f"select count(*) from {REJECTED} where run_id = ?", [run_id])[0][0]


def failures(settings: Settings, run_id: str) -> list[SourceFailure]:
    """The sources that failed in `run_id`, each with its last successful extraction (published warehouse)."""
    with warehouse.connect(settings, read_only=True) as con:
        rows = con.execute(
            f"""
            select failed.source, failed.error, max(ok.finished_at)
            from {TABLE} as failed
            left join {TABLE} as ok on ok.source = failed.source and ok.status = 'succeeded'
            where failed.run_id = ? and failed.status = 'failed'
            group by failed.source, failed.error order by failed.source
            """,
            [run_id],
        )
    return [SourceFailure(source, error, last) for source, error, last in rows]
