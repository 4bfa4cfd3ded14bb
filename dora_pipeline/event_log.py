"""Dagster's run history in one SQLite file, stored at a cost that does not dominate a refresh.

A refresh stores about 750 Dagster events (dbt's nodes and tests mostly). Dagster's consolidated
SQLite event log builds a new SQLAlchemy engine and opens a new SQLite connection for each of the
four or so statements behind every event, and each commit waits for the disk: about 12 s of a
30 s incremental refresh at demo size. This storage keeps one engine with pooled connections per
process, and lets SQLite's write-ahead log sync at checkpoints rather than at every commit
(`synchronous=NORMAL`: a refresh killed at any point keeps every event it committed; only a power
cut can lose the last few).

New instances name it in their `dagster.yaml` (settings.DAGSTER_YAML); the UI reads the same file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import sqlalchemy as sa
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS


class PooledSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    @cached_property
    def _engine(self) -> sa.Engine:
        engine = sa.create_engine(self._conn_string, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})

        @sa.event.listens_for(engine, "connect")
        def _sync_at_checkpoints(connection, _record) -> None:
            connection.execute("PRAGMA synchronous=NORMAL")

        return engine

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as connection, connection.begin():
            yield connection

    def dispose(self) -> None:
        super().dispose()
        if "_engine" in self.__dict__:
            self._engine.dispose()
