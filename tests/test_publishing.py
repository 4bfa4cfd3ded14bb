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
