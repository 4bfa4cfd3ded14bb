"""Rows handed to dlt as Arrow tables load exactly as the same rows handed as dicts: every source,
every table, with every batch as Arrow (the demo's batches are too small to go as Arrow at all),
against the same sandbox. And a batch Arrow cannot hold exactly stays dicts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dlt
import duckdb
import pyarrow as pa
import pytest

from dora_pipeline.sources import batches
from dora_pipeline.sources.batches import TypedBatches
from dora_pipeline.sources.registry import SOURCES

DLT_COLUMNS = ("_dlt_load_id", "_dlt_id")
OBSERVED_AT_READ = ("observed_at",)  # ci_job_status_history: the clock when each run read the status


def _load(name: str, path: Path, min_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches, "MIN_ARROW_ROWS", min_rows)
    pipeline = dlt.pipeline(
        f"arrow_{name}_{min_rows}",
        destination=dlt.destinations.duckdb(str(path)),
        dataset_name=f"raw_{name}",
        pipelines_dir=str(path.parent / "dlt"),
    )
    pipeline.run(SOURCES[name].build(), loader_file_format="parquet")


def _tables(path: Path, name: str) -> dict[str, tuple[list, list]]:
    """Each table of the source's dataset: its columns with types, and its rows without dlt's ids."""
    with duckdb.connect(str(path), read_only=True) as con:
        found = {}
        names = con.execute(
            "select table_name from information_schema.tables where table_schema = ? and table_name not like '_dlt%'",
            [f"raw_{name}"],
        ).fetchall()
        for (table,) in names:
            columns = con.execute(
                "select column_name, data_type, is_nullable from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [f"raw_{name}", table],
            ).fetchall()
            kept = ", ".join(f'"{c}"' for c, _, _ in columns if c not in DLT_COLUMNS + OBSERVED_AT_READ)
            rows = con.execute(f'select {kept} from raw_{name}."{table}" order by all').fetchall()
            found[table] = (columns, rows)
        return found


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_table_loads_the_same_as_arrow_and_as_dicts(name, sandbox, tmp_path, monkeypatch):
    for variable, value in sandbox.source_environment().items():
        monkeypatch.setenv(variable, value)
    batches.load_as_arrow(True)
    as_arrow, as_dicts = tmp_path / "arrow" / "raw.duckdb", tmp_path / "dicts" / "raw.duckdb"
    _load(name, as_arrow, 1, monkeypatch)
    _load(name, as_dicts, 10**9, monkeypatch)

    arrow_tables, dict_tables = _tables(as_arrow, name), _tables(as_dicts, name)
    assert arrow_tables.keys() == dict_tables.keys()
    for table, (columns, rows) in dict_tables.items():
        assert arrow_tables[table][0] == columns, table
        assert arrow_tables[table][1] == rows, table
    assert sum(len(rows) for _, rows in dict_tables.values()) > 0
    with duckdb.connect(str(as_arrow), read_only=True) as con:
        for table in arrow_tables:  # dlt's row and load ids on every row, as dict rows get them
            ids = f'select count(*), count(distinct _dlt_id), count(_dlt_load_id) from raw_{name}."{table}"'
            count, distinct_ids, load_ids = con.execute(ids).fetchone()
            assert count == distinct_ids == load_ids, table


COLUMNS = {
    "id": {"data_type": "bigint", "nullable": False},
    "title": {"data_type": "text"},
    "at": {"data_type": "timestamp"},
}


@pytest.mark.parametrize(
    ("rows", "as_arrow"),
    [
        ([{"id": 1, "title": "a", "at": datetime(2026, 1, 1, tzinfo=UTC)}, {"id": 2, "title": None}], True),
        ([{"id": 1, "title": 17}], False),  # another type: dlt coerces it
        ([{"id": 1, "title": "a", "labels": "x"}], False),  # a field not declared: dlt adds the column
        ([{"id": None, "title": "a"}], False),  # a missing key: dlt names it
        ([{"id": "1", "title": "a"}], False),
    ],
)
def test_a_batch_arrow_cannot_hold_exactly_stays_dicts(rows, as_arrow, monkeypatch):
    monkeypatch.setattr(batches, "MIN_ARROW_ROWS", 1)
    batches.load_as_arrow(True)
    made = TypedBatches(COLUMNS, "id")(rows)
    assert isinstance(made, pa.Table) is as_arrow
    if as_arrow:
        assert made.to_pylist()[0]["title"] == "a" and made.schema.field("id").nullable is False
    else:
        assert made is rows


def test_small_batches_and_postgres_stay_dicts(monkeypatch):
    rows = [{"id": i, "title": "a"} for i in range(3)]
    monkeypatch.setattr(batches, "MIN_ARROW_ROWS", 4)
    batches.load_as_arrow(True)
    assert TypedBatches(COLUMNS, "id")(rows) is rows
    monkeypatch.setattr(batches, "MIN_ARROW_ROWS", 1)
    batches.load_as_arrow(False)
    try:
        assert TypedBatches(COLUMNS, "id")(rows) is rows
    finally:
        batches.load_as_arrow(True)


def test_small_pages_regroup_into_large_batches_in_order(monkeypatch):
    monkeypatch.setattr(batches, "REGROUPED_ROWS", 5)
    monkeypatch.setattr(batches, "MIN_ARROW_ROWS", 5)
    batches.load_as_arrow(True)
    pages = [[{"id": page * 3 + i, "title": "a"} for i in range(3)] for page in range(4)] + [[{"id": 12}]]
    made = list(TypedBatches(COLUMNS, "id").regroup(iter(pages)))
    # two full batches as Arrow, then the one row left over, too few for Arrow
    assert [type(b) for b in made] == [pa.Table, pa.Table, list]
    assert [len(b) for b in made] == [6, 6, 1]
    ids = [r["id"] for b in made for r in (b.to_pylist() if isinstance(b, pa.Table) else b)]
    assert ids == list(range(13))
    assert list(TypedBatches(COLUMNS, "id").regroup(iter([]))) == []


def test_a_json_column_goes_as_its_nested_type_unless_it_holds_a_plain_value(monkeypatch):
    monkeypatch.setattr(batches, "MIN_ARROW_ROWS", 1)
    batches.load_as_arrow(True)
    made = TypedBatches({**COLUMNS, "tags": {"data_type": "json"}}, "id")
    lists = [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": []}, {"id": 3, "tags": None}]
    table = made(lists)
    assert isinstance(table, pa.Table) and pa.types.is_list(table.schema.field("tags").type)
    assert table.column("tags").to_pylist() == [["a", "b"], [], None]
    plain = [{"id": 1, "tags": ["a"]}, {"id": 2, "tags": "a"}]
    assert made(plain) is plain
