"""Build then publish: a second process reads the warehouse and the Parquet exports while a
refresh runs, and never fails nor sees a partial set."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import duckdb

from dora_pipeline.refresh import run_refresh

READER = textwrap.dedent("""
    import json, os, sys, time
    import duckdb
    warehouse, current, stop, expected = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4].split(","))
    queries, errors, partial = 0, [], 0
    while not os.path.exists(stop):
        try:
            with duckdb.connect(warehouse, read_only=True) as con:
                con.execute("select count(*) from marts.dora_metrics_daily").fetchall()
            names = {n[:-len(".parquet")] for n in os.listdir(current)}
            partial += names != expected
            duckdb.sql(f"select count(*) from read_parquet('{current}/deployments.parquet')").fetchall()
            queries += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.05)
    print(json.dumps({"queries": queries, "errors": errors[:5], "partial": partial}))
""")


def marts_tables(path: Path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            t for (t,) in con.execute("select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()
        }


def test_a_reader_is_never_locked_out_nor_sees_a_partial_export(settings, sandbox, point_at_sandbox, tmp_path):
    sandbox.set_as_of(sandbox.as_of - timedelta(days=20))
    point_at_sandbox()
    run_refresh(settings)
    tables = marts_tables(settings.duckdb_path)
    first_set = (settings.exports_dir / "current").resolve()
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        before = con.execute("select count(*) from marts.deployments").fetchall()[0][0]

    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            READER,
            str(settings.duckdb_path),
            str(settings.exports_dir / "current"),
            str(stop),
            ",".join(sorted(tables)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        sandbox.set_as_of(sandbox.as_of + timedelta(days=20))
        point_at_sandbox()
        run_refresh(settings)
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=120)
    seen = json.loads(out)

    assert seen["errors"] == [] and seen["partial"] == 0
    assert seen["queries"] > 20  # it kept reading during the whole refresh
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert con.execute("select count(*) from marts.deployments").fetchall()[0][0] > before
    current = (settings.exports_dir / "current").resolve()
    assert current != first_set
    assert {p.stem for p in current.glob("*.parquet")} == tables
    rows = duckdb.sql(f"select count(*) from read_parquet('{current}/dora_metrics_daily.parquet')").fetchall()[0][0]
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert rows == con.execute("select count(*) from marts.dora_metrics_daily").fetchall()[0][0]


def test_a_warehouse_path_with_quotes_publishes(tmp_path):
    """The path comes from configuration; it reaches SQL (COPY ... TO) only as a quoted literal."""
    from dora_pipeline.publish import publish
    from dora_pipeline.settings import Settings

    settings = Settings.from_path(tmp_path / "o'brien's \"data\"" / "dora.duckdb")
    settings.build_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.build_path)) as con:
        con.execute('create schema marts; create table marts."odd ""name""" as select 1 as x union all select 2')

    publication = publish(settings)

    assert publication.tables == {'odd "name"': 2}
    exported = settings.exports_dir / "current" / 'odd "name".parquet'
    assert duckdb.sql("select count(*) from read_parquet(?)", params=[str(exported)]).fetchall() == [(2,)]
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert con.execute('select sum(x) from marts."odd ""name"""').fetchall() == [(3,)]


def _built(tmp_path: Path, rows: int):
    """Settings whose build file holds a `marts.deployments` of `rows` rows, nothing published yet."""
    from dora_pipeline.settings import Settings

    settings = Settings.from_path(tmp_path / "data" / "dora.duckdb")
    settings.build_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.build_path)) as con:
        con.execute(f"create schema marts; create table marts.deployments as select range as id from range({rows})")
    return settings


def _rows(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select count(*) from marts.deployments").fetchall()[0][0]


def test_publishing_renames_the_build_file_and_copies_it_back(tmp_path):
    from dora_pipeline import warehouse
    from dora_pipeline.publish import publish

    settings = _built(tmp_path, 3)
    publish(settings)
    warehouse.wait_for_build_file(settings)

    assert _rows(settings.duckdb_path) == 3 and _rows(settings.build_path) == 3
    assert settings.build_path.read_bytes() == settings.duckdb_path.read_bytes()
    assert sorted(p.name for p in settings.build_path.parent.iterdir()) == ["dora.duckdb", "dora.duckdb.lock"]
    with duckdb.connect(str(settings.build_path)) as con:  # the next refresh writes the copy, not the published file
        con.execute("insert into marts.deployments values (99)")
    assert _rows(settings.build_path) == 4 and _rows(settings.duckdb_path) == 3


def test_a_build_file_whose_copy_back_was_killed_is_restored_before_use(tmp_path):
    """Killed after the rename, before the copy was back: the published file is the build file, so
    the next user of the build file gets it back first. Killed before the rename: the build file is
    the newer one and stays."""
    from dora_pipeline import warehouse

    settings = _built(tmp_path, 5)
    marker = settings.build_path.with_name(settings.build_path.name + ".published")
    marker.touch()
    settings.build_path.rename(settings.duckdb_path)
    half = settings.build_path.with_name(f".{settings.build_path.name}.4242.tmp")
    half.write_bytes(b"half a copy")

    with warehouse.connect(settings, build=True) as con:
        assert con.execute("select count(*) from marts.deployments") == [(5,)]
    assert not marker.exists() and settings.build_path.read_bytes() == settings.duckdb_path.read_bytes()

    with duckdb.connect(str(settings.build_path)) as con:
        con.execute("insert into marts.deployments values (99)")
    marker.touch()
    with warehouse.build_file_lock(settings):
        pass
    assert not marker.exists() and _rows(settings.build_path) == 6 and _rows(settings.duckdb_path) == 5


def test_a_copy_back_never_copies_a_published_file_being_written(tmp_path):
    from dora_pipeline import warehouse
    from dora_pipeline.settings import WarehouseConfigError

    settings = _built(tmp_path, 2)
    marker = settings.build_path.with_name(settings.build_path.name + ".published")
    marker.touch()
    settings.build_path.rename(settings.duckdb_path)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print(1, flush=True); time.sleep(60)",
            str(settings.duckdb_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "1"
        try:
            with warehouse.build_file_lock(settings):
                raise AssertionError("the build file was restored from a file another process writes")
        except WarehouseConfigError as exc:
            assert str(settings.duckdb_path) in str(exc) and str(settings.build_path) in str(exc)
    finally:
        writer.kill()
        writer.wait()
    assert marker.exists() and not settings.build_path.exists()
    with warehouse.build_file_lock(settings):  # the writer gone, the next try restores it
        assert _rows(settings.build_path) == 2
