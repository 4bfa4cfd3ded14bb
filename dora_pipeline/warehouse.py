"""Every way into the warehouse, whichever it is: DuckDB (one file, the embedded default) or
PostgreSQL (a server a team shares).

The same sources and dbt models run on both. This module turns the `dora.warehouse` setting into
what each tool needs (dlt's destination, dbt's target and schemas, connections for the code that
reads and writes tables itself) so nothing else needs to know which warehouse it is.

Where a refresh writes before it publishes:
- DuckDB: a build copy of the file (`<data>/build/<name>.duckdb`), renamed over the published file.
- PostgreSQL: dlt loads the raw schemas in place (each load is one transaction) and dbt builds into
  `build_staging`, `build_intermediate` and `build_marts`; publishing renames them to `staging`,
  `intermediate` and `marts` in one transaction (see `publish.py`).

DuckDB lets one process at a time open a file for writing, and dbt writes the build file from a
process of its own: every use of the build file (dlt's loads and state sync, the sources'
look-ups, the bookkeeping, dbt, publishing) goes through `build_file_lock`, so a process waits its
turn instead of meeting DuckDB's refusal. The sources' threads share the refresh's process and so
its DuckDB instance, which takes their writes side by side.

Publishing renames the build file over the published one (`publish_build_file`) and copies it back
in a thread while the report is written: at a million deployments the 1.9 GB copy took 2 s of the
refresh's path. Until the copy is back, `build_file_lock` makes every user of the build file wait
for it, and restores it first when a killed refresh left it unfinished.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import wraps
from pathlib import Path

import dlt
from filelock import FileLock

from dora_pipeline.settings import Settings, WarehouseConfigError

# The schemas dbt builds, in the order they depend on each other.
LAYERS = ("staging", "intermediate", "marts")
# dbt's schemas on a server warehouse get this prefix until they are published.
BUILD_PREFIX = "build_"
# DuckDB's memory in dbt's build, unless DORA_DUCKDB_MEMORY_LIMIT says otherwise; dbt's profile reads
# that variable with this default (tests/test_duckdb_memory.py keeps the two equal). Not lower: with
# 750MB dbt's first build at a million deployments ran out of memory in int_changes (715 MiB used)
# while another model ran beside it.
DUCKDB_MEMORY_LIMIT = "1GB"
# DuckDB's memory in dlt's loads, unless DORA_DUCKDB_LOAD_MEMORY_LIMIT says otherwise. The loads run
# while the other sources still extract, in the same process: with 1GB, Gearset's first load at a
# million deployments took the extraction's process from 1.3 to 1.7 GiB, the refresh's peak
# (2.0 GB in all); with 512MB the peak was 1.5 GiB, and the first refresh no slower.
DUCKDB_LOAD_MEMORY_LIMIT = "512MB"


def duckdb_load_memory_limit() -> str:
    return os.environ.get("DORA_DUCKDB_LOAD_MEMORY_LIMIT") or DUCKDB_LOAD_MEMORY_LIMIT


def dlt_destination(settings: Settings):
    """Where dlt loads the raw schemas."""
    if settings.is_postgres:
        server = settings.postgres
        from dlt.destinations.impl.postgres.configuration import PostgresCredentials

        credentials = PostgresCredentials()
        credentials.host, credentials.port = server.host, server.port
        credentials.database, credentials.username, credentials.password = (
            server.database,
            server.username,
            server.password,
        )
        return dlt.destinations.postgres(credentials=credentials)
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    # capped: uncapped, DuckDB takes up to 80 % of the machine, and merging a million Gearset
    # deployments in dlt's load held 2.6 GB
    capped = DuckDbCredentials(str(settings.build_path), global_config={"memory_limit": duckdb_load_memory_limit()})
    return dlt.destinations.duckdb(capped)


def build_file_lock(settings: Settings) -> AbstractContextManager:
    """Held while a process has the DuckDB build file open: other processes wait for it instead of
    meeting DuckDB's own lock, which refuses them at once. Re-entrant and shared by the process's
    threads (they share one DuckDB instance); released by the kernel when its process dies. It
    waits first for the copy publishing sends back, and restores one a killed refresh left
    unfinished. A server warehouse needs none."""
    if settings.is_postgres:
        return nullcontext()
    return _build_file(settings)


def _file_lock(settings: Settings) -> FileLock:
    path = settings.build_path.with_name(settings.build_path.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, thread_local=False, is_singleton=True)


@contextmanager
def _build_file(settings: Settings) -> Iterator[None]:
    wait_for_build_file(settings)
    with _file_lock(settings):
        _restore_build_file(settings)
        yield


# The threads copying a published build file back, by build path (see `publish_build_file`).
_copies_back: dict[Path, threading.Thread] = {}


def _published_marker(settings: Settings) -> Path:
    """Present from just before the build file is renamed over the published one until its copy is
    back: while it is, the published file is the build file."""
    return settings.build_path.with_name(settings.build_path.name + ".published")


def publish_build_file(settings: Settings) -> None:
    """Make the build file the published warehouse: rename it over `duckdb_path` (atomic; a reader
    holding the old file keeps reading it), then copy it back in a thread for the next refresh.
    The caller holds `build_file_lock` and has checkpointed the file and closed it. Across file
    systems, where a rename cannot go, the build file is copied beside the published one instead."""
    build, published, marker = settings.build_path, settings.duckdb_path, _published_marker(settings)
    published.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    try:
        os.replace(build, published)
    except OSError as exc:
        marker.unlink()
        if exc.errno != errno.EXDEV:
            raise
        staging = published.with_name(f".{published.name}.{os.getpid()}.tmp")
        shutil.copyfile(build, staging)
        os.replace(staging, published)
        return
    held = _file_lock(settings)
    held.acquire()  # for the thread: no other process opens the build file until it is back

    def copy_back() -> None:
        try:
            _restore_build_file(settings)
        except Exception:  # noqa: BLE001 - the marker stays: the next user of the build file restores it or says why not
            pass
        finally:
            held.release()

    thread = threading.Thread(target=copy_back, name="copy-back-build-file")
    _copies_back[build] = thread
    thread.start()


def wait_for_build_file(settings: Settings) -> None:
    """Return once no copy of the build file publishing sent back is under way in this process."""
    if settings.is_postgres:
        return
    thread = _copies_back.get(settings.build_path)
    if thread is not None and thread is not threading.current_thread():
        thread.join()
        _copies_back.pop(settings.build_path, None)


def _restore_build_file(settings: Settings) -> None:
    """Copy the published file back to the build path after publishing renamed it there: always
    complete (a copy beside it, then a rename) and never torn (a read-only connection holds off
    writers while it copies). Nothing to do when the marker is gone; when the build file exists
    (a refresh killed before the rename), only the marker goes."""
    marker = _published_marker(settings)
    if not marker.exists():
        return
    build, published = settings.build_path, settings.duckdb_path
    if not build.exists():
        import duckdb

        staging = build.with_name(f".{build.name}.{os.getpid()}.tmp")
        try:
            guard = duckdb.connect(str(published), read_only=True)
        except duckdb.Error as exc:
            raise WarehouseConfigError(
                f"cannot copy the published warehouse {published} back to the build file {build}: {exc}"
            ) from None
        with guard:
            shutil.copyfile(published, staging)
        os.replace(staging, build)
    marker.unlink(missing_ok=True)


def serialize_writes(pipeline: dlt.Pipeline, settings: Settings) -> dlt.Pipeline:
    """`pipeline` with every way it opens the warehouse (restoring its state from the destination,
    loading, `sql_client` look-ups during extraction) inside `build_file_lock`, so it takes turns
    with any other process that opens the build file. dlt is pinned to one minor
    version (pyproject.toml), and `_sync_destination` is what `run` calls first."""
    if settings.is_postgres:
        return pipeline

    def locked(method: Callable) -> Callable:
        @wraps(method)
        def call(*args, **kwargs):
            with build_file_lock(settings):
                return method(*args, **kwargs)

        return call

    sql_client = pipeline.sql_client

    @contextmanager
    def locked_sql_client(*args, **kwargs) -> Iterator:
        with build_file_lock(settings), sql_client(*args, **kwargs) as client:
            yield client

    pipeline._sync_destination = locked(pipeline._sync_destination)
    pipeline.load = locked(pipeline.load)
    pipeline.sql_client = locked_sql_client
    return pipeline


def dbt_environment(settings: Settings) -> dict[str, str]:
    """The variables dbt's profile reads (dbt runs as a subprocess). dbt scrubs the values of
    variables named DBT_ENV_SECRET_* from its logs, so the password goes in one of those."""
    if not settings.is_postgres:
        return {"DORA_DBT_TARGET": "local", "DORA_DBT_SCHEMA_PREFIX": ""}
    server = settings.postgres
    return {
        "DORA_DBT_TARGET": "postgres",
        "DORA_DBT_SCHEMA_PREFIX": BUILD_PREFIX,
        "DORA_PG_HOST": server.host,
        "DORA_PG_PORT": str(server.port),
        "DORA_PG_DATABASE": server.database,
        "DORA_PG_USER": server.username,
        "DBT_ENV_SECRET_DORA_PG_PASSWORD": server.password,
    }


class Connection:
    """A connection to either warehouse with one calling convention: `?` placeholders, rows as
    tuples, and explicit transactions."""

    def __init__(self, raw, kind: str):
        self.raw = raw
        self.kind = kind
        self.columns: list[str] = []

    def _sql(self, sql: str, has_parameters: bool) -> str:
        if self.kind == "postgres" and has_parameters:
            return sql.replace("%", "%%").replace("?", "%s")
        return sql

    def execute(self, sql: str, parameters: Sequence | None = None) -> list[tuple]:
        """Run one statement; its rows (none for a statement that returns none)."""
        if self.kind == "duckdb":
            cursor = self.raw.execute(sql, parameters) if parameters is not None else self.raw.execute(sql)
            self.columns = [d[0] for d in cursor.description or []]
            return cursor.fetchall() if cursor.description else []
        with self.raw.cursor() as cursor:
            cursor.execute(self._sql(sql, parameters is not None), parameters)
            self.columns = [d[0] for d in cursor.description or []]
            return cursor.fetchall() if cursor.description else []

    def executemany(self, sql: str, rows: Sequence[Sequence]) -> None:
        if self.kind == "duckdb":
            self.raw.executemany(sql, rows)
            return
        with self.raw.cursor() as cursor:
            cursor.executemany(self._sql(sql, True), rows)

    def records(self, sql: str, parameters: Sequence | None = None) -> list[dict]:
        rows = self.execute(sql, parameters)
        return [dict(zip(self.columns, row, strict=True)) for row in rows]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.execute("begin")
        try:
            yield
        except BaseException:
            self.execute("rollback")
            raise
        self.execute("commit")

    def tables(self, schema: str) -> list[str]:
        """The base tables of `schema`, by name."""
        return [
            name
            for (name,) in self.execute(
                "select table_name from information_schema.tables where table_schema = ? "
                "and table_type = 'BASE TABLE' order by table_name",
                [schema],
            )
        ]


@contextmanager
def connect(settings: Settings, *, build: bool = False, read_only: bool = False) -> Iterator[Connection]:
    """A connection to the published warehouse, or with `build` to the one the refresh writes
    (the same server with PostgreSQL, whose build schemas are named apart)."""
    if settings.is_postgres:
        import psycopg2

        try:
            raw = psycopg2.connect(**settings.postgres.connect_kwargs())
        except psycopg2.OperationalError as exc:
            reason = " ".join(str(exc).split())  # the server's words; psycopg2 never echoes the password
            raise WarehouseConfigError(
                f"cannot connect to the PostgreSQL warehouse {describe(settings)}: {reason}"
            ) from None
        raw.autocommit = True  # statements commit alone unless inside transaction()
        if read_only:
            raw.set_session(readonly=True, autocommit=True)
        try:
            yield Connection(raw, "postgres")
        finally:
            raw.close()
        return
    import duckdb

    if not build:
        with duckdb.connect(str(settings.duckdb_path), read_only=read_only) as raw:
            yield Connection(raw, "duckdb")
        return
    with build_file_lock(settings), duckdb.connect(str(settings.build_path), read_only=read_only) as raw:
        yield Connection(raw, "duckdb")


def exists(settings: Settings) -> bool:
    """Whether a refresh has published this warehouse yet."""
    if not settings.is_postgres:
        return settings.duckdb_path.exists()
    with connect(settings, read_only=True) as con:
        return bool(con.execute("select 1 from information_schema.schemata where schema_name = 'marts'"))


def describe(settings: Settings) -> str:
    """Where the warehouse is, for a person (never with its password)."""
    if not settings.is_postgres:
        return str(settings.duckdb_path)
    server = settings.postgres
    return f"postgresql://{server.username}@{server.host}:{server.port}/{server.database}"
