"""What a resource yields: its rows as an Arrow table of its declared columns, or an empty batch
that still creates its table.

dlt creates a destination table only once a row has arrived for it. A resource with nothing to
load on a first run (a GitLab project without incidents, a tool a team has not adopted yet, a new
pipeline) would leave no table behind, and every model and test reading it would fail. dlt's
materialize marker is an empty batch that makes it create the table anyway, typed from the
resource's declared columns, so an empty resource is a normal, empty table.

Rows that are already converted and typed (every source converts each record before it yields)
go to dlt as an Arrow table when the warehouse loads Parquet (DuckDB): dlt then writes them out as
they are, where with Python dicts its normalizer coerces every value again, one at a time (5x the
CPU of the Arrow path, and at a million deployments the largest part of the first refresh's
extraction). A batch Arrow cannot hold exactly as declared (a value of another type, a field not
declared, a missing required value) goes to dlt as dicts, so dlt coerces, evolves the schema or
names the bad value as before. dlt pays a fixed cost for each Arrow table it takes (about 2 ms
alone, more beside other sources' threads: its schema merged with the resource's, the incremental
cursor's checks), which a page of a hundred rows does not repay (30 % slower than as dicts, where a
batch of 1,000 rows is 2.7x faster): only batches of `MIN_ARROW_ROWS` rows or more go as Arrow,
Gearset's reports rather than GitLab's or GitClear's pages. PostgreSQL loads SQL inserts, which dlt
writes from dicts without a detour through Arrow, so there every batch stays dicts. A transformer
reads its parent's batches either way. A json column (lists, objects) goes as Arrow's nested
type of its values.

APIs that page in 50 or 100 records (GitLab, GitClear, Multitudes, a Gearset CI job's runs) would
give dlt one small batch per page: dicts through its normalizer, or Arrow tables each paying the fixed cost.
Their resources `regroup` the pages' converted rows into batches of `REGROUPED_ROWS`, which go as
Arrow: at a million deployments dlt's normalizer was the largest CPU cost of GitLab's, GitClear's
and Multitudes' extraction, taken from the one core the sources share.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dlt
import pyarrow as pa
from dlt.common.destination.capabilities import DestinationCapabilitiesContext
from dlt.common.libs.pyarrow import columns_to_arrow
from dlt.common.schema.typing import TColumnSchema

# Arrow tables get dlt's load id and row id columns, as rows given as dicts do: the raw tables keep
# one shape whichever way a batch came.
dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
dlt.config["normalize.parquet_normalizer.add_dlt_id"] = True


_arrow_batches = True
MIN_ARROW_ROWS = 500
REGROUPED_ROWS = 5_000


def load_as_arrow(enabled: bool) -> None:
    """Whether batches go to dlt as Arrow tables: the refresh says so from its warehouse's loader
    file format (Parquet: yes), once, before its sources run side by side."""
    global _arrow_batches
    _arrow_batches = enabled


def schema_marker() -> list:
    """Yield first from every resource: the table exists after the load even with no rows."""
    return dlt.mark.materialize_table_schema()


def batch(rows: list[dict]) -> list:
    """`rows`, or the marker when there are none (transformers receive the parent's marker too)."""
    return rows if rows else dlt.mark.materialize_table_schema()


class TypedBatches:
    """Turns one resource's converted rows into Arrow tables of its declared `columns`, with the
    columns of its `primary_key` required (as dlt's schema has them)."""

    def __init__(self, columns: dict[str, TColumnSchema], primary_key: str | tuple[str, ...]) -> None:
        keys = {primary_key} if isinstance(primary_key, str) else set(primary_key)
        named = {
            name: {"name": name, **column, **({"nullable": False} if name in keys else {})}
            for name, column in columns.items()
        }
        self.names = frozenset(columns)
        self.required = [name for name, column in named.items() if column.get("nullable") is False]
        # A json column holds lists and objects: in Arrow, as the nested type of its values.
        self.json = [name for name, column in columns.items() if column.get("data_type") == "json"]
        caps = DestinationCapabilitiesContext.generic_capabilities()
        self.schema = columns_to_arrow(named, caps, "UTC")
        self._plain = pa.schema([f for f in self.schema if f.name not in self.json])

    def __call__(self, rows: list[dict]) -> pa.Table | list:
        """`rows` as an Arrow table, as dicts when Arrow cannot hold them exactly, or the marker."""
        if not rows:
            return dlt.mark.materialize_table_schema()
        if not _arrow_batches or len(rows) < MIN_ARROW_ROWS:
            return rows
        if not self.names.issuperset(set().union(*rows)):
            return rows
        try:
            table = self._table(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            return rows
        if table is None:
            return rows
        if any(table.column(name).null_count for name in self.required):
            return rows
        return table

    def _table(self, rows: list[dict]) -> pa.Table | None:
        """The rows as a table of the schema, a json column as the nested Arrow type its values
        have (a list of strings, a struct), which DuckDB turns into the JSON dlt would write; None
        when a json column holds a plain value (dlt keeps that as it is, not as JSON)."""
        if not self.json:
            return pa.Table.from_pylist(rows, schema=self.schema)
        plain = pa.Table.from_pylist(rows, schema=self._plain)
        nested = {}
        for name in self.json:
            values = [row.get(name) for row in rows]
            if not all(v is None or isinstance(v, (list, dict)) for v in values):
                return None
            nested[name] = pa.array(values)
        fields = [pa.field(f.name, nested[f.name].type, f.nullable) if f.name in nested else f for f in self.schema]
        columns = [nested[f.name] if f.name in nested else plain.column(f.name) for f in self.schema]
        return pa.Table.from_arrays(columns, schema=pa.schema(fields))

    def regroup(self, pages: Iterable[list[dict]]) -> Iterator[pa.Table | list]:
        """The rows of many pages, `REGROUPED_ROWS` or more a batch, each made as by calling this
        (the last one smaller). An empty input yields nothing: the resource's marker comes first."""
        held: list[dict] = []
        for rows in pages:
            held.extend(rows)
            if len(held) >= REGROUPED_ROWS:
                yield self(held)
                held = []
        if held:
            yield self(held)
