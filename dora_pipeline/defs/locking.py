"""The warehouse's refresh lock as a Dagster resource, held for the whole of every run.

The command line takes the lock before Dagster starts; a run that `dagster dev`'s schedule or a
daemon launches never goes through the command line. Every step that writes the warehouse
requires this resource, and the job runs its steps in one process, so the run worker holds the
lock from its first step to its last however the run was launched (re-entrant when the command
line already holds it).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext

from dora_pipeline.refresh_lock import refresh_lock
from dora_pipeline.settings import Settings


class WarehouseLock(ConfigurableResource):
    duckdb_path: str

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator["WarehouseLock"]:
        with refresh_lock(Settings.from_path(Path(self.duckdb_path))):
            yield self
