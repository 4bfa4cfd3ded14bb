"""Build, then publish: readers never see a half-built warehouse and are never locked out.

The refresh writes a build copy of the warehouse (`<data>/build/<name>.duckdb`); DuckDB lets one
process write a file and dlt and dbt take turns at it. Publishing then:
1. checkpoints the build file, so everything is in the main file and none in its WAL;
2. exports every table of the `marts` schema to Parquet in a new folder `exports/<stamp>/` and
   points the `exports/current` link at it with one atomic rename, so a reader of
   `exports/current/*.parquet` sees the previous set or the new one, never a mix;
3. copies the build file beside the published one and renames it over `DORA_DUCKDB_PATH`, so a
   reader holding the old file keeps reading it and the next connection opens the new one.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dora_pipeline.settings import Settings

KEEP_EXPORT_SETS = 3


@dataclass
class Publication:
    warehouse: Path
    exports: Path
    tables: dict[str, int]


def publish(settings: Settings) -> Publication:
    build = settings.build_path
    with duckdb.connect(str(build)) as con:
        con.execute("checkpoint")
        tables = [
            t
            for (t,) in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts' order by table_name"
            ).fetchall()
        ]
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
        target = settings.exports_dir / stamp
        target.mkdir(parents=True)
        counts = {}
        for table in tables:
            # COPY takes no bound parameter for its file: the path (from configuration) is a literal
            relation = f"marts.{_identifier(table)}"
            con.execute(f"copy {relation} to {_literal(str(target / (table + '.parquet')))} (format parquet)")
            counts[table] = con.execute(f"select count(*) from {relation}").fetchall()[0][0]
    _point_current_at(settings.exports_dir, target)
    _replace_file(build, settings.duckdb_path)
    _prune(settings.exports_dir, keep=KEEP_EXPORT_SETS)
    return Publication(settings.duckdb_path, settings.exports_dir / "current", counts)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _point_current_at(exports: Path, target: Path) -> None:
    link = exports / f".current-{os.getpid()}"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(target.name)
    os.replace(link, exports / "current")


def _replace_file(source: Path, published: Path) -> None:
    published.parent.mkdir(parents=True, exist_ok=True)
    staging = published.with_name(f".{published.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, staging)
    os.replace(staging, published)


def clean_debris(settings: Settings) -> None:
    """Remove what a killed refresh left half-written: staging copies of the warehouse and the
    report, a link not yet renamed into place, and export sets newer than `current` (a set is
    only complete once `current` points at it)."""
    data = settings.data_dir
    for pattern in (f".{settings.duckdb_path.name}.*.tmp", f".{settings.report_path.name}.tmp"):
        for debris in data.glob(pattern):
            debris.unlink(missing_ok=True)
    exports = settings.exports_dir
    if not exports.is_dir():
        return
    for link in exports.glob(".current-*"):
        link.unlink(missing_ok=True)
    current = (exports / "current").resolve().name if (exports / "current").exists() else ""
    for folder in exports.iterdir():
        if folder.is_dir() and not folder.is_symlink() and folder.name > current:
            shutil.rmtree(folder, ignore_errors=True)


def _prune(exports: Path, keep: int) -> None:
    current = (exports / "current").resolve().name
    sets = sorted(p for p in exports.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    for old in sets[:-keep]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)
