"""What a resource yields when it has nothing to load: an empty batch that still creates its table.

dlt creates a destination table only once a row has arrived for it. A resource with nothing to
load on a first run (a GitLab project without incidents, a tool a team has not adopted yet, a new
pipeline) would leave no table behind, and every model and test reading it would fail. dlt's
materialize marker is an empty batch that makes it create the table anyway, typed from the
resource's declared columns, so an empty resource is a normal, empty table.
"""

from __future__ import annotations

import dlt


def schema_marker() -> list:
    """Yield first from every resource: the table exists after the load even with no rows."""
    return dlt.mark.materialize_table_schema()


def batch(rows: list[dict]) -> list:
    """`rows`, or the marker when there are none (transformers receive the parent's marker too)."""
    return rows if rows else dlt.mark.materialize_table_schema()
